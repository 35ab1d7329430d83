import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';

const run = promisify(execFile);

/** DCMTK is installed by .ci/run (Debian's dcmtk); a developer without it is told, CI without it fails. */
export const haveDcmtk = existsSync('/usr/bin/findscu');
if (!haveDcmtk && process.env.CI) throw new Error('DCMTK (findscu) not found: .ci/run should have installed dcmtk');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface FindResult {
  exitCode: number;
  responses: Record<string, unknown>[];
  log: string;
}

/**
 * Asks for a worklist as a modality does: `findscu -W` with the given keys (`-k` syntax, e.g.
 * 'ScheduledProcedureStepSequence[0].Modality=MG'), reading the responses it extracts (-X) with dcmjs.
 */
export async function findscuWorklist(
  port: number,
  keys: string[],
  options: { callingAe?: string; calledAe?: string } = {},
): Promise<FindResult> {
  const dir = mkdtempSync(join(tmpdir(), 'findscu-'));
  const args = ['-W', '-aet', options.callingAe ?? 'MAMMO1', '-aec', options.calledAe ?? 'SHGATEWAY', '-X', '-od', dir];
  for (const key of keys) args.push('-k', key);
  args.push('127.0.0.1', String(port));
  let exitCode = 0;
  let log = '';
  try {
    const { stdout, stderr } = await run('findscu', args, { timeout: 20_000 });
    log = stdout + stderr;
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    exitCode = typeof e.code === 'number' ? e.code : 1;
    log = (e.stdout ?? '') + (e.stderr ?? '');
  }
  const responses = readdirSync(dir)
    .filter((f) => f.startsWith('rsp'))
    .sort()
    .map((f) => {
      const buffer = readFileSync(join(dir, f));
      const message = dcmjs.data.DicomMessage.readFile(
        buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength),
      );
      return dcmjs.data.DicomMetaDictionary.naturalizeDataset(message.dict);
    });
  rmSync(dir, { recursive: true, force: true });
  return { exitCode, responses, log };
}

export async function echoscu(port: number, callingAe = 'MAMMO1', calledAe = 'SHGATEWAY'): Promise<number> {
  try {
    await run('echoscu', ['-aet', callingAe, '-aec', calledAe, '127.0.0.1', String(port)], { timeout: 20_000 });
    return 0;
  } catch (error) {
    return typeof (error as { code?: number }).code === 'number' ? (error as { code: number }).code : 1;
  }
}
