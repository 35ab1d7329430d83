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
