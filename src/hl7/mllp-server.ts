/**
 * An MLLP server: a TCP listener that reads MLLP frames (mllp.ts) from each connection and writes one framed
 * reply per message, in the order the messages came. Several messages may come on one connection, one after
 * another or several in one chunk; the connection stays open until the sender closes it. A frame the sender has
 * not finished when the connection ends (closed, reset, dropped) is logged and dropped: it is never handled, so
 * nothing of it is applied, and the server goes on serving other connections.
 */
import { createServer, type Socket } from 'node:net';
import { MllpDecoder, mllpFrame } from './mllp.js';

export type LogLevel = 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string) => void;

export type MllpInput = { kind: 'frame'; payload: Buffer } | { kind: 'oversize'; head: Buffer; size: number };

export interface MllpServerOptions {
  port: number;
  host: string;
  /** Largest message taken (bytes between the start and end blocks); larger ones get the handler's refusal. */
  maxFrameBytes: number;
  /** The reply to one message (unframed), or null for none. Called for one message of a connection at a time. */
  handle: (input: MllpInput, peer: string) => Promise<string | Buffer | null>;
  log: Log;
}

export interface MllpServer {
  port: number;
  close(): Promise<void>;
}

/** Messages waiting on one connection before it stops reading (TCP backpressure does the rest). */
const QUEUE_HIGH_WATER = 32;

export async function startMllpServer(options: MllpServerOptions): Promise<MllpServer> {
  const sockets = new Set<Socket>();
  // Half-open: a sender may send its last message and close its side at once; the replies still go back.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.setKeepAlive(true, 60_000);
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const decoder = new MllpDecoder(options.maxFrameBytes);
    const queue: MllpInput[] = [];
    let working = false;
    let ended = false;
    const work = async () => {
      if (working) return;
      working = true;
      while (queue.length && !socket.destroyed) {
        const input = queue.shift() as MllpInput;
        if (queue.length < QUEUE_HIGH_WATER / 2 && socket.isPaused()) socket.resume();
        try {
          const reply = await options.handle(input, peer);
          if (reply !== null && !socket.destroyed) socket.write(mllpFrame(reply));
        } catch (error) {
          options.log('error', `HL7 ${peer}: message not answered: ${(error as Error).message}`);
        }
      }
      working = false;
      if (ended && !socket.destroyed) socket.end();
    };
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'garbage') {
          options.log('warn', `HL7 ${peer}: ${event.bytes} byte(s) outside an MLLP frame skipped`);
          continue;
        }
        if (event.kind === 'oversize')
          options.log(
            'warn',
            `HL7 ${peer}: a ${event.size}-byte message is over the ${options.maxFrameBytes}-byte limit`,
          );
        queue.push(event);
      }
      if (queue.length >= QUEUE_HIGH_WATER) socket.pause();
      void work();
    });
    let droppedReported = false;
    const reportUnfinished = (how: string) => {
      if (droppedReported || decoder.unfinished === 0) return;
      droppedReported = true;
      options.log(
        'warn',
        `HL7 ${peer}: connection ${how} with ${decoder.unfinished} byte(s) of an unfinished frame: dropped, nothing applied`,
      );
    };
    socket.on('end', () => {
      reportUnfinished('ended');
      ended = true;
      if (!working) socket.end();
    });
    socket.on('error', (error) => options.log('warn', `HL7 ${peer}: ${error.message}`));
    socket.on('close', (hadError) => {
      reportUnfinished(hadError ? 'reset' : 'closed');
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => options.log('error', `HL7 listener: ${error.message}`));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
