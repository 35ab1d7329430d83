import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { isUid, PacsRefused } from './errors.js';
import type { Pacs, StoredInstance } from './pacs.js';

const READ_CHUNK = 1024 * 1024;
/** Errors from link(2) on file systems without hard links: the archive falls back to rename(2). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);
/** Temporary files are `.<SOPInstanceUID>.<host>.<pid>.<random>.tmp`, next to where the file will go. */
const TEMP_FILE = /^\.([0-9.]+)\.([A-Za-z0-9-]+)\.([0-9]+)\.[0-9a-f]+\.tmp$/;
const HOST = hostname().replace(/[^A-Za-z0-9-]/g, '-') || 'host';

/**
 * A PACS that is a folder: root/<StudyInstanceUID>/<SOPInstanceUID>.dcm. A file appears under its final name only
 * once it is whole and fsynced (copied to a temporary file, fsynced, then linked into place and the folder fsynced),
 * so a crash never leaves a partial .dcm. Storing an instance the archive holds byte for byte is a no-op; a different
 * file under the same SOP Instance UID is refused rather than overwritten. Files are streamed (bounded memory).
 */
export class FileArchive implements Pacs {
  readonly description: string;

  constructor(readonly root: string) {
    this.description = `file archive ${root}`;
  }

  /** Where the archive keeps (or would keep) an instance. Throws PacsRefused for a UID unfit as a file name. */
  pathOf(instance: StoredInstance): string {
    for (const [name, uid] of [
      ['Study Instance UID', instance.studyInstanceUid],
      ['SOP Instance UID', instance.sopInstanceUid],
    ] as const) {
      if (!isUid(uid))
        throw new PacsRefused(
          `${this.description} refused the instance: ${name} ${JSON.stringify(uid)} is not a valid UID`,
        );
    }
    return join(this.root, instance.studyInstanceUid, `${instance.sopInstanceUid}.dcm`);
  }

  /** Whether the archive holds the instance (a whole file under its final name; temporary files do not count). */
  async has(instance: StoredInstance): Promise<boolean> {
    return (await sizeOf(this.pathOf(instance))) !== undefined;
  }

  async store(path: string, instance: StoredInstance): Promise<void> {
    const target = this.pathOf(instance);
    const folder = dirname(target);
    const source = await stat(path);
    if (!source.isFile()) throw new Error(`${path} is not a file`);
    await this.removeAbandoned(folder, instance.sopInstanceUid);
    if ((await sizeOf(target)) !== undefined) return this.checkSame(target, source.size, await sha256(path), instance);

    await this.makeFolder(folder);
    const temp = join(
      folder,
      `.${instance.sopInstanceUid}.${HOST}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
    );
    try {
      const copied = await copyDurably(path, temp);
      try {
        // link(2) never replaces an existing file: of two stores racing with different files, the first one wins.
        await link(temp, target);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (code === 'EEXIST') return await this.checkSame(target, copied.bytes, copied.sha256, instance);
        if (!NO_HARD_LINKS.has(code)) throw error;
        if ((await sizeOf(target)) !== undefined)
          return await this.checkSame(target, copied.bytes, copied.sha256, instance);
        await rename(temp, target);
      }
      await fsyncFolder(folder);
    } finally {
      await rm(temp, { force: true });
    }
  }

  studyLink(): string | undefined {
    return undefined;
  }

  /** The archive already has a file for the instance: fine if it is the same bytes, refused if not. */
  private async checkSame(target: string, bytes: number, digest: string, instance: StoredInstance): Promise<void> {
    const held = await sizeOf(target);
    if (held === bytes && (await sha256(target)) === digest) return;
    throw new PacsRefused(
      `${this.description} already holds a different file for SOP Instance UID ${instance.sopInstanceUid} ` +
        `(study ${instance.studyInstanceUid}): ${held ?? 0} bytes held, ${bytes} bytes offered; it is not overwritten`,
    );
  }

  private async makeFolder(folder: string): Promise<void> {
    const createdRoot = await mkdir(this.root, { recursive: true, mode: 0o700 });
    if (createdRoot !== undefined) await fsyncFolder(dirname(createdRoot));
    try {
      await mkdir(folder, { mode: 0o700 });
      await fsyncFolder(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }

  /**
   * Removes this instance's temporary files left by a process of this host that has stopped (a crash or power cut
   * mid-copy). Files of live processes are left alone: they may be a concurrent store of the same instance.
   */
  private async removeAbandoned(folder: string, sopInstanceUid: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      return;
    }
    for (const name of names) {
      const match = TEMP_FILE.exec(name);
      if (!match || match[1] !== sopInstanceUid || match[2] !== HOST) continue;
      const pid = Number(match[3]);
      if (pid === process.pid || isRunning(pid)) continue;
      await rm(join(folder, name), { force: true });
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Copies a file to a new file (which must not exist), fsyncs it, and returns its length and SHA-256. */
async function copyDurably(from: string, to: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const file = await open(to, 'wx', 0o600);
  let bytes = 0;
  try {
    for await (const data of createReadStream(from, { highWaterMark: READ_CHUNK })) {
      const chunk = data as Buffer;
      hash.update(chunk);
      let written = 0;
      while (written < chunk.length) written += (await file.write(chunk, written)).bytesWritten;
      bytes += chunk.length;
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

async function fsyncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the data itself has been fsynced.
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
}
