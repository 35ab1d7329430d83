import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { commitFile, fsyncPath } from '../durable.js';
import { readGrowingFile, type FileGrowth } from './growing-file.js';
import { packImage, restoreImage, type PackSummary } from './image-package.js';
import { openStream, sealStream, x25519PrivateKey, x25519PublicKey } from './sealed-package.js';

/** Where a package is written while it is sealed (renamed to its own name once whole and fsynced). */
export function sealingPath(packageFile: string): string {
  return `${packageFile}.part`;
}

/**
 * Seals one received image into a package file for the hub: packed losslessly (image-package.ts), encrypted for
 * the hub's public key (sealed-package.ts), written to `packageFile` durably (temporary file, fsync, rename).
 * With `growth`, says as it goes how many bytes of the temporary file are written, then the package's length once
 * it is in place (or that it was given up), so the package can be uploaded while it is still being sealed.
 */
export async function sealImageFile(
  imageFile: string,
  packageFile: string,
  hubPublicKey: Uint8Array,
  growth?: FileGrowth,
): Promise<PackSummary & { sealedBytes: number }> {
  const temporary = sealingPath(packageFile);
  const seal = sealStream(x25519PublicKey(Buffer.from(hubPublicKey)));
  const file = await open(temporary, 'w', 0o600);
  let written = 0;
  const out = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, done) {
      const writeAll = async () => {
        for (let at = 0; at < chunk.length;)
          at += (await file.write(chunk, at, chunk.length - at, written + at)).bytesWritten;
        written += chunk.length;
        growth?.grew(written);
      };
      writeAll().then(() => done(), done);
    },
  });
  try {
    const writing = pipeline(seal, out);
    // Awaited below on success; when packing fails first, its rejection is that same failure.
    writing.catch(() => undefined);
    // packImage ends `seal`; the pipeline ends when the last sealed byte is in the file.
    const summary = await packImage(imageFile, seal);
    await writing;
    await file.close();
    commitFile(temporary, packageFile);
    growth?.finish(written);
    return { ...summary, sealedBytes: written };
  } catch (error) {
    growth?.abandon();
    seal.destroy();
    await file.close().catch(() => undefined);
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Opens a package file with the hub's private key and restores the original image into `restoredFile`, fsynced.
 * Throws PackageRefused when any check fails (tag, structure, SHA-256 of the restored file). With `growth`, the
 * package is opened as it arrives: read as far as `growth` says it is written, until its length is known and
 * reached (an error if it is given up, or does not grow for `idleMs`).
 */
export async function openPackageFile(
  packageFile: string,
  restoredFile: string,
  hubPrivateKey: Uint8Array,
  arriving?: { growth: FileGrowth; idleMs: number },
) {
  const opened = openStream(x25519PrivateKey(Buffer.from(hubPrivateKey)));
  const source = arriving
    ? readGrowingFile([packageFile], arriving.growth, { idleMs: arriving.idleMs })
    : createReadStream(packageFile);
  let readError: Error | undefined;
  // A read error or a failed tag destroys `opened`, which fails restoreImage with that error.
  const reading = pipeline(source, opened).catch((error: Error) => {
    readError = error;
  });
  try {
    const out = createWriteStream(restoredFile, { mode: 0o600 });
    const summary = await restoreImage(opened, out);
    await reading;
    if (readError) throw readError;
    fsyncPath(restoredFile);
    return summary;
  } catch (error) {
    // The rest is not wanted (and a package still arriving would otherwise be waited for).
    source.destroy();
    await reading;
    rmSync(restoredFile, { force: true });
    throw error;
  }
}
