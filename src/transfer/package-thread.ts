import { Worker } from 'node:worker_threads';
import type { FileGrowth } from './growing-file.js';
import type { PackSummary, RestoreSummary } from './image-package.js';
import type { PackageJob, PackageJobResult } from './package-worker.js';
import { PackageRefused } from './sealed-package.js';

/**
 * Runs package jobs in one worker thread, side by side (each waits on its files in turn). A worker that dies (out of memory,
 * say) fails the job in hand and is started again for the next.
 */
export class PackageThread {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private start(): Worker {
    // Under the test runner and tsx the sources are TypeScript: the worker registers tsx's loader first.
    const worker = import.meta.url.endsWith('.ts')
      ? new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./package-worker.ts', import.meta.url).href)}); })`,
          { eval: true },
        )
      : new Worker(new URL('./package-worker.js', import.meta.url));
    worker.on('message', ({ id, result }: { id: number; result: PackageJobResult }) => {
      const waiting = this.pending.get(id);
      this.pending.delete(id);
      // An idle worker does not keep the process alive.
      if (this.pending.size === 0) worker.unref();
      if (!waiting) return;
      if (result.ok) waiting.resolve(result.value);
      else if (result.refused) waiting.reject(new PackageRefused(result.message));
      else waiting.reject(Object.assign(new Error(result.message), result.code ? { code: result.code } : {}));
    });
    const fail = (error: Error) => {
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
      this.worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the packaging thread stopped (exit code ${code})`)));
    return worker;
  }

  private run<T>(job: PackageJob): Promise<T> {
    this.worker ??= this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker!.ref();
      this.worker!.postMessage({ id, job });
    });
  }

  /** Seals an image into a package file; `growth` says how much of it is written as it goes (for uploading it). */
  seal(imageFile: string, packageFile: string, hubPublicKey: Uint8Array, growth?: FileGrowth) {
    return this.run<PackSummary & { sealedBytes: number }>({
      kind: 'seal',
      imageFile,
      packageFile,
      key: hubPublicKey,
      ...(growth ? { growth: growth.buffer } : {}),
    });
  }

  /** Opens a package file; with `arriving`, one still being received, followed as `growth` says it grows. */
  open(
    packageFile: string,
    restoredFile: string,
    hubPrivateKey: Uint8Array,
    arriving?: { growth: FileGrowth; idleMs: number },
  ) {
    return this.run<RestoreSummary>({
      kind: 'open',
      packageFile,
      restoredFile,
      key: hubPrivateKey,
      ...(arriving ? { arriving: { growth: arriving.growth.buffer, idleMs: arriving.idleMs } } : {}),
    });
  }

  /** Starts the thread and loads the codecs now, so the first image does not wait for them. */
  warm(): Promise<void> {
    return this.run<void>({ kind: 'warm' });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
