/**
 * The client side of a MESH mailbox (NHS England's Message Exchange for Social Care and Health), as its REST API
 * describes it (digital.nhs.uk "MESH API"; github.com/NHSDigital/mesh-api-specification):
 *
 * - POST   /messageexchange/{mailbox}/outbox                        send (Mex-To, Mex-WorkflowID, Mex-LocalID…) → messageID
 * - GET    /messageexchange/{mailbox}/outbox/tracking?messageID=…  what became of a sent message
 * - GET    /messageexchange/{mailbox}/outbox/tracking/{localID}    the same by our own id (deprecated at MESH, still
 *                                                                  the only way to ask "did my lost send arrive?")
 * - GET    /messageexchange/{mailbox}/inbox                         message ids waiting
 * - GET    /messageexchange/{mailbox}/inbox/{id}                    one message: body and Mex-* headers
 * - PUT    /messageexchange/{mailbox}/inbox/{id}/status/acknowledged  done with it: it leaves the inbox
 * - GET    /messageexchange/{mailbox}                               handshake (validate the mailbox)
 *
 * Every request carries a fresh "NHSMESH mailbox:nonce:nonce_count:timestamp:hmac" Authorization token (HMAC-SHA256
 * of mailbox:nonce:nonce_count:password:timestamp under the environment's shared key). Errors say whether trying again
 * later can help (network, timeouts, 5xx, 429, 408, and 401/403: credentials or the clock, which a person can fix)
 * or not (any other 4xx: an unknown recipient mailbox, a malformed request).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

/** The hub's own MESH mailbox and where the MESH server is. */
export interface MeshSettings {
  /** Base URL of the MESH server, e.g. https://mesh.example.nhs.uk */
  url: string;
  /** The hub's mailbox ID. */
  mailbox: string;
  password: string;
  /** The MESH environment's shared secret: the HMAC key of every Authorization token. */
  sharedKey: string;
  /** The workflow of the result messages (default GP_RESULT_WORKFLOW); responses come back on `${it}_ACK`. */
  workflowId?: string;
  /** How often the hub's worker sends what is queued and checks for news, in seconds (default 30). */
  pollIntervalSeconds?: number;
  /** A sent message not acknowledged by the practice within this many hours raises an alert (default 48). */
  acknowledgementLimitHours?: number;
  /** Attempts at sending before a message is marked failed (default 8). */
  maxAttempts?: number;
  /** Each request's time limit, in milliseconds (default 15000). */
  timeoutMs?: number;
  /** Client certificate, key and CA (PEM) for MESH's mutual TLS, when the URL is https. */
  tls?: { ca?: string; cert?: string; key?: string };
}

/**
 * The workflow ID of a breast screening result to a GP practice. Not a workflow registered with MESH: a real
 * mailbox would be given one at onboarding, set in MeshSettings.workflowId.
 */
export const GP_RESULT_WORKFLOW = 'BREAST_SCREENING_GP_RESULT';
export const ackWorkflow = (workflowId: string) => `${workflowId}_ACK`;

export const MESH_DEFAULTS = {
  pollIntervalSeconds: 30,
  acknowledgementLimitHours: 48,
  maxAttempts: 8,
  timeoutMs: 15_000,
} as const;

export class MeshError extends Error {
  override readonly name = 'MeshError';
  constructor(
    message: string,
    /** transient: trying again later may work; permanent: it will not, as things stand. */
    readonly kind: 'transient' | 'permanent',
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Whether an HTTP status from MESH is worth trying again later. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408 || status === 401 || status === 403;
}

/** yyyyMMddHHmm in UTC, as the token's timestamp. */
export function meshTimestamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:TZ.]/g, '')
    .slice(0, 12);
}

export interface TokenParts {
  mailbox: string;
  nonce: string;
  nonceCount: number;
  timestamp: string;
  hash: string;
}

const SCHEME = 'NHSMESH ';

function tokenHash(sharedKey: string, p: Omit<TokenParts, 'hash'>, password: string): string {
  return createHmac('sha256', sharedKey)
    .update(`${p.mailbox}:${p.nonce}:${p.nonceCount}:${password}:${p.timestamp}`)
    .digest('hex');
}

/** The Authorization header's value for one request (a new nonce each time: MESH refuses a token used twice). */
export function meshAuthorization(
  mailbox: string,
  password: string,
  sharedKey: string,
  options: { nonce?: string; nonceCount?: number; at?: Date } = {},
): string {
  const parts = {
    mailbox: mailbox.toUpperCase(),
    nonce: options.nonce ?? randomUUID(),
    nonceCount: options.nonceCount ?? 0,
    timestamp: meshTimestamp(options.at ?? new Date()),
  };
  const hash = tokenHash(sharedKey, parts, password);
  return `${SCHEME}${parts.mailbox}:${parts.nonce}:${parts.nonceCount}:${parts.timestamp}:${hash}`;
}

/** Reads an Authorization header into its parts, or null when it is not an NHSMESH token. */
export function parseMeshAuthorization(header: string | undefined): TokenParts | null {
  if (!header?.startsWith(SCHEME)) return null;
  const fields = header.slice(SCHEME.length).split(':');
  if (fields.length !== 5) return null;
  const [mailbox, nonce, count, timestamp, hash] = fields as [string, string, string, string, string];
  if (!mailbox || !nonce || !/^\d+$/.test(count) || !/^\d{12}$/.test(timestamp) || !/^[0-9a-f]{64}$/.test(hash)) {
    return null;
  }
  return { mailbox, nonce, nonceCount: Number(count), timestamp, hash };
}

/**
 * Checks a token the way a MESH server does: well formed, the hash right for that mailbox's password, and the
 * timestamp within two hours of `now`. Returns the problem, or null when it is good. (Refusing a nonce used before
 * is the server's job: it needs memory.)
 */
export function meshAuthorizationProblem(
  parts: TokenParts,
  password: string,
  sharedKey: string,
  now: Date = new Date(),
): string | null {
  const expected = Buffer.from(tokenHash(sharedKey, parts, password));
  const given = Buffer.from(parts.hash);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'hash does not match';
  const t = parts.timestamp;
  const at = Date.UTC(+t.slice(0, 4), +t.slice(4, 6) - 1, +t.slice(6, 8), +t.slice(8, 10), +t.slice(10, 12));
  if (Number.isNaN(at) || Math.abs(now.getTime() - at) > 2 * 60 * 60 * 1000) return 'timestamp is not within 2 hours';
  return null;
}

export interface SendRequest {
  to: string;
  workflowId: string;
  body: string | Buffer;
  /** Our own id for the message: no personal data. Lets us find it again if the answer to the send is lost. */
  localId?: string;
  subject?: string;
  fileName?: string;
  contentType?: string;
}

/** What MESH says of a sent message. status: Accepted (waiting in the recipient's inbox), Acknowledged (the
 * recipient downloaded and acknowledged it), or an error status (Undeliverable, Expired…). */
export interface Tracking {
  messageId: string;
  localId: string | null;
  recipient: string | null;
  status: string;
  /** yyyyMMddHHmmss, UTC, when the recipient downloaded it. */
  downloadTimestamp: string | null;
  statusDescription: string | null;
}

export interface InboxMessage {
  messageId: string;
  /** DATA, or REPORT for MESH's own error report about a message we sent (Mex-LinkedMsgID). */
  messageType: string;
  from: string | null;
  to: string | null;
  workflowId: string | null;
  localId: string | null;
  subject: string | null;
  linkedMessageId: string | null;
  statusDescription: string | null;
  body: Buffer;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** MESH's yyyyMMddHHmmss (UTC) as a Date, or null. */
export function parseMeshTime(value: string | null | undefined): Date | null {
  if (!value || !/^\d{14}$/.test(value)) return null;
  const d = new Date(
    Date.UTC(
      +value.slice(0, 4),
      +value.slice(4, 6) - 1,
      +value.slice(6, 8),
      +value.slice(8, 10),
      +value.slice(10, 12),
      +value.slice(12, 14),
    ),
  );
  return Number.isNaN(d.getTime()) ? null : d;
}

const header = (headers: http.IncomingHttpHeaders, name: string): string | null => {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
};

export class MeshClient {
  readonly mailbox: string;
  readonly workflowId: string;
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(readonly settings: MeshSettings) {
    this.mailbox = settings.mailbox.toUpperCase();
    this.workflowId = settings.workflowId ?? GP_RESULT_WORKFLOW;
    this.base = new URL(settings.url.endsWith('/') ? settings.url : `${settings.url}/`);
    this.timeoutMs = settings.timeoutMs ?? MESH_DEFAULTS.timeoutMs;
  }

  private path(rest: string): URL {
    return new URL(`messageexchange/${encodeURIComponent(this.mailbox)}${rest}`, this.base);
  }

  private request(
    method: string,
    url: URL,
    options: { headers?: Record<string, string>; body?: Buffer } = {},
  ): Promise<Answer> {
    const secure = url.protocol === 'https:';
    const transport = secure ? https : http;
    const headers: Record<string, string> = {
      authorization: meshAuthorization(this.mailbox, this.settings.password, this.settings.sharedKey),
      accept: 'application/json',
      'mex-clientversion': 'ScreeningHub==0.1.0',
      'mex-osname': process.platform,
      'mex-osversion': process.version,
      ...options.headers,
    };
    if (options.body) headers['content-length'] = String(options.body.length);
    return new Promise<Answer>((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method,
          headers,
          ...(secure && this.settings.tls
            ? { ca: this.settings.tls.ca, cert: this.settings.tls.cert, key: this.settings.tls.key }
            : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', (e) => reject(new MeshError(`MESH connection failed: ${e.message}`, 'transient')));
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(
          new MeshError(`MESH did not answer within ${Math.round(this.timeoutMs / 1000)} seconds`, 'transient'),
        );
      });
      req.on('error', (e) =>
        reject(e instanceof MeshError ? e : new MeshError(`Could not reach MESH: ${e.message}`, 'transient')),
      );
      req.end(options.body);
    });
  }

  private fail(what: string, answer: Answer): MeshError {
    let description = '';
    try {
      const json = JSON.parse(answer.body.toString('utf8')) as {
        errorDescription?: string;
        errorCode?: string | number;
      };
      if (json.errorDescription) {
        description = `: ${json.errorDescription}${json.errorCode ? ` (MESH error ${json.errorCode})` : ''}`;
      }
    } catch {
      // Not JSON: the status says enough.
    }
    return new MeshError(
      `${what} failed: HTTP ${answer.status}${description}`,
      isTransientStatus(answer.status) ? 'transient' : 'permanent',
      answer.status,
    );
  }

  private json<T>(answer: Answer, what: string): T {
    try {
      return JSON.parse(answer.body.toString('utf8')) as T;
    } catch {
      throw new MeshError(`${what}: MESH's answer was not JSON`, 'transient', answer.status);
    }
  }

  /** Validates the mailbox (MESH asks for this once a day). */
  async handshake(): Promise<void> {
    const answer = await this.request('GET', this.path(''));
    if (answer.status !== 200) throw this.fail('Handshake', answer);
  }

  /** Sends one message; returns MESH's message id. */
  async send(message: SendRequest): Promise<string> {
    const body = typeof message.body === 'string' ? Buffer.from(message.body, 'utf8') : message.body;
    const headers: Record<string, string> = {
      'content-type': message.contentType ?? 'application/octet-stream',
      'mex-from': this.mailbox,
      'mex-to': message.to.toUpperCase(),
      'mex-workflowid': message.workflowId,
      'mex-filename': message.fileName ?? 'message.json',
    };
    if (message.localId) headers['mex-localid'] = message.localId;
    if (message.subject) headers['mex-subject'] = message.subject;
    const answer = await this.request('POST', this.path('/outbox'), { headers, body });
    if (answer.status !== 202 && answer.status !== 200) throw this.fail('Sending', answer);
    const json = this.json<{ messageID?: string; messageId?: string }>(answer, 'Sending');
    const id = json.messageID ?? json.messageId;
    if (!id) throw new MeshError('Sending: MESH gave no message id', 'transient', answer.status);
    return id;
  }

  private async track(url: URL): Promise<Tracking | null> {
    const answer = await this.request('GET', url);
    // A message MESH does not know (of this mailbox): the MESH API specification gives 403 "Message does not exist"
    // for both tracking calls, MESH's sandbox 404 (and 410 for one gone). A 403 that is really bad credentials shows
    // up on the next call (a send, the inbox) as the transient error it is; tracking alone must not wait on it, or a
    // retry after a lost first send would fail every attempt until they ran out.
    if (answer.status === 403 || answer.status === 404 || answer.status === 410) return null;
    if (answer.status !== 200) throw this.fail('Tracking', answer);
    const j = this.json<Record<string, unknown>>(answer, 'Tracking');
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    const messageId = str(j.messageId) ?? str(j.dtsId);
    if (!messageId) return null;
    return {
      messageId,
      localId: str(j.localId),
      recipient: str(j.recipient),
      status: str(j.status) ?? 'Unknown',
      downloadTimestamp: str(j.downloadTimestamp),
      statusDescription: str(j.statusDescription),
    };
  }

  /** What became of a message we sent, by MESH's id (null: MESH does not know it). */
  trackMessage(messageId: string): Promise<Tracking | null> {
    const url = this.path('/outbox/tracking');
    url.searchParams.set('messageID', messageId);
    return this.track(url);
  }

  /** The same, by our own Mex-LocalID: finds a message whose send we never heard the answer to. */
  trackLocalId(localId: string): Promise<Tracking | null> {
    return this.track(this.path(`/outbox/tracking/${encodeURIComponent(localId)}`));
  }

  /** The ids of messages waiting in our inbox (at most 500 at a time, as MESH gives them). */
  async listInbox(): Promise<string[]> {
    const answer = await this.request('GET', this.path('/inbox'));
    if (answer.status !== 200) throw this.fail('Checking the inbox', answer);
    const json = this.json<{ messages?: unknown }>(answer, 'Checking the inbox');
    return Array.isArray(json.messages) ? json.messages.filter((m): m is string => typeof m === 'string') : [];
  }

  /** Downloads one message (null: gone, already acknowledged). */
  async download(messageId: string): Promise<InboxMessage | null> {
    const answer = await this.request('GET', this.path(`/inbox/${encodeURIComponent(messageId)}`));
    if (answer.status === 404 || answer.status === 410) return null;
    if (answer.status !== 200) throw this.fail('Downloading a message', answer);
    const h = answer.headers;
    return {
      messageId: header(h, 'mex-messageid') ?? messageId,
      messageType: header(h, 'mex-messagetype') ?? 'DATA',
      from: header(h, 'mex-from'),
      to: header(h, 'mex-to'),
      workflowId: header(h, 'mex-workflowid'),
      localId: header(h, 'mex-localid'),
      subject: header(h, 'mex-subject'),
      linkedMessageId: header(h, 'mex-linkedmsgid'),
      statusDescription: header(h, 'mex-statusdescription'),
      body: answer.body,
    };
  }

  /** Tells MESH we have the message: it leaves our inbox (and the sender's tracking says Acknowledged). */
  async acknowledge(messageId: string): Promise<void> {
    const answer = await this.request('PUT', this.path(`/inbox/${encodeURIComponent(messageId)}/status/acknowledged`));
    // Already acknowledged (410) is what we wanted.
    if (answer.status !== 200 && answer.status !== 410) throw this.fail('Acknowledging a message', answer);
  }
}
