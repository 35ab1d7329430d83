import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { commitFile, fsyncPath } from '../durable.js';
import { packImage, restoreImage, type PackSummary } from './image-package.js';
import { openStream, sealStream, x25519PrivateKey, x25519PublicKey } from './sealed-package.js';

/**
 * Seals one received image into a package file for the hub: packed losslessly (image-package.ts), encrypted for
 * the hub's public key (sealed-package.ts), written to `packageFile` durably (temporary file, fsync, rename).
 */
export async function sealImageFile(
  imageFile: string,
  packageFile: string,
  hubPublicKey: Uint8Array,
): Promise<PackSummary & { sealedBytes: number }> {
  const temporary = `${packageFile}.part`;
  const seal = sealStream(x25519PublicKey(Buffer.from(hubPublicKey)));
  const out = createWriteStream(temporary, { mode: 0o600 });
  try {
    const writing = pipeline(seal, out);
    // Awaited below on success; when packing fails first, its rejection is that same failure.
    writing.catch(() => undefined);
    // packImage ends `seal`; the pipeline ends when the last sealed byte is in the file.
    const summary = await packImage(imageFile, seal);
    await writing;
    commitFile(temporary, packageFile);
    return { ...summary, sealedBytes: out.bytesWritten };
  } catch (error) {
    seal.destroy();
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Opens a package file with the hub's private key and restores the original image into `restoredFile`, fsynced.
 * Throws PackageRefused when any check fails (tag, structure, SHA-256 of the restored file).
 */
export async function openPackageFile(packageFile: string, restoredFile: string, hubPrivateKey: Uint8Array) {
  const opened = openStream(x25519PrivateKey(Buffer.from(hubPrivateKey)));
  let readError: Error | undefined;
  // A read error or a failed tag destroys `opened`, which fails restoreImage with that error.
  const reading = pipeline(createReadStream(packageFile), opened).catch((error: Error) => {
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
    await reading;
    rmSync(restoredFile, { force: true });
    throw error;
  }
}
