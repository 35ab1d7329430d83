import { parentPort } from 'node:worker_threads';
import { loadImageCodecs } from './image-package.js';
import { openPackageFile, sealImageFile } from './package-files.js';
import { PackageRefused } from './sealed-package.js';

/**
 * The worker thread that seals and opens packages (package-files.ts), so compressing a 27 MB image (about half a
 * second of CPU) or a tomosynthesis object never holds up the gateway's DICOM services or the hub's listener.
 */
export type PackageJob =
  | { kind: 'seal'; imageFile: string; packageFile: string; key: Uint8Array }
  | { kind: 'open'; packageFile: string; restoredFile: string; key: Uint8Array }
  | { kind: 'warm' };

export type PackageJobResult =
  { ok: true; value: unknown } | { ok: false; refused: boolean; message: string; code?: string };

parentPort?.on('message', (message: { id: number; job: PackageJob }) => {
  const { id, job } = message;
  const work =
    job.kind === 'seal'
      ? sealImageFile(job.imageFile, job.packageFile, job.key)
      : job.kind === 'open'
        ? openPackageFile(job.packageFile, job.restoredFile, job.key)
        : loadImageCodecs();
  work.then(
    (value) => parentPort!.postMessage({ id, result: { ok: true, value } satisfies PackageJobResult }),
    (error: Error) =>
      parentPort!.postMessage({
        id,
        result: {
          ok: false,
          refused: error instanceof PackageRefused,
          message: error.message,
          ...((error as NodeJS.ErrnoException).code ? { code: (error as NodeJS.ErrnoException).code } : {}),
        } satisfies PackageJobResult,
      }),
  );
});
