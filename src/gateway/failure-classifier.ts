/**
 * Names the phase of a failed request from the gateway to the hub (src/protocol/failure-phase.ts), from the error
 * Node gave and how far the request had come. Pure: no I/O, so every rule is tested on its own with errors made by
 * real failing connections (test/unit/gateway/failure-classifier.test.ts).
 */
import { phaseFailure, type FailurePhase, type PhaseFailure } from '../protocol/failure-phase.js';

/**
 * How far a request to the hub had come when it failed: nothing yet (the name being looked up), the name looked
 * up, TCP connected, TLS established, or the hub's answer begun.
 */
export type LinkStage = 'start' | 'resolved' | 'connected' | 'secured' | 'answered';

/** An error that knows its phase: the connection attaches one to every transport failure. */
export class PhaseError extends Error {
  override readonly name = 'PhaseError';
  readonly code: string | undefined;

  constructor(
    readonly failure: PhaseFailure,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = (cause as { code?: unknown } | undefined)?.code as string | undefined;
  }
}

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA', 'EAI_ADDRFAMILY']);
const CONNECT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
const DISK = new Set(['ENOSPC', 'EDQUOT']);
/** The hub's certificate failed the gateway's checks (OpenSSL verify codes as Node reports them). */
const HUB_CERTIFICATE_UNTRUSTED = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_SIGNATURE_ALGORITHM_UNSUPPORTED',
]);
/** TLS alerts a server sends when it will not take the client's certificate (RFC 8446 6.2). */
const CLIENT_CERTIFICATE_ALERT =
  /alert (bad certificate|certificate unknown|certificate revoked|certificate expired|unsupported certificate|unknown ca|certificate required|access denied)/i;
const SILENCE = /carried nothing for|nothing from the hub for|no answer from the hub in/;

const codeOf = (error: unknown): string | undefined => {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
};

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error)).trim();

/** The message with the code after it, unless it already says it. */
const detail = (error: unknown): string => {
  const code = codeOf(error);
  const message = messageOf(error).replace(/^[0-9A-F]{8,}:error:[0-9A-F]+:SSL routines:[^:]*:/, '');
  return code && !message.includes(code) ? `${message} (${code})` : message;
};

/**
 * The phase of a failed request to the hub. `stage` is how far it had come (undefined: not known, as for an error
 * from elsewhere). An error that already carries its phase (PhaseError) keeps it.
 */
export function classifyLinkError(error: unknown, stage?: LinkStage, at: Date = new Date()): PhaseFailure {
  if (error instanceof PhaseError) return error.failure;
  const [phase, message] = phaseOf(error, stage);
  return phaseFailure(phase, message, at);
}

function phaseOf(error: unknown, stage: LinkStage | undefined): [FailurePhase, string] {
  const code = codeOf(error);
  const message = messageOf(error);
  const status = hubStatus(error);
  if (status !== undefined) return hubRefusal(status, message);
  if (code && DNS.has(code)) {
    const name = (error as { hostname?: unknown }).hostname;
    return [
      'dns',
      `The hub’s name${typeof name === 'string' ? ` ${name}` : ''} could not be looked up: ${detail(error)}`,
    ];
  }
  if (code && CONNECT.has(code)) return ['tcp_connect', `Nothing answered at the hub’s address: ${detail(error)}`];
  if (code && HUB_CERTIFICATE_UNTRUSTED.has(code))
    return ['certificate_rejected', `The gateway does not trust the hub’s certificate: ${detail(error)}`];
  if (CLIENT_CERTIFICATE_ALERT.test(message) || /_ALERT_(BAD_CERTIFICATE|CERTIFICATE_|UNKNOWN_CA)/.test(code ?? ''))
    return ['certificate_rejected', `The hub refused this gateway’s certificate: ${detail(error)}`];
  if (code && DISK.has(code)) return ['disk_full', `The gateway’s disk is full: ${detail(error)}`];
  if (code === 'ETIMEDOUT' && (error as { syscall?: unknown }).syscall === 'connect')
    return ['tcp_connect', `Nothing answered at the hub’s address: ${detail(error)}`];
  if (code === 'ETIMEDOUT' || SILENCE.test(message) || /timed? ?out/i.test(message)) return timeout(error, stage);
  if (code && DROPPED.has(code)) {
    if (/before secure TLS connection/.test(message) || stage === 'connected')
      return [
        'tls_handshake',
        `The hub’s address answered, then closed before the secure handshake finished (a proxy in between, or the hub not taking this gateway’s certificate): ${detail(error)}`,
      ];
    if (stage === 'start' || stage === 'resolved')
      return ['tcp_connect', `Could not connect to the hub: ${detail(error)}`];
    if (stage === 'secured')
      return [
        'link_dropped',
        `The hub closed the connection before answering (if this repeats at once, the hub may not be taking this gateway’s certificate): ${detail(error)}`,
      ];
    return ['link_dropped', `The connection to the hub was cut: ${detail(error)}`];
  }
  if (/^ERR_(SSL|TLS)_/.test(code ?? '') || code === 'EPROTO' || /SSL routines|TLS|handshake/i.test(message))
    return ['tls_handshake', `The secure handshake with the hub failed: ${detail(error)}`];
  if (/the hub ended the push stream|the push stream closed|socket hang up/.test(message))
    return ['link_dropped', `The connection to the hub was cut: ${detail(error)}`];
  return ['unknown', detail(error)];
}

/** A request that waited too long: which phase depends on how far it had come. */
function timeout(error: unknown, stage: LinkStage | undefined): [FailurePhase, string] {
  const text = detail(error);
  if (stage === 'start' || stage === 'resolved') return ['tcp_connect', `No connection to the hub was made: ${text}`];
  if (stage === 'connected')
    return ['tls_handshake', `The hub’s address answered but the secure handshake never finished: ${text}`];
  return ['silent_link', `The link looked open but carried nothing: ${text}`];
}

/** The HTTP status of a hub's error answer (HubError), if this is one. */
function hubStatus(error: unknown): number | undefined {
  if (!(error instanceof Error) || error.name !== 'HubError') return undefined;
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

function hubRefusal(status: number, message: string): [FailurePhase, string] {
  // The hub takes every certificate at the handshake and answers 401/403 for one it does not know or has revoked.
  if (status === 401 || status === 403)
    return ['certificate_rejected', `The hub refused this gateway’s certificate: ${message}`];
  if (status === 507) return ['disk_full', `The hub’s disk is full: ${message}`];
  return ['http_status', message];
}
