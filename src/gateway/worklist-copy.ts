import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { commitFile } from '../durable.js';
import { join } from 'node:path';
import type { WorklistEntry } from '../dicom/worklist-item.js';

export interface WorklistSnapshot {
  unitId: string;
  /** When the hub produced it (ISO instant): the age of the copy is measured from here. */
  fetchedAt: string;
  entries: WorklistEntry[];
}

/** Writes a file so that a power cut leaves the old or the new one, never half of either. */
export function writeDurably(path: string, data: Buffer | string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    // A short write (a nearly full disk) must not leave a copy cut short.
    for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
  } finally {
    closeSync(fd);
  }
  commitFile(temporary, path);
}

/**
 * The gateway's own copy of its unit's worklist, encrypted at rest with AES-256-GCM under a key kept in the
 * gateway's data folder (created on first start, mode 0600). It answers the modality when the hub cannot.
 */
export class WorklistCopy {
  private snapshot: WorklistSnapshot | undefined;
  private readonly key: Buffer;
  private readonly file: string;

  constructor(
    dataDir: string,
    log: (level: 'error', message: string) => void = (_level, message) => console.error(message),
  ) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const keyFile = join(dataDir, 'worklist.key');
    if (!existsSync(keyFile)) writeDurably(keyFile, randomBytes(32));
    this.key = readFileSync(keyFile);
    if (this.key.length !== 32)
      throw new Error(`${keyFile} is not a 256-bit key: move it away and restart to make a new one`);
    this.file = join(dataDir, 'worklist.enc');
    if (existsSync(this.file)) {
      try {
        this.snapshot = this.decrypt(readFileSync(this.file));
      } catch (error) {
        // A copy that fails authentication (tampered, corrupt, or another key's) is set aside, not used and not
        // deleted; the gateway starts with no copy and gets a new one from the hub.
        const aside = `${this.file}.unreadable-${Date.now()}`;
        renameSync(this.file, aside);
        log(
          'error',
          `Worklist copy could not be read (${(error as Error).message}): moved to ${aside}; waiting for the hub`,
        );
      }
    }
  }

  current(): WorklistSnapshot | undefined {
    return this.snapshot;
  }

  /** Keeps a new snapshot, dropping clinic days before today (a past day's list is not kept on the van). */
  replace(snapshot: WorklistSnapshot, today: string): void {
    const kept = { ...snapshot, entries: snapshot.entries.filter((e) => e.clinicDate >= today) };
    writeDurably(this.file, this.encrypt(kept));
    this.snapshot = kept;
  }

  /** Purges past clinic days from the copy (run after each clinic day even when the hub is unreachable). */
  purgeBefore(today: string): void {
    if (this.snapshot && this.snapshot.entries.some((e) => e.clinicDate < today)) this.replace(this.snapshot, today);
  }

  private encrypt(snapshot: WorklistSnapshot): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(snapshot), 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from('SHWL1'), iv, cipher.getAuthTag(), body]);
  }

  private decrypt(file: Buffer): WorklistSnapshot {
    if (file.subarray(0, 5).toString() !== 'SHWL1')
      throw new Error(`${this.file} is not a Screening Hub worklist copy`);
    const iv = file.subarray(5, 17);
    const tag = file.subarray(17, 33);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAuthTag(tag);
    const json = Buffer.concat([decipher.update(file.subarray(33)), decipher.final()]).toString('utf8');
    const snapshot = JSON.parse(json) as WorklistSnapshot;
    // A copy written by an earlier version lacks fields the gateway now relies on: set it aside like a bad one.
    if (!snapshot.entries.every((e) => typeof e.participantId === 'string' && typeof e.status === 'string'))
      throw new Error('the copy is from an earlier version of the gateway');
    return snapshot;
  }
}
