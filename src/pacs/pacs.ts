import { fileURLToPath } from 'node:url';
import { DicomWebPacs, type DicomWebOptions } from './dicomweb.js';
import { FileArchive } from './file-archive.js';

export { DicomWebPacs, type DicomWebOptions } from './dicomweb.js';
export { isUid, PacsRefused } from './errors.js';
export { FileArchive } from './file-archive.js';

/** The identity of an instance the hub delivers (from its received-image record, not re-read from the file). */
export interface StoredInstance {
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid?: string;
}

/** Where the hub delivers mammograms: a file archive or a PACS reached by DICOMweb. */
export interface Pacs {
  /** For logs and staff pages, e.g. "file archive /var/lib/…" or "DICOMweb http://…/dicom-web" (no credentials). */
  readonly description: string;
  /**
   * Stores the Part 10 file at `path`; resolves once the PACS holds it durably. Storing an instance it already holds
   * succeeds (idempotent). Throws PacsRefused (with a clear message including the PACS's status and reason) when the
   * PACS refuses it, and a plain Error for transient failures (connection refused, timeout, 5xx) so the caller retries.
   */
  store(path: string, instance: StoredInstance): Promise<void>;
  /** A link staff can open for the study (WADO-RS/viewer URL), if the PACS has one. */
  studyLink(studyInstanceUid: string): string | undefined;
}

/**
 * The PACS a URL names: empty or "file:" is the file archive at `archiveRoot`, "file:///some/folder" a file archive
 * there, and an http(s) URL (e.g. http://pacs:8042/dicom-web) a DICOMweb PACS with that base URL; a user and password
 * in it are sent as basic auth. `options` adds what a URL cannot carry (a bearer token, a CA, timeouts, a viewer link).
 */
export function pacsFromUrl(url: string, archiveRoot: string, options: Omit<DicomWebOptions, 'url'> = {}): Pacs {
  const text = url.trim();
  if (text === '' || text === 'file:' || text === 'file://') return new FileArchive(archiveRoot);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new Error(`Not a PACS URL: ${JSON.stringify(text.replace(/\/\/[^/@]*@/, '//…@'))}`);
  }
  if (parsed.protocol === 'file:') return new FileArchive(fileURLToPath(parsed));
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return new DicomWebPacs({ ...options, url: text });
  throw new Error(`Unsupported PACS URL scheme ${parsed.protocol}: expected file: or http(s)://…/dicom-web`);
}
