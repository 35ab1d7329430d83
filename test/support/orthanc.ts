import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './dcmtk.js';

/** Debian's orthanc and orthanc-dicomweb packages. */
export const ORTHANC = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export function haveOrthanc(): boolean {
  const have = existsSync(ORTHANC) && existsSync(DICOMWEB_PLUGIN);
  // .ci/run installs Orthanc: a developer without it is told (tests skip), CI without it fails.
  if (!have && process.env.CI) throw new Error('Orthanc or its DICOMweb plugin not found: .ci/run should install them');
  return have;
}

export interface RunningOrthanc {
  httpPort: number;
  dicomPort: number;
  aeTitle: string;
  /** The DICOMweb base, e.g. http://127.0.0.1:PORT/dicom-web */
  dicomWebUrl: string;
  /** Orthanc's own REST API, e.g. http://127.0.0.1:PORT */
  restUrl: string;
  /** How long Orthanc took from spawn until its REST API answered. */
  startupMs: number;
  /** The SOP Instance UIDs Orthanc holds. */
  instances(): Promise<string[]>;
  /** Orthanc's identifier for an instance, if it holds it. */
  orthancIdOf(sopInstanceUid: string): Promise<string | undefined>;
  /** The Part 10 file Orthanc returns for an instance (GET /instances/{id}/file). */
  fileOf(sopInstanceUid: string): Promise<Buffer>;
  /** GET on the REST API: the JSON answer parsed, or the text of a plain-text answer. */
  rest(path: string): Promise<unknown>;
  /** What Orthanc has logged (its stderr), the last 64 KiB. */
  log(): string;
  /** Stops Orthanc (SIGKILL, or SIGTERM and wait if graceful) and deletes its storage. */
  close(options?: { graceful?: boolean }): Promise<void>;
}

const LOG_KEEP = 64 * 1024;

/**
 * Runs a throwaway Orthanc in the foreground: its own config, storage and index in a temporary folder, free ports on
 * the loopback, no authentication, only the DICOMweb plugin (not the worklist or folder-serving ones Debian also
 * ships), and OverwriteInstances false (a second copy of an instance is ignored, as a PACS would). Resolves once its
 * REST API answers; throws with its log if it does not start.
 */
export async function startOrthanc(options: { aeTitle?: string } = {}): Promise<RunningOrthanc> {
  let lastError: unknown;
  // A free port found by binding port 0 can be taken by someone else before Orthanc binds it: try again then.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options.aeTitle ?? 'TESTPACS');
    } catch (error) {
      lastError = error;
      if (!/bind|address already in use|port/i.test(String(error))) break;
    }
  }
  throw lastError;
}

async function startOnce(aeTitle: string): Promise<RunningOrthanc> {
  const dir = mkdtempSync(join(tmpdir(), 'orthanc-'));
  const httpPort = await freePort();
  let dicomPort = await freePort();
  while (dicomPort === httpPort) dicomPort = await freePort();
  const configPath = join(dir, 'orthanc.json');
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        Name: 'ScreeningHubTest',
        StorageDirectory: join(dir, 'storage'),
        IndexDirectory: join(dir, 'index'),
        HttpPort: httpPort,
        DicomPort: dicomPort,
        DicomAet: aeTitle,
        RemoteAccessAllowed: false,
        AuthenticationEnabled: false,
        Plugins: [DICOMWEB_PLUGIN],
        DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false },
        OverwriteInstances: false,
        SaveJobs: false,
      },
      null,
      2,
    ),
  );

  const started = Date.now();
  const child = spawn(ORTHANC, [configPath], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    log += text;
    if (log.length > 2 * LOG_KEEP) log = log.slice(-LOG_KEEP);
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
    child.once('error', (error) => {
      log += `\n${String(error)}`;
      exit = { code: null, signal: null };
      resolve();
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const restUrl = `http://127.0.0.1:${httpPort}`;
  let closed = false;
  const close = async (options: { graceful?: boolean } = {}) => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', killOnExit);
    if (!exit) {
      // A graceful stop (SIGTERM) takes Orthanc 1.10 about 3.5 s; its storage is thrown away, so by default it is killed.
      child.kill(options.graceful ? 'SIGTERM' : 'SIGKILL');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = started + 30_000;
  for (;;) {
    if (exit) {
      await close();
      throw new Error(
        `Orthanc exited during startup (code ${exit.code}, signal ${exit.signal}):\n${log.slice(-LOG_KEEP)}`,
      );
    }
    try {
      const response = await fetch(`${restUrl}/system`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) {
        await response.arrayBuffer();
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`Orthanc did not answer on ${restUrl}/system within 30 s:\n${log.slice(-LOG_KEEP)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const startupMs = Date.now() - started;

  const rest = async (path: string, init?: RequestInit): Promise<Response> => {
    const response = await fetch(`${restUrl}${path}`, init);
    if (!response.ok) throw new Error(`Orthanc ${init?.method ?? 'GET'} ${path}: HTTP ${response.status}`);
    return response;
  };
  const orthancIdOf = async (sopInstanceUid: string) => {
    const found = (await (await rest('/tools/lookup', { method: 'POST', body: sopInstanceUid })).json()) as {
      ID: string;
      Type: string;
    }[];
    return found.find((f) => f.Type === 'Instance')?.ID;
  };

  return {
    httpPort,
    dicomPort,
    aeTitle,
    dicomWebUrl: `${restUrl}/dicom-web`,
    restUrl,
    startupMs,
    async instances() {
      const all = (await (await rest('/instances?expand')).json()) as { MainDicomTags: { SOPInstanceUID: string } }[];
      return all.map((i) => i.MainDicomTags.SOPInstanceUID);
    },
    orthancIdOf,
    async fileOf(sopInstanceUid) {
      const id = await orthancIdOf(sopInstanceUid);
      if (!id) throw new Error(`Orthanc does not hold SOP instance ${sopInstanceUid}`);
      return Buffer.from(await (await rest(`/instances/${id}/file`)).arrayBuffer());
    },
    async rest(path) {
      const text = await (await rest(path)).text();
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text; // some answers are plain text, e.g. .../attachments/dicom/md5
      }
    },
    log: () => log.slice(-LOG_KEEP),
    close,
  };
}
