import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GatewayIdentity } from './identity.js';

export class HubError extends Error {
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
  private open(path: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const options: RequestOptions = { method: 'GET', agent: this.agent, headers: { accept: 'text/event-stream' } };
      const req = request(new URL(path, this.hubUrl), options, resolve);
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`no answer from the hub in ${this.timeoutMs / 1000} s`)),
      );
      req.on('error', reject);
      req.end();
    });
  }

  private async json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const answer = await this.exchange(method, path, {
      headers: {
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      },
      ...(payload ? { body: payload } : {}),
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
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('error', reject);
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
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`the link to the hub carried nothing for ${this.timeoutMs / 1000} s`)),
      );
      req.on('error', reject);
      if (options.body instanceof Buffer) req.end(options.body);
      else if (options.body) pipeline(options.body, req).catch((error: Error) => req.destroy(error));
      else req.end();
    });
  }

  get<T>(path: string): Promise<T> {
    return this.json('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.json('POST', path, body);
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
    const end = (error: Error) => {
      if (ended) return;
      ended = true;
      if (watchdog) clearTimeout(watchdog);
      response?.destroy();
      onEnd(error);
    };
    const alive = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => end(new Error(`nothing from the hub for ${silenceMs / 1000} s`)), silenceMs);
    };
    alive();
    this.open(path)
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
        res.on('end', () => end(new Error('the hub ended the push stream')));
        res.on('error', (error) => end(error));
        res.on('close', () => end(new Error('the push stream closed')));
      })
      .catch((error: Error) => end(error));
    return { close: () => end(new Error('closed')) };
  }

  close(): void {
    this.agent.destroy();
  }
}
