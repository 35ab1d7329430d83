import { phaseFailure, type PhaseFailure } from '../protocol/failure-phase.js';

/**
 * The PACS refused the instance: sending the same file again will not help (it is not DICOM, the PACS does not take
 * its SOP class, it holds a different object under the same SOP Instance UID...). Staff need to look at it.
 * Anything else a store throws is transient (the PACS was unreachable, timed out, answered 5xx) and worth a retry.
 */
export class PacsRefused extends Error {
  override readonly name = 'PacsRefused';
  /** The HTTP status of a DICOMweb PACS's answer, when there was one. */
  readonly httpStatus: number | undefined;
  /** The Failure Reason (0008,1197) the PACS gave for the instance (PS3.18 / PS3.4 status code), if any. */
  readonly failureReason: number | undefined;

  constructor(message: string, details: { httpStatus?: number; failureReason?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.httpStatus = details.httpStatus;
    this.failureReason = details.failureReason;
  }
}

const UID = /^[0-9]+(\.[0-9]+)*$/;

/** A DICOM UID (PS3.5 9.1): digits and dots, at most 64 characters. Safe as a file name. */
export function isUid(value: string): boolean {
  return value.length > 0 && value.length <= 64 && UID.test(value);
}

/**
 * The phase of a failed store (failure-phase.ts): `pacs_refused` when the PACS answered and would not store the
 * image (a refusal, or an error status such as 503), `disk_full` when the file archive's disk is full, and
 * `pacs_unreachable` when it did not answer (refused connection, timeout, a link cut before its answer).
 */
export function classifyPacsError(error: unknown, at: Date = new Date()): PhaseFailure {
  const message = error instanceof Error ? error.message : String(error);
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  const phase =
    error instanceof PacsRefused || /\(HTTP [1-5][0-9]{2}\b/.test(message)
      ? 'pacs_refused'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'disk_full'
        : 'pacs_unreachable';
  const text = code && !message.includes(code) ? `${message} (${code})` : message;
  return phaseFailure(phase, phase === 'disk_full' ? `The PACS’s disk is full: ${text}` : text, at);
}
