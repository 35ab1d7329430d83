import { parentPort } from 'node:worker_threads';
import { FileGrowth } from './growing-file.js';
import { loadImageCodecs } from './image-package.js';
import { openPackageFile, sealImageFile } from './package-files.js';
import { PackageRefused } from './sealed-package.js';

/**
 * The worker thread that seals and opens packages (package-files.ts), so compressing a 27 MB image (about half a
 * second of CPU) or a tomosynthesis object never holds up the gateway's DICOM services or the hub's listener.
 * Jobs run side by side. A job's `growth` (a FileGrowth's shared buffer) lets the other thread follow a package
 * being sealed, or lets this one open a package still arriving.
 */
export type PackageJob =
  | { kind: 'seal'; imageFile: string; packageFile: string; key: Uint8Array; growth?: SharedArrayBuffer }
  | {
      kind: 'open';
      packageFile: string;
      restoredFile: string;
      key: Uint8Array;
      arriving?: { growth: SharedArrayBuffer; idleMs: number };
    }
  | { kind: 'warm' };

export type PackageJobResult =
  { ok: true; value: unknown } | { ok: false; refused: boolean; message: string; code?: string };

function run(job: PackageJob): Promise<unknown> {
  switch (job.kind) {
    case 'seal':
      return sealImageFile(job.imageFile, job.packageFile, job.key, job.growth && new FileGrowth(job.growth));
    case 'open':
      return openPackageFile(
        job.packageFile,
        job.restoredFile,
        job.key,
        job.arriving && { growth: new FileGrowth(job.arriving.growth), idleMs: job.arriving.idleMs },
      );
    case 'warm':
      return loadImageCodecs();
  }
}

parentPort?.on('message', (message: { id: number; job: PackageJob }) => {
  const { id, job } = message;
  run(job).then(
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
