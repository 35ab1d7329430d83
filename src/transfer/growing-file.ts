import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

/**
 * How far a file being written has got, in memory shared between threads: one side writes the file and says how
 * many bytes are in it (and, at the end, its length, or that it was given up); another reads it as it grows. The
 * gateway uploads a package while its worker thread is still sealing it; the hub opens a package while it is still
 * arriving.
 */
export class FileGrowth {
  private readonly state: BigInt64Array;

  /** A new one, or (in another thread) the one whose `buffer` was passed over. */
  constructor(readonly buffer = new SharedArrayBuffer(3 * 8)) {
    this.state = new BigInt64Array(buffer);
    if (buffer.byteLength !== 24) throw new Error('FileGrowth needs a 24-byte SharedArrayBuffer');
  }

  /** Bytes from the start that can be read (never goes back). */
  get written(): number {
    return Number(Atomics.load(this.state, 0));
  }

  /** The file's whole length once the writer has finished it; undefined before. */
  get length(): number | undefined {
    // Kept as length + 1, so that 0 (a new buffer's value) means not finished.
    const stored = Number(Atomics.load(this.state, 1));
    return stored === 0 ? undefined : stored - 1;
  }

  get abandoned(): boolean {
    return Atomics.load(this.state, 2) !== 0n;
  }

  /** Only the writer calls this (one thread, one writer a file), so a plain store keeps `written` from going back. */
  grew(bytes: number): void {
    if (BigInt(bytes) > Atomics.load(this.state, 0)) Atomics.store(this.state, 0, BigInt(bytes));
  }

  finish(length: number): void {
    this.grew(length);
    Atomics.store(this.state, 1, BigInt(length + 1));
  }

  abandon(): void {
    Atomics.store(this.state, 2, 1n);
  }
}

export interface GrowingFileOptions {
  /** Where to start reading (default 0). */
  start?: number;
  /** How often to look again when the reader has caught up with the writer (default 20 ms). */
  pollMs?: number;
  /** Give up (an error) when the file has not grown for this long (default: wait for ever). */
  idleMs?: number;
  /** End as soon as the writer has finished, where the reader has got to (the rest is read otherwise). */
  endWhenFinished?: boolean;
  highWaterMark?: number;
}

/**
 * Reads a file as another thread writes it, up to what `growth` says is written, to its length once finished.
 * `paths` are tried in order when the file is opened (the writer may have renamed it from the first to the second
 * meanwhile: the same file). Errors when the writer abandons the file, or when it stops growing for `idleMs`.
 * With `endWhenFinished`, ends when the writer finishes, wherever the reader is.
 */
export function readGrowingFile(
  paths: readonly string[],
  growth: FileGrowth,
  options: GrowingFileOptions = {},
): Readable {
  const pollMs = options.pollMs ?? 20;
  let position = options.start ?? 0;
  let handle: FileHandle | undefined;
  let lastGrowth = Date.now();
  let timer: NodeJS.Timeout | undefined;

  const openFirst = async (): Promise<FileHandle> => {
    let lastError: unknown;
    for (const path of paths) {
      try {
        return await open(path, 'r');
      } catch (error) {
        lastError = error;
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw lastError;
  };

  return new Readable({
    highWaterMark: options.highWaterMark ?? 256 * 1024,
    read(size) {
      const next = async (): Promise<void> => {
        timer = undefined;
        if (growth.abandoned) throw new Error('the file was given up while it was read');
        const length = growth.length;
        if (length !== undefined && (position >= length || options.endWhenFinished)) {
          this.push(null);
          return;
        }
        const available = growth.written - position;
        if (available > 0) {
          handle ??= await openFirst();
          const buffer = Buffer.allocUnsafe(Math.min(size, available));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
          // Fewer bytes than said (the writer went back and is writing them again): look again shortly.
          if (bytesRead > 0) {
            position += bytesRead;
            lastGrowth = Date.now();
            this.push(buffer.subarray(0, bytesRead));
            return;
          }
        }
        if (options.idleMs !== undefined && Date.now() - lastGrowth > options.idleMs)
          throw new Error(`the file did not grow for ${Math.round(options.idleMs / 1000)} s`);
        timer = setTimeout(() => void next().catch((error: Error) => this.destroy(error)), pollMs);
      };
      void next().catch((error: Error) => this.destroy(error));
    },
    destroy(error, callback) {
      if (timer) clearTimeout(timer);
      const closing = handle?.close() ?? Promise.resolve();
      closing.then(
        () => callback(error),
        () => callback(error),
      );
    },
  });
}
