import { Agent, request, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { phaseFailure } from '../protocol/failure-phase.js';
import { classifyLinkError, PhaseError, type LinkStage } from './failure-classifier.js';
import type { GatewayIdentity } from './identity.js';

/** The hub answered with an error status (its phase: failure-classifier.ts). */
export class HubError extends Error {
  override readonly name = 'HubError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the hub said in an error answer: its JSON message, or the start of the text when it is not JSON. */
export function hubMessage(text: string): string {
  try {
    const message = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON (a proxy's error page, say): keep the text
  }
  return text.slice(0, 300);
}

function refusal(status: number, text: string): HubError {
  return new HubError(status, `hub answered HTTP ${status}: ${hubMessage(text)}`);
}

/**
 * Follows how far a request has come (looked up, connected, secured, answered), so a failure can be named by its
 * phase: the same ECONNRESET means a different thing before the TLS handshake and in the middle of an upload.
 */
function trackStage(req: ClientRequest): { readonly stage: LinkStage; answered(): void } {
  let stage: LinkStage = 'start';
  req.once('socket', (socket: Socket) => {
    // A kept-alive socket comes already connected and secured.
    if (!socket.connecting) {
      stage = 'secured';
      return;
    }
    socket.once('lookup', () => (stage = 'resolved'));
    socket.once('connect', () => (stage = 'connected'));
    socket.once('secureConnect', () => (stage = 'secured'));
  });
  return {
    get stage() {
      return stage;
    },
    answered: () => (stage = 'answered'),
  };
}

/** The transport error as a PhaseError (its message kept, for the logs as they were); a HubError stays as it is. */
function named(error: unknown, stage: LinkStage): Error {
  if (error instanceof HubError || error instanceof PhaseError) return error;
  if ((error as Error).name === 'AbortError') return error as Error;
  return new PhaseError(classifyLinkError(error, stage), (error as Error).message, error);
}

/** The push stream was closed by the gateway itself (not a failure of the link: the reason it was closed is). */
export class StreamClosed extends Error {
  override readonly name = 'StreamClosed';
}

export interface EventStream {
  close(): void;
}

/**
 * The gateway's only way to the hub: HTTPS with its client certificate, trusting only the hub's gateway
 * authority (mutual TLS). Keeps connections alive across requests; a dropped link fails the request in hand.
 */
export class HubConnection {
  private readonly agent: Agent;

  constructor(
    readonly hubUrl: string,
    identity: GatewayIdentity,
    private readonly timeoutMs = 15_000,
  ) {
    this.agent = new Agent({
      keepAlive: true,
      ca: identity.authorityPem,
      cert: identity.certificatePem,
      key: identity.privateKeyPem,
      maxSockets: 4,
    });
  }

  /** A GET whose answer is read as it comes (the push stream). */
  private open(path: string, stage: (get: () => LinkStage) => void): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const options: RequestOptions = { method: 'GET', agent: this.agent, headers: { accept: 'text/event-stream' } };
      const req = request(new URL(path, this.hubUrl), options, (response) => {
        progress.answered();
        resolve(response);
      });
      const progress = trackStage(req);
      stage(() => progress.stage);
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`no answer from the hub in ${this.timeoutMs / 1000} s`)),
      );
      req.on('error', (error) => reject(named(error, progress.stage)));
      req.end();
    });
  }

  private async json<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const answer = await this.exchange(method, path, {
      headers: {
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      },
      ...(payload ? { body: payload } : {}),
      ...(signal ? { signal } : {}),
    });
    if (answer.status >= 300) throw refusal(answer.status, answer.text);
    return JSON.parse(answer.text) as T;
  }

  /**
   * One request with any method, headers and a body (streamed, for an upload); resolves with the status, headers
   * and text of the answer. `signal` aborts it. A link that carries nothing for the timeout fails it.
   */
  exchange(
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: Readable | Buffer; signal?: AbortSignal } = {},
  ): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.hubUrl),
        {
          method,
          agent: this.agent,
          headers: options.headers ?? {},
          ...(options.signal ? { signal: options.signal } : {}),
        },
        (response) => {
          progress.answered();
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('error', (error) => reject(named(error, progress.stage)));
          response.on('end', () => {
            // The hub answered before the whole body went (an error, say): the rest is not wanted, and the
            // connection, with a request half sent on it, must not be kept for the next one.
            if (!req.writableFinished) req.destroy();
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      const progress = trackStage(req);
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`the link to the hub carried nothing for ${this.timeoutMs / 1000} s`)),
      );
      req.on('error', (error) => reject(named(error, progress.stage)));
      if (options.body instanceof Buffer) req.end(options.body);
      else if (options.body) pipeline(options.body, req).catch((error: Error) => req.destroy(error));
      else req.end();
    });
  }

  get<T>(path: string): Promise<T> {
    return this.json('GET', path);
  }

  /** `signal` aborts it (a request stuck on a link found dead, say). */
  post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.json('POST', path, body, signal);
  }

  /**
   * Server-sent events from the hub. `onEvent` gets each event's name and data; `onEnd` is called once, when the
   * stream ends for any reason (hub gone, link dropped, `close()`, or no byte for `silenceMs`).
   */
  events(
    path: string,
    onEvent: (name: string, data: string) => void,
    onEnd: (error: Error) => void,
    silenceMs = 45_000,
  ): EventStream {
    let ended = false;
    let response: IncomingMessage | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let stage: () => LinkStage = () => 'start';
    const end = (error: Error) => {
      if (ended) return;
      ended = true;
      if (watchdog) clearTimeout(watchdog);
      response?.destroy();
      onEnd(error);
    };
    const alive = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        const message = `nothing from the hub for ${silenceMs / 1000} s`;
        // Silence before the stream opened is named by how far its request came (a handshake that hung, say).
        const failure = response
          ? phaseFailure('silent_link', `The push stream looked open but carried nothing for ${silenceMs / 1000} s`)
          : classifyLinkError(new Error(message), stage());
        if (failure.phase === 'silent_link') this.dropIdleSockets();
        // A silent stream means a dead link (issue 8, liveness): the idle kept-alive connections went over it too,
        // and the next request must not wait out its own timeout on one of them before the link is made again.
        this.dropIdleConnections();
        end(new PhaseError(failure, message));
      }, silenceMs);
    };
    alive();
    this.open(path, (get) => (stage = get))
      .then((res) => {
        response = res;
        if (ended) return res.destroy();
        // The stream's own watchdog (silenceMs) judges it from here: the request's 15 s idle limit would race the
        // hub's 15 s heartbeat and cut a healthy stream.
        res.socket?.setTimeout(0);
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            end(refusal(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          });
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (text: string) => {
          alive();
          buffer += text;
          let blank: number;
          while ((blank = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, blank);
            buffer = buffer.slice(blank + 2);
            let name = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length > 0) onEvent(name, data.join('\n'));
          }
        });
        const dropped = (message: string) =>
          new PhaseError(phaseFailure('link_dropped', `The hub’s push stream ended: ${message}`), message);
        res.on('end', () => end(dropped('the hub ended the push stream')));
        res.on('error', (error) => end(named(error, 'answered')));
        res.on('close', () => end(dropped('the push stream closed')));
      })
      .catch((error: Error) => end(error));
    return { close: () => end(new StreamClosed('closed')) };
  }

  /** Ends the kept-alive connections not in use now (issue 8, liveness); requests in flight keep theirs. */
  dropIdleConnections(): void {
    for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }

  /**
   * Drops the kept-alive sockets waiting for a next request: after a silent link they most likely lead nowhere
   * too, and the next request would otherwise find that out only after its own timeout.
   */
  private dropIdleSockets(): void {
    for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }

  close(): void {
    this.agent.destroy();
  }
}
