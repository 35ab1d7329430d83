import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { startLink, type Link, type LinkOptions } from '../support/link-simulator.js';

interface TestServer {
  port: number;
  /** Every connection the server has seen, in order. */
  sockets: net.Socket[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(onConnection: (socket: net.Socket) => void): Promise<TestServer> {
  const sockets: net.Socket[] = [];
  const tcp = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const result: TestServer = {
    port: (tcp.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        tcp.close(() => resolve());
      }),
  };
  cleanups.push(() => result.close());
  return result;
}

/** Sends back what it gets; ends when the client ends. */
const echoServer = () => server((socket) => socket.pipe(socket));

async function link(target: TestServer, options: Omit<LinkOptions, 'target'> = {}): Promise<Link> {
  const result = await startLink({ ...options, target: { host: '127.0.0.1', port: target.port } });
  cleanups.push(() => result.close());
  return result;
}

async function connect(through: Link): Promise<net.Socket> {
  const socket = net.connect(through.port, through.host);
  socket.on('error', () => undefined);
  cleanups.push(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Resolves with the first `bytes` bytes the socket receives. */
function receive(socket: net.Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= bytes) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(Buffer.concat(chunks).subarray(0, bytes));
      }
    };
    const onClose = () => reject(new Error(`closed after ${length} of ${bytes} bytes`));
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Writes all of `data` with backpressure. */
async function send(socket: net.Socket, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; offset += 64 * 1024) {
    if (!socket.write(data.subarray(offset, offset + 64 * 1024)))
      await new Promise<void>((resolve) => socket.once('drain', resolve));
  }
}

const closed = (socket: net.Socket) =>
  new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A sink that counts what it receives and resolves once it has `bytes`, with the time it took. */
async function sink(bytes: number) {
  let received = 0;
  let done!: (at: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
  const target = await server((socket) =>
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= bytes) done(performance.now());
    }),
  );
  return { target, finished, received: () => received };
}

async function ping(socket: net.Socket, message = 'ping'): Promise<string> {
  const reply = receive(socket, message.length);
  socket.write(message);
  return (await reply).toString();
}

describe('link simulator', () => {
  it('limits the rate: 2 MB at 8 Mbit/s takes about 2 s', async () => {
    const bytes = 2_000_000;
    const { target, finished, received } = await sink(bytes);
    const through = await link(target, { bitsPerSecond: 8_000_000 });
    const client = await connect(through);
    const start = performance.now();
    await send(client, randomBytes(bytes));
    const seconds = ((await finished) - start) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(1.9);
    expect(seconds).toBeLessThan(6);
    expect(received()).toBe(bytes);
    expect(through.stats.bytesUp).toBe(bytes);
    expect(through.stats.bytesDown).toBe(0);
  });

  it('shares the rate between connections, as one radio link', async () => {
    const bytes = 1_000_000;
    const { target, finished } = await sink(2 * bytes);
    const through = await link(target, { bitsPerSecond: 8_000_000 });
    const [a, b] = await Promise.all([connect(through), connect(through)]);
    const start = performance.now();
    await Promise.all([send(a, randomBytes(bytes)), send(b, randomBytes(bytes))]);
    expect(((await finished) - start) / 1000).toBeGreaterThanOrEqual(1.9);
    expect(through.stats).toMatchObject({ connections: 2, bytesUp: 2 * bytes });
  });

  it('applies backpressure to a sender the far end does not read from, instead of buffering it', async () => {
    const target = await server((socket) => socket.pause());
    const through = await link(target);
    const client = await connect(through);
    const bytes = 64 * 1024 * 1024;
    client.write(randomBytes(bytes));
    await sleep(1000);
    // The kernels' socket buffers hold some (a few MB on loopback); the rest waits in the sender.
    expect(through.stats.bytesUp).toBeLessThan(bytes / 2);
    expect(client.writableLength).toBeGreaterThan(bytes / 2);
  });

  it('delivers 5 MB of random data intact both ways, through shaping and latency', async () => {
    const target = await echoServer();
    const through = await link(target, { bitsPerSecond: 400_000_000, latencyMs: 5 });
    const client = await connect(through);
    const data = randomBytes(5 * 1024 * 1024);
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise<void>((resolve) => client.once('end', resolve));
    await send(client, data);
    client.end(); // the echo server ends when it has echoed everything: the end travels both ways too
    await ended;
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    expect(through.stats).toMatchObject({ bytesUp: data.length, bytesDown: data.length });
  });

  it('delivers intact data while the rate changes, unlimited included', async () => {
    const target = await echoServer();
    const through = await link(target, { bitsPerSecond: 50_000_000 });
    const client = await connect(through);
    const data = randomBytes(5 * 1024 * 1024);
    const echoed = receive(client, data.length);
    const changes = setInterval(
      () => through.setRate(Math.random() < 0.3 ? undefined : 20e6 + Math.random() * 80e6),
      20,
    );
    try {
      await send(client, data);
      expect(sha256(await echoed)).toBe(sha256(data));
    } finally {
      clearInterval(changes);
    }
  });

  it('adds the latency each way: a round trip takes at least twice the one-way delay', async () => {
    const target = await echoServer();
    const through = await link(target, { latencyMs: 100 });
    const client = await connect(through);
    for (let i = 0; i < 2; i++) {
      const start = performance.now();
      expect(await ping(client)).toBe('ping');
      expect(performance.now() - start).toBeGreaterThanOrEqual(200);
    }
  });

  it('cuts (reset): the open connection is closed, a new one afterwards works', async () => {
    const target = await echoServer();
    const through = await link(target);
    const client = await connect(through);
    expect(await ping(client)).toBe('ping');
    const seen: { error?: NodeJS.ErrnoException } = {};
    client.on('error', (error) => (seen.error = error));
    through.cut();
    await closed(client);
    expect(seen.error?.code).toBe('ECONNRESET');
    await until(() => target.sockets[0]!.destroyed);
    expect(through.stats).toMatchObject({ cuts: 1, connectionsCut: 1, open: 0 });

    const again = await connect(through);
    expect(await ping(again, 'again')).toBe('again');
    expect(through.stats).toMatchObject({ connections: 2, cuts: 1, open: 1 });
  });

  it('cuts every cutEveryMs, each time only the connections open then', async () => {
    const target = await echoServer();
    const through = await link(target, { cutEveryMs: 200 });
    for (let i = 0; i < 3; i++) {
      const client = await connect(through);
      expect(await ping(client)).toBe('ping');
      await closed(client);
    }
    expect(through.stats.cuts).toBeGreaterThanOrEqual(3);
    expect(through.stats.connectionsCut).toBe(3);
  });

  it('cuts (blackhole): bytes stop flowing but the sockets stay open', async () => {
    const target = await echoServer();
    const through = await link(target, { cutMode: 'blackhole' });
    const client = await connect(through);
    expect(await ping(client)).toBe('ping');
    const before = { ...through.stats };
    let received = 0;
    client.on('data', (chunk: Buffer) => (received += chunk.length));
    through.cut();
    client.write(randomBytes(100_000));
    await sleep(300);
    expect(received).toBe(0);
    expect(through.stats.bytesUp).toBe(before.bytesUp);
    expect(through.stats.bytesDown).toBe(before.bytesDown);
    expect(client.destroyed).toBe(false);
    expect(target.sockets[0]!.destroyed).toBe(false);
    expect(through.stats.open).toBe(1);

    // The link itself has come back: a new connection works, alongside the dead one.
    const again = await connect(through);
    expect(await ping(again, 'again')).toBe('again');
    expect(received).toBe(0);
  });

  it('changes address: the server sees the next connection come from a new IP', async () => {
    const target = await echoServer();
    const through = await link(target);
    const first = await connect(through);
    expect(await ping(first)).toBe('ping');
    expect(target.sockets[0]!.remoteAddress).toBe('127.0.0.1');

    through.changeAddress();
    await closed(first);
    expect(through.localAddress).toBe('127.0.0.2');
    const second = await connect(through);
    expect(await ping(second)).toBe('ping');
    expect(target.sockets[1]!.remoteAddress).toBe('127.0.0.2');

    through.changeAddress();
    const third = await connect(through);
    expect(await ping(third)).toBe('ping');
    expect(target.sockets[2]!.remoteAddress).toBe('127.0.0.3');
    expect(through.stats.cuts).toBe(2);
  });
});

async function until(what: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}
