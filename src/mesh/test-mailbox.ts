/**
 * A local MESH-style mailbox server for tests and the demo: the endpoints src/mesh/mesh-client.ts uses, for several
 * mailboxes, in memory (nothing survives close). It checks each request's NHSMESH token (mailbox known, the hash
 * right for its password under the shared key, timestamp within 2 hours, the nonce not used before) and that the
 * token's mailbox is the one in the path. Sending to a mailbox it does not know is refused with 417 (MESH error 12,
 * "Unregistered to address"), as MESH does.
 *
 * A request it cannot make sense of (a malformed path or header) is answered 400, anything else that goes wrong 500:
 * nothing a client sends throws out of the server (in the demo it runs inside the hub's process).
 *
 * Tests can make it misbehave: failNext(n) answers the next n requests with 503 (or another status), dropNext(n)
 * closes their sockets without an answer, before or after doing what they asked (the send that arrived but whose
 * answer was lost). Plain HTTP: MESH itself is HTTPS with client certificates.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { meshAuthorizationProblem, parseMeshAuthorization } from './mesh-client.js';

/** The shared key the test mailbox and the demo use unless told otherwise (a real environment has its own). */
export const TEST_MESH_SHARED_KEY = 'TestMeshSharedKey';

export interface TestMailboxAccount {
  /** Mailbox ID: upper-case letters and digits. */
  id: string;
  password: string;
}

export interface StoredMessage {
  messageId: string;
  from: string;
  to: string;
  workflowId: string;
  localId: string | null;
  subject: string | null;
  fileName: string | null;
  contentType: string;
  body: Buffer;
  uploadedAt: Date;
  downloadedAt: Date | null;
  acknowledgedAt: Date | null;
  /** Not collected in time: gone from the inbox, and the sender told by an error report. */
  expiredAt: Date | null;
  /** DATA, or REPORT for an error report (about linkedMessageId). */
  messageType: 'DATA' | 'REPORT';
  linkedMessageId: string | null;
  statusDescription: string | null;
}

type Match = (method: string, path: string) => boolean;

interface Fault {
  kind: 'status' | 'drop';
  status: number;
  after: boolean;
  match: Match;
}

export interface TestMailbox {
  url: string;
  port: number;
  sharedKey: string;
  /** Every message ever sent through it, in order (acknowledged ones too). */
  readonly messages: readonly StoredMessage[];
  /** Messages sent to this mailbox (acknowledged ones too). */
  messagesTo(mailbox: string): StoredMessage[];
  /** Ids waiting in this mailbox's inbox. */
  inbox(mailbox: string): string[];
  addMailbox(account: TestMailboxAccount): void;
  /**
   * A message left uncollected too long (MESH: 5 days): it leaves the recipient's inbox, and the sender gets an
   * error report (Mex-MessageType REPORT, Mex-LinkedMsgID) in its inbox.
   */
  expire(messageId: string): void;
  /** The next n requests (those `match` picks, default all) are answered with `status` (default 503). */
  failNext(n: number, options?: { status?: number; match?: Match }): void;
  /**
   * The next n requests (those `match` picks) get their socket closed without an answer: before doing anything, or
   * with `afterProcessing` once what they asked for is done (a send that arrived, its answer lost).
   */
  dropNext(n: number, options?: { afterProcessing?: boolean; match?: Match }): void;
  /** Requests seen, by "METHOD /path" (for tests that count retries). */
  readonly requests: readonly string[];
  close(): Promise<void>;
}

export interface TestMailboxOptions {
  port?: number;
  host?: string;
  sharedKey?: string;
  mailboxes: TestMailboxAccount[];
  /** The clock (tests can move it); default the real one. */
  now?: () => Date;
}

/** A request the mailbox cannot make sense of: answered 400. */
class BadRequest extends Error {}

/** A path segment, %-decoded; a malformed one (a stray or truncated %) is a bad request, not a crash. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequest('Bad request: the address has a malformed %-escape');
  }
}

/** Only requests to a mailbox's outbox (sending). */
export const sends: Match = (method, path) => method === 'POST' && /\/outbox$/.test(path);

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const meshTime = (d: Date) =>
  `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(
    d.getUTCMinutes(),
  )}${pad(d.getUTCSeconds())}`;

/** Parses "ID:password" (a CLI argument) into an account. */
export function parseMailboxArgument(value: string): TestMailboxAccount {
  const at = value.indexOf(':');
  const id = (at < 0 ? value : value.slice(0, at)).toUpperCase();
  const password = at < 0 ? '' : value.slice(at + 1);
  if (!/^[A-Z0-9]{6,20}$/.test(id)) throw new Error(`Mailbox ID must be 6 to 20 letters and digits: ${value}`);
  if (!password) throw new Error(`Give the mailbox's password as ID:password: ${value}`);
  return { id, password };
}

export async function startTestMailbox(options: TestMailboxOptions): Promise<TestMailbox> {
  const sharedKey = options.sharedKey ?? TEST_MESH_SHARED_KEY;
  const now = options.now ?? (() => new Date());
  const accounts = new Map<string, string>();
  const messages: StoredMessage[] = [];
  const byId = new Map<string, StoredMessage>();
  const usedNonces = new Set<string>();
  const faults: Fault[] = [];
  const requests: string[] = [];
  let sequence = 0;
  for (const a of options.mailboxes) accounts.set(a.id.toUpperCase(), a.password);

  const newMessageId = () => {
    const t = now();
    sequence += 1;
    return `${meshTime(t)}${pad(t.getUTCMilliseconds(), 3)}${pad(sequence % 1000, 3)}_${Math.floor(
      Math.random() * 0xffffff,
    )
      .toString(16)
      .toUpperCase()
      .padStart(6, '0')}`;
  };

  const waiting = (mailbox: string) => messages.filter((x) => x.to === mailbox && !x.acknowledgedAt && !x.expiredAt);

  const takeFault = (method: string, path: string): Fault | undefined => {
    const index = faults.findIndex((f) => f.match(method, path));
    return index < 0 ? undefined : faults.splice(index, 1)[0];
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => req.socket.destroy());
    req.on('end', () => {
      try {
        respond(req, res, Buffer.concat(chunks));
      } catch (error) {
        // Never out of the server: a request that makes no sense is the client's problem (400), anything else ours.
        if (res.headersSent) return void res.destroy();
        if (error instanceof BadRequest)
          send(res, 400, { errorEvent: 'REFUSED', errorCode: '400', errorDescription: error.message });
        else send(res, 500, { errorEvent: 'ERROR', errorCode: '500', errorDescription: 'Internal error' });
      }
    });
  });

  function respond(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://mailbox');
    } catch {
      throw new BadRequest('Bad request: the address is not a valid URL');
    }
    const method = req.method ?? 'GET';
    requests.push(`${method} ${url.pathname}`);
    const fault = takeFault(method, url.pathname);
    if (fault && !fault.after) {
      if (fault.kind === 'drop') return void req.socket.destroy();
      return send(res, fault.status, { errorDescription: 'Service unavailable (test fault)' });
    }
    const answer = handle(method, url, req.headers, body);
    if (fault?.kind === 'drop') return void req.socket.destroy();
    if (fault) return send(res, fault.status, { errorDescription: 'Service unavailable (test fault)' });
    if (Buffer.isBuffer(answer.body)) {
      res.writeHead(answer.status, { 'content-type': 'application/octet-stream', ...answer.headers });
      res.end(answer.body);
    } else send(res, answer.status, answer.body, answer.headers);
  }

  function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body ?? {});
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  interface Answer {
    status: number;
    body: unknown;
    headers?: Record<string, string>;
  }
  const refuse = (status: number, code: string, description: string): Answer => ({
    status,
    body: { errorEvent: 'REFUSED', errorCode: code, errorDescription: description },
  });

  function handle(method: string, url: URL, headers: http.IncomingHttpHeaders, body: Buffer): Answer {
    const m = /^\/messageexchange\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m) return refuse(404, '404', 'Not found');
    const mailbox = decodeSegment(m[1]!).toUpperCase();
    const rest = m[2] ?? '';
    const token = parseMeshAuthorization(headers.authorization);
    const password = token ? accounts.get(token.mailbox) : undefined;
    if (!token || password === undefined) return refuse(403, '403', 'Authentication failed');
    const problem = meshAuthorizationProblem(token, password, sharedKey, now());
    if (problem) return refuse(403, '403', `Authentication failed: ${problem}`);
    const nonceKey = `${token.mailbox}:${token.nonce}:${token.nonceCount}`;
    if (usedNonces.has(nonceKey)) return refuse(403, '403', 'Authentication failed: token already used');
    usedNonces.add(nonceKey);
    if (token.mailbox !== mailbox)
      return refuse(403, '07', 'Invalid From Address: the mailbox does not match the token');

    const header = (name: string) => {
      const v = headers[name];
      return (Array.isArray(v) ? v[0] : v) ?? null;
    };
    const mine = (id: string) => {
      const message = byId.get(id);
      return message && message.to === mailbox ? message : undefined;
    };
    const tracking = (message: StoredMessage): Answer => ({
      status: 200,
      body: {
        messageId: message.messageId,
        dtsId: message.messageId,
        localId: message.localId,
        sender: message.from,
        recipient: message.to,
        workflowId: message.workflowId,
        messageType: message.messageType,
        uploadTimestamp: meshTime(message.uploadedAt),
        downloadTimestamp: message.downloadedAt ? meshTime(message.downloadedAt) : null,
        status: message.acknowledgedAt ? 'Acknowledged' : message.expiredAt ? 'Expired' : 'Accepted',
        statusDescription: message.acknowledgedAt
          ? 'Acknowledged by recipient'
          : message.expiredAt
            ? 'Not collected by the recipient in time'
            : 'Transferred to recipient mailbox',
        fileName: message.fileName,
        fileSize: message.body.length,
      },
    });

    if (method === 'GET' && rest === '') return { status: 200, body: {} };
    if (method === 'POST' && rest === '/outbox') {
      const to = header('mex-to')?.toUpperCase();
      const workflowId = header('mex-workflowid');
      const from = header('mex-from')?.toUpperCase();
      if (from && from !== mailbox) return refuse(403, '07', 'Invalid From Address');
      if (!to) return refuse(400, '08', 'Missing Mex-To header');
      if (!workflowId) return refuse(400, '06', 'Malformed headers: Mex-WorkflowID is required');
      if (!accounts.has(to)) return refuse(417, '12', 'Unregistered to address');
      const message: StoredMessage = {
        messageId: newMessageId(),
        from: mailbox,
        to,
        workflowId,
        localId: header('mex-localid'),
        subject: header('mex-subject'),
        fileName: header('mex-filename'),
        contentType: header('content-type') ?? 'application/octet-stream',
        body,
        uploadedAt: now(),
        downloadedAt: null,
        acknowledgedAt: null,
        expiredAt: null,
        messageType: 'DATA',
        linkedMessageId: null,
        statusDescription: null,
      };
      messages.push(message);
      byId.set(message.messageId, message);
      return { status: 202, body: { messageID: message.messageId } };
    }
    if (method === 'GET' && rest === '/outbox/tracking') {
      const message = byId.get(url.searchParams.get('messageID') ?? '');
      if (!message || message.from !== mailbox) return refuse(404, '404', 'Message does not exist');
      return tracking(message);
    }
    const byLocal = /^\/outbox\/tracking\/([^/]+)$/.exec(rest);
    if (method === 'GET' && byLocal) {
      const localId = decodeSegment(byLocal[1]!);
      // The latest message this mailbox sent with that local id.
      const message = messages.findLast((x) => x.from === mailbox && x.localId === localId);
      // As the MESH API specification has it for this (deprecated) call: 403 "Message does not exist".
      if (!message) return refuse(403, '403', 'Message does not exist');
      return tracking(message);
    }
    if (method === 'GET' && rest === '/inbox') {
      return {
        status: 200,
        body: { messages: waiting(mailbox).map((x) => x.messageId) },
      };
    }
    const one = /^\/inbox\/([^/]+)$/.exec(rest);
    if (method === 'GET' && one) {
      const message = mine(decodeSegment(one[1]!));
      if (!message) return refuse(404, '404', 'Message does not exist');
      if (message.acknowledgedAt || message.expiredAt) {
        return refuse(410, '410', 'Gone: already acknowledged, or expired');
      }
      message.downloadedAt ??= now();
      return {
        status: 200,
        body: message.body,
        headers: {
          'content-type': message.contentType,
          'mex-messageid': message.messageId,
          'mex-messagetype': message.messageType,
          ...(message.linkedMessageId ? { 'mex-linkedmsgid': message.linkedMessageId } : {}),
          'mex-from': message.from,
          'mex-to': message.to,
          'mex-workflowid': message.workflowId,
          ...(message.localId ? { 'mex-localid': message.localId } : {}),
          ...(message.subject ? { 'mex-subject': message.subject } : {}),
          ...(message.fileName ? { 'mex-filename': message.fileName } : {}),
          'mex-statussuccess': message.messageType === 'REPORT' ? 'ERROR' : 'SUCCESS',
          'mex-statuscode': message.messageType === 'REPORT' ? '14' : '00',
          'mex-statusdescription': message.statusDescription ?? 'Transferred to recipient mailbox',
        },
      };
    }
    const ack = /^\/inbox\/([^/]+)\/status\/acknowledged$/.exec(rest);
    if (method === 'PUT' && ack) {
      const message = mine(decodeSegment(ack[1]!));
      if (!message || message.expiredAt) return refuse(404, '404', 'Message does not exist');
      message.downloadedAt ??= now();
      message.acknowledgedAt ??= now();
      return { status: 200, body: { messageId: message.messageId } };
    }
    return refuse(404, '404', 'Not found');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    sharedKey,
    messages,
    requests,
    messagesTo: (mailbox) => messages.filter((x) => x.to === mailbox.toUpperCase()),
    inbox: (mailbox) => waiting(mailbox.toUpperCase()).map((x) => x.messageId),
    addMailbox: (account) => void accounts.set(account.id.toUpperCase(), account.password),
    expire(messageId) {
      const message = byId.get(messageId);
      if (!message || message.acknowledgedAt || message.expiredAt) throw new Error(`No message ${messageId} to expire`);
      message.expiredAt = now();
      const report: StoredMessage = {
        messageId: newMessageId(),
        from: message.from,
        to: message.from,
        workflowId: message.workflowId,
        localId: message.localId,
        subject: message.subject,
        fileName: null,
        contentType: 'application/octet-stream',
        body: Buffer.alloc(0),
        uploadedAt: now(),
        downloadedAt: null,
        acknowledgedAt: null,
        expiredAt: null,
        messageType: 'REPORT',
        linkedMessageId: message.messageId,
        statusDescription: 'Message not collected by the recipient within 5 days',
      };
      messages.push(report);
      byId.set(report.messageId, report);
    },
    failNext(n, o = {}) {
      for (let i = 0; i < n; i++)
        faults.push({ kind: 'status', status: o.status ?? 503, after: false, match: o.match ?? (() => true) });
    },
    dropNext(n, o = {}) {
      for (let i = 0; i < n; i++) {
        faults.push({ kind: 'drop', status: 0, after: o.afterProcessing ?? false, match: o.match ?? (() => true) });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
