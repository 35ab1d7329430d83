/**
 * Image transfer under faults (docs/transfer-protocol.md): kill -9 of the gateway and of the hub mid-upload, a full
 * disk at either end, a gateway clock hours out, a link that goes silent, and a new IP address mid-upload. Every
 * test checks the rule "nothing is ever lost" concretely: the image ends up in the hub's archive exactly once, with
 * the SHA-256 of the file the modality sent, through one upload that was never refused (it resumed rather than
 * started again), and nothing is shown as damaged on the way.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/gateway.js';
import { enrol, type GatewayIdentity } from '../../src/gateway/identity.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { addGateway } from '../../src/store/gateways.js';
import { migrate } from '../../src/store/migrate.js';
import { fingerprint } from '../../src/tls/certificates.js';
import { freshDatabase } from '../support/database.js';
import { echoscu, freePort, haveDcmtk } from '../support/dcmtk.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { gatewayListener, until } from '../support/gateway-hub.js';
import { startLink, type Link } from '../support/link-simulator.js';
import { writeRealisticMammogram } from '../support/mammogram.js';

const run = promisify(execFile);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src', 'cli', 'screening-hub.ts');
const HUB_PROCESS = join(ROOT, 'test', 'support', 'transfer-hub-process.ts');
/** A full 2D view: 17 MB as received, about 6.5 MB sealed. */
const FULL_VIEW = { width: 2560, height: 3328 };
/** 10 MB as received, about 4 MB sealed. */
const LARGE = { width: 2048, height: 2560 };
const haveFaketime = spawnSync('which', ['faketime']).status === 0;
// .ci/run installs faketime: a developer without it is told (the test skips), CI without it fails.
if (!haveFaketime && process.env.CI) throw new Error('faketime not found: .ci/run should have installed it');

type Listener = Awaited<ReturnType<typeof gatewayListener>>;
type Gateway = ReturnType<typeof startGateway>;
interface TestImage {
  sopInstanceUid: string;
  file: string;
  sha256: string;
  bytes: number;
}
interface JournalLine {
  sop: string;
  event: string;
}

describe.skipIf(!haveDcmtk)('image transfer under faults: nothing is ever lost', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let work: string;
  /** The in-process hub most tests send to, its transfers (uploads, restored, archive) in hubDir. */
  let listener: Listener;
  let hubDir: string;
  const logs: string[] = [];
  const tail = (n = 40) => logs.slice(-n).join('\n');
  let uid = 0;
  // Everything a test starts, so afterAll can stop it if the test did not get that far.
  const children = new Set<ChildProcess>();
  const gateways = new Set<Gateway>();
  const links = new Set<Link>();
  const listeners = new Set<Listener>();
  const mounts: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  const image = (size?: { width: number; height: number }): TestImage => {
    const n = ++uid;
    const sopInstanceUid = `2.25.515${process.pid}${n}`;
    const file = join(work, `${sopInstanceUid}.dcm`);
    const bytes = writeRealisticMammogram(file, {
      sopInstanceUid,
      accessionNumber: `FAULT${n}`,
      patientId: '9990000018',
      seed: n,
      ...size,
    });
    return { sopInstanceUid, file, sha256: sha256(bytes), bytes: bytes.length };
  };

  const storescu = async (port: number, file: string) => {
    await run('storescu', ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(port), file], {
      timeout: 60_000,
    });
  };

  const link = async (port: number, bitsPerSecond?: number) => {
    const made = await startLink({ target: { host: '127.0.0.1', port }, ...(bitsPerSecond ? { bitsPerSecond } : {}) });
    links.add(made);
    return made;
  };
  const closeLink = async (l: Link) => {
    links.delete(l);
    await l.close();
  };

  /** Registers a gateway for mobile-1 on the hub and enrols it (one-time code) into `dataDir`. */
  const enrolInto = async (
    db: Database,
    authorityPem: string,
    hubUrl: string,
    dataDir: string,
    actor = office.actor,
  ) => {
    const { code, gatewayId } = await addGateway(db.db, 'mobile-1', actor);
    const identity = await enrol({ hubUrl, code, authorityFingerprint: fingerprint(authorityPem), dataDir });
    return { identity, gatewayId };
  };

  /** A gateway in this process (its outbox can be watched), already enrolled into `dataDir`. */
  const runGateway = async (hubUrl: string, identity: GatewayIdentity, dataDir: string) => {
    const dicomPort = await freePort();
    const tag = `gateway ${identity.gatewayId.slice(0, 8)}`;
    const gateway = startGateway({
      hubUrl,
      identity,
      dataDir,
      dicomPort,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MOBILE1'],
      minFreeBytes: 1,
      maxRetryMs: 1000,
      resyncMs: 1000,
      today: () => TODAY,
      log: (level, message) => void logs.push(`${new Date().toISOString().slice(11, 23)} ${tag} ${level}: ${message}`),
    });
    gateways.add(gateway);
    return { gateway, dicomPort };
  };
  /** A gateway in this process, enrolled with the in-process hub (or the one whose authority is given) first. */
  const inProcessGateway = async (hubUrl: string, options: { dataDir?: string; authorityPem?: string } = {}) => {
    const dataDir = options.dataDir ?? mkdtempSync(join(work, 'gateway-'));
    const authorityPem = options.authorityPem ?? listener.authorityPem;
    const { identity, gatewayId } = await enrolInto(database, authorityPem, hubUrl, dataDir);
    return { ...(await runGateway(hubUrl, identity, dataDir)), dataDir, gatewayId };
  };
  const closeGateway = async (gateway: Gateway) => {
    gateways.delete(gateway);
    await gateway.close();
  };

  /** Spawns a detached child (its own process group, so kill -9 reaches faketime's child too), logging its stderr. */
  const spawnLogged = (name: string, command: string, args: string[], stdout: 'ignore' | 'pipe' = 'ignore') => {
    const child = spawn(command, args, { cwd: ROOT, detached: true, stdio: ['ignore', stdout, 'pipe'] });
    children.add(child);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      for (const line of text.trimEnd().split('\n')) logs.push(`${name} [${child.pid}]: ${line}`);
    });
    child.on('exit', () => children.delete(child));
    return child;
  };

  /** Power cut: SIGKILL to the whole process group, and wait until the process is gone. */
  const kill9 = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, 'exit');
    process.kill(-child.pid!, 'SIGKILL');
    await gone;
  };
  /** A clean stop (SIGTERM), or SIGKILL after 15 s. */
  const stop = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, 'exit');
    process.kill(-child.pid!, 'SIGTERM');
    const timer = setTimeout(() => child.exitCode === null && process.kill(-child.pid!, 'SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  };

  /** The gateway command (src/cli/screening-hub.ts gateway), optionally under faketime; resolves once it answers C-ECHO. */
  const cliGateway = async (dataDir: string, hubUrl: string, dicomPort: number, clockOffset?: string) => {
    const args = [
      '--import',
      'tsx',
      CLI,
      'gateway',
      '--hub',
      hubUrl,
      '--unit',
      'mobile-1',
      '--allow',
      'MOBILE1',
      '--dicom-port',
      String(dicomPort),
      '--status-port',
      String(await freePort()),
      '--min-free-mb',
      '1',
      '--data',
      dataDir,
    ];
    const child = clockOffset
      ? spawnLogged(`gateway ${clockOffset}`, 'faketime', ['-f', clockOffset, process.execPath, ...args])
      : spawnLogged('gateway', process.execPath, args);
    const up = await until(
      async () => child.exitCode === null && (await echoscu(dicomPort, 'MOBILE1')) === 0,
      60_000,
      200,
    );
    if (!up) throw new Error(`The gateway command did not start:\n${tail()}`);
    return child;
  };

  /** test/support/transfer-hub-process.ts: the hub's gateway listener in a process of its own. */
  const hubProcess = async (port: number, dir: string, databaseArgs: string[]) => {
    const child = spawnLogged(
      'hub',
      process.execPath,
      ['--import', 'tsx', HUB_PROCESS, '--port', String(port), '--dir', dir, ...databaseArgs],
      'pipe',
    );
    child.stdout!.setEncoding('utf8');
    const ready = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`The hub process did not start:\n${tail()}`)), 90_000);
      child.stdout!.on('data', (chunk: string) => {
        text += chunk;
        const line = /^ready .*$/m.exec(text)?.[0];
        if (line) {
          clearTimeout(timer);
          resolve(line);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`The hub process exited (${code}):\n${tail()}`));
      });
    });
    return { child, fingerprint: ready.split(' ')[2]! };
  };

  const uploadsOf = (db: Database, sop: string) =>
    db.db
      .selectFrom('transfer_upload')
      .select(['id', 'state', 'received_bytes', 'length', 'message', 'waited_seconds'])
      .where('sop_instance_uid', '=', sop)
      .orderBy('created_at')
      .execute();
  const storedRows = (db: Database, sop: string) =>
    db.db.selectFrom('transfer_image').selectAll().where('sop_instance_uid', '=', sop).execute();
  const isStored = async (db: Database, sop: string) => (await storedRows(db, sop)).length > 0;
  /**
   * The hub has some of the package durably (recorded), but not all of it: `fraction` of it, or of the image's
   * original size while the package's length is not yet known (it is still being sealed).
   */
  const hubHasPart = async (db: Database, sop: string, fraction = 0.2, originalBytes = 0) => {
    const [upload] = await uploadsOf(db, sop);
    if (!upload) return false;
    if (upload.length === null) return upload.received_bytes > 0 && upload.received_bytes >= originalBytes * fraction;
    return upload.received_bytes >= upload.length * fraction && upload.received_bytes < upload.length;
  };

  /**
   * The rule: the image is recorded once, the archive's file is bit-exact, and it came through one upload, never
   * refused (so never sent again from zero, nor marked damaged). Where sealing was stopped (`sealingStopped`), the
   * upload begun while that package was sealed is left and superseded: only the bytes sent meanwhile go again.
   * Returns the hub's record of it.
   */
  const expectStoredOnce = async (db: Database, dir: string, sent: TestImage, { sealingStopped = false } = {}) => {
    const rows = await storedRows(db, sent.sopInstanceUid);
    expect(rows).toHaveLength(1);
    const stored = rows[0]!;
    expect(stored.original_sha256).toBe(sent.sha256);
    const archived = join(dir, 'archive', stored.study_instance_uid, `${sent.sopInstanceUid}.dcm`);
    expect(sha256(readFileSync(archived))).toBe(sent.sha256);
    const uploads = await uploadsOf(db, sent.sopInstanceUid);
    const states = uploads.map((u) => u.state);
    const messages = uploads.map((u) => `${u.state}: ${u.message}`).join('; ');
    expect(
      states.filter((state) => !sealingStopped || state !== 'superseded'),
      messages,
    ).toEqual(['stored']);
    if (sealingStopped) expect(states, messages).toContain('superseded');
    return stored;
  };

  const journal = (dataDir: string): JournalLine[] => {
    const file = join(dataDir, 'outbox.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as JournalLine);
  };
  const journalled = (dataDir: string, sop: string, event: string) =>
    journal(dataDir).some((e) => e.sop === sop && e.event === event);

  /** Mounts a tmpfs of `size` at `dir`; returns why not (also printed) when this machine will not. */
  const mountTmpfs = async (dir: string, size: string): Promise<string | undefined> => {
    mkdirSync(dir, { recursive: true });
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
      mounts.push(dir);
      return undefined;
    } catch (error) {
      const reason = `cannot mount a tmpfs here (needs root): ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`;
      console.warn(`Skipped: ${reason}`);
      return reason;
    }
  };
  const freeBytes = (dir: string) => {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  };
  /** Writes `file` to fill its file system until only `leave` bytes are free. */
  const fillUntil = (file: string, leave: number) => {
    const bytes = freeBytes(join(file, '..')) - leave;
    if (bytes > 0) writeFileSync(file, Buffer.alloc(bytes));
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'transfer-faults-'));
    hubDir = join(work, 'hub');
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    listener = await gatewayListener(database, 0, { dir: hubDir, checkpointBytes: 256 * 1024 });
  });

  afterAll(async () => {
    await Promise.allSettled([...gateways].map((g) => g.close()));
    await Promise.allSettled([...children].map((c) => kill9(c)));
    await Promise.allSettled([...links].map((l) => l.close()));
    await Promise.allSettled([...listeners].map((l) => l.close()));
    await listener?.close();
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    await database?.drop();
    for (const dir of mounts) await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
    if (!process.env.KEEP && work) rmSync(work, { recursive: true, force: true });
  });

  it('kill -9 of the gateway mid-upload: it resumes from the hub’s offset after restarting; and mid-sealing: the image is sealed again and sent', async () => {
    const slow = await link(listener.port, 4_000_000);
    const hubUrl = `https://127.0.0.1:${slow.port}`;
    const dataDir = join(work, 'gateway-cli');
    await enrolInto(database, listener.authorityPem, hubUrl, dataDir);
    const dicomPort = await freePort();
    let gateway = await cliGateway(dataDir, hubUrl, dicomPort);

    // A full 2D view over 4 Mbit/s takes about 13 s: the box loses power once the hub holds a fifth of it.
    const big = image(FULL_VIEW);
    await storescu(dicomPort, big.file);
    // Sealed first (on a busy machine sealing can lag the link, and a kill then is the mid-sealing case below).
    const sealedAndPartSent = async () =>
      journalled(dataDir, big.sopInstanceUid, 'sealed') && (await hubHasPart(database, big.sopInstanceUid));
    expect(await until(sealedAndPartSent, 60_000), tail()).toBe(true);
    await kill9(gateway);
    const [cutShort] = await uploadsOf(database, big.sopInstanceUid);
    expect(cutShort!.state).toBe('receiving');
    expect(cutShort!.received_bytes).toBeLessThan(cutShort!.length ?? Infinity);

    gateway = await cliGateway(dataDir, hubUrl, dicomPort);
    expect(await until(() => isStored(database, big.sopInstanceUid), 90_000), tail()).toBe(true);
    const stored = await expectStoredOnce(database, hubDir, big);
    // It resumed: everything that crossed the link (both runs, TLS, worklist, reports) is well under two packages.
    expect(slow.stats.bytesUp).toBeLessThan(stored.packed_bytes * 1.5);
    // The gateway learnt it is in the PACS and deleted its package.
    expect(await until(() => journalled(dataDir, big.sopInstanceUid, 'stored'), 30_000), tail()).toBe(true);
    expect(await until(() => readdirSync(join(dataDir, 'outbox')).length === 0, 10_000)).toBe(true);

    // Power lost again while the next image is being sealed (the package half-written in outbox/).
    slow.setRate(undefined);
    const next = image(FULL_VIEW);
    await storescu(dicomPort, next.file);
    const partial = () => readdirSync(join(dataDir, 'outbox')).some((name) => name.endsWith('.part'));
    expect(await until(partial, 20_000, 5), tail()).toBe(true);
    await kill9(gateway);
    expect(partial()).toBe(true);
    expect(journalled(dataDir, next.sopInstanceUid, 'sealed')).toBe(false);
    // The image as received is kept until its package is durable.
    expect(sha256(readFileSync(join(dataDir, 'images', `${next.sopInstanceUid}.dcm`)))).toBe(next.sha256);

    gateway = await cliGateway(dataDir, hubUrl, dicomPort);
    expect(await until(() => isStored(database, next.sopInstanceUid), 60_000), tail()).toBe(true);
    await expectStoredOnce(database, hubDir, next, { sealingStopped: true });
    expect(await until(() => journalled(dataDir, next.sopInstanceUid, 'stored'), 30_000), tail()).toBe(true);
    expect(journal(dataDir).filter((e) => e.event === 'damaged')).toEqual([]);
    await stop(gateway);
    await closeLink(slow);
  }, 240_000);

  it('kill -9 of the hub mid-upload: the gateway resumes once it is back, and the image is stored once', async () => {
    // The hub process opens the database itself: PostgreSQL when DATABASE_URL is set, else PGlite in a folder.
    const dir = join(work, 'hub-process');
    const port = await freePort();
    let databaseArgs: string[];
    let code: string;
    let hubDatabase: Database | undefined;
    if (process.env.DATABASE_URL) {
      const postgres = await freshDatabase('postgres');
      cleanups.push(() => postgres.drop());
      const hubOffice = await smallOffice(postgres.db);
      ({ code } = await addGateway(postgres.db, 'mobile-1', hubOffice.actor));
      hubDatabase = postgres;
      databaseArgs = ['--database', (postgres.target as { url: string }).url];
    } else {
      const pgliteDir = join(work, 'hub-pglite');
      const pglite = await openDatabase({ kind: 'pglite', dataDir: pgliteDir });
      await migrate(pglite);
      ({ code } = await addGateway(pglite.db, 'mobile-1', (await smallOffice(pglite.db)).actor));
      await pglite.close();
      databaseArgs = ['--pglite', pgliteDir];
    }
    let hub = await hubProcess(port, dir, databaseArgs);
    const slow = await link(port, 4_000_000);
    const hubUrl = `https://127.0.0.1:${slow.port}`;
    const dataDir = mkdtempSync(join(work, 'gateway-'));
    const identity = await enrol({ hubUrl, code, authorityFingerprint: hub.fingerprint, dataDir });
    const { gateway, dicomPort } = await runGateway(hubUrl, identity, dataDir);

    const big = image(FULL_VIEW);
    await storescu(dicomPort, big.file);
    const item = () => gateway.outbox.all().find((i) => i.sopInstanceUid === big.sopInstanceUid);
    const atHub = () => {
      const uploadId = item()?.uploadId;
      const part = uploadId ? join(dir, 'uploads', `${uploadId}.pkg`) : undefined;
      return part && existsSync(part) ? statSync(part).size : 0;
    };
    expect(await until(() => atHub() >= (item()?.packedBytes ?? Infinity) / 5, 60_000), tail()).toBe(true);
    await kill9(hub.child);
    const packedBytes = item()!.packedBytes!;
    expect(atHub()).toBeLessThan(packedBytes);
    expect(gateway.outbox.stateOf(big.sopInstanceUid)).toBe('sending');

    hub = await hubProcess(port, dir, databaseArgs);
    expect(await until(() => gateway.outbox.stateOf(big.sopInstanceUid) === 'in_pacs', 90_000), tail()).toBe(true);
    // Resumed from the hub's last checkpoint, not from zero.
    expect(slow.stats.bytesUp).toBeLessThan(packedBytes * 1.5);
    await closeGateway(gateway);
    if (hubDatabase) await expectStoredOnce(hubDatabase, dir, big);
    else {
      // PGlite holds its folder for one process: the hub stops cleanly, then this process looks.
      await stop(hub.child);
      const pglite = await openDatabase({ kind: 'pglite', dataDir: join(work, 'hub-pglite') });
      try {
        await expectStoredOnce(pglite, dir, big);
      } finally {
        await pglite.close();
      }
    }
    await stop(hub.child);
    await closeLink(slow);
  }, 240_000);

  it('a full disk at the hub mid-upload: the upload stops, the gateway keeps trying, nothing is damaged; with room again the image arrives', async (ctx) => {
    const dir = join(work, 'hub-tmpfs');
    const refused = await mountTmpfs(dir, '16m');
    if (refused) ctx.skip(refused);
    const hub = await gatewayListener(database, 0, { dir, checkpointBytes: 64 * 1024 });
    listeners.add(hub);
    const fast = await link(hub.port);
    const { gateway, dicomPort } = await inProcessGateway(`https://127.0.0.1:${fast.port}`, {
      authorityPem: hub.authorityPem,
    });

    const one = image(); // 2.6 MB, about 1 MB sealed
    const filler = join(dir, 'filler');
    fillUntil(filler, 300 * 1024);
    await storescu(dicomPort, one.file);
    // The hub cannot take more than its free space; the gateway keeps trying (every second at most, here).
    const stopped = () => logs.filter((l) => l.includes(`Sending ${one.sopInstanceUid} stopped`)).length;
    expect(await until(() => stopped() >= 5, 20_000), `the gateway stopped trying:\n${tail()}`).toBe(true);
    const [upload] = await uploadsOf(database, one.sopInstanceUid);
    expect(upload!.state).toBe('receiving');
    expect(upload!.received_bytes).toBeLessThan(upload!.length ?? Infinity);
    expect(gateway.outbox.stateOf(one.sopInstanceUid)).toBe('sending');
    expect(gateway.outbox.damagedCount()).toBe(0);

    rmSync(filler);
    expect(await until(() => gateway.outbox.stateOf(one.sopInstanceUid) === 'in_pacs', 45_000), tail()).toBe(true);
    // The bytes the hub acknowledged were all on its disk: the package was not refused and sent again.
    await expectStoredOnce(database, dir, one);
    await closeGateway(gateway);
    listeners.delete(hub);
    await hub.close();
    await closeLink(fast);
  }, 120_000);

  it('a full disk at the hub when restoring: the whole package waits at the hub, refused by nobody, until there is room', async (ctx) => {
    const dir = join(work, 'hub-tmpfs-restore');
    const refused = await mountTmpfs(dir, '16m');
    if (refused) ctx.skip(refused);
    const hub = await gatewayListener(database, 0, { dir, checkpointBytes: 64 * 1024 });
    listeners.add(hub);
    const fast = await link(hub.port);
    const { gateway, dicomPort } = await inProcessGateway(`https://127.0.0.1:${fast.port}`, {
      authorityPem: hub.authorityPem,
    });

    const one = image(); // about 1 MB sealed, 2.6 MB restored
    const filler = join(dir, 'filler');
    fillUntil(filler, 1536 * 1024); // room for the package, not for the image restored from it
    await storescu(dicomPort, one.file);
    expect(await until(() => gateway.outbox.stateOf(one.sopInstanceUid) === 'at_hub', 30_000), tail()).toBe(true);
    await new Promise((r) => setTimeout(r, 3000)); // the hub tries to restore it again every 500 ms
    expect((await uploadsOf(database, one.sopInstanceUid)).map((u) => u.state)).toEqual(['received']);
    expect(gateway.outbox.stateOf(one.sopInstanceUid)).toBe('at_hub');
    expect(await isStored(database, one.sopInstanceUid)).toBe(false);

    rmSync(filler);
    expect(await until(() => gateway.outbox.stateOf(one.sopInstanceUid) === 'in_pacs', 60_000), tail()).toBe(true);
    await expectStoredOnce(database, dir, one);
    await closeGateway(gateway);
    listeners.delete(hub);
    await hub.close();
    await closeLink(fast);
  }, 120_000);

  it('a full disk on the gateway when sealing: the image is kept, not damaged, and sent once there is room', async (ctx) => {
    const dataDir = join(work, 'gateway-tmpfs');
    const refused = await mountTmpfs(dataDir, '12m');
    if (refused) ctx.skip(refused);
    const fast = await link(listener.port);
    const { gateway, dicomPort } = await inProcessGateway(`https://127.0.0.1:${fast.port}`, { dataDir });

    const one = image(); // 2.6 MB: room for it as received, not for its package too
    const filler = join(dataDir, 'filler');
    fillUntil(filler, one.bytes + 192 * 1024);
    await storescu(dicomPort, one.file);
    const attempts = () => logs.filter((l) => l.includes(`Could not seal ${one.sopInstanceUid}`)).length;
    expect(await until(() => attempts() >= 4, 30_000), tail()).toBe(true);
    expect(tail()).toMatch(/ENOSPC|no space/i);
    expect(gateway.outbox.stateOf(one.sopInstanceUid)).toBe('received');
    expect(gateway.outbox.damagedCount()).toBe(0);
    expect(sha256(readFileSync(join(dataDir, 'images', `${one.sopInstanceUid}.dcm`)))).toBe(one.sha256);
    expect(readdirSync(join(dataDir, 'outbox'))).toEqual([]);

    rmSync(filler);
    expect(await until(() => gateway.outbox.stateOf(one.sopInstanceUid) === 'in_pacs', 60_000), tail()).toBe(true);
    await expectStoredOnce(database, hubDir, one, { sealingStopped: true });
    await closeGateway(gateway);
    await closeLink(fast);
  }, 120_000);

  it('a gateway clock 3 hours ahead or behind the hub’s: the image still arrives', async (ctx) => {
    if (!haveFaketime) ctx.skip('faketime is not installed (Debian package faketime)');
    const fast = await link(listener.port);
    const hubUrl = `https://127.0.0.1:${fast.port}`;
    for (const offset of ['+3h', '-3h']) {
      const dataDir = join(work, `gateway-clock${offset}`);
      await enrolInto(database, listener.authorityPem, hubUrl, dataDir);
      const dicomPort = await freePort();
      const gateway = await cliGateway(dataDir, hubUrl, dicomPort, offset);
      const one = image();
      await storescu(dicomPort, one.file);
      expect(await until(() => isStored(database, one.sopInstanceUid), 60_000), tail()).toBe(true);
      await expectStoredOnce(database, hubDir, one);
      // Its clock really was off (its log lines say when it thinks it is) …
      const said = logs.filter((l) => l.startsWith(`gateway ${offset} [${gateway.pid}]: 20`)).at(-1)!;
      const skew = Date.parse(said.split(': ')[1]!.split(' ')[0]!) - Date.now();
      expect(Math.abs(skew - (offset === '+3h' ? 3 : -3) * 3_600_000)).toBeLessThan(10 * 60_000);
      // … and the hub was told how long the image waited as an age, not a time: seconds, not hours.
      const [upload] = await uploadsOf(database, one.sopInstanceUid);
      expect(upload!.waited_seconds).toBeLessThan(600);
      expect(await until(() => journalled(dataDir, one.sopInstanceUid, 'stored'), 30_000), tail()).toBe(true);
      await stop(gateway);
    }
    await closeLink(fast);
  }, 180_000);

  // The last two wait on timers (the gateway's 15 s request timeout; the hub notes a gateway's address at most every
  // 30 s), so they run side by side, each with its own link and gateway.
  it.concurrent(
    'a link that black-holes mid-upload: the gateway gives up on the silent connection and resumes on a new one',
    async ({ expect }) => {
      const slow = await link(listener.port, 8_000_000);
      const { gateway, dicomPort } = await inProcessGateway(`https://127.0.0.1:${slow.port}`);
      const big = image(LARGE); // about 4 MB sealed: 4 s at 8 Mbit/s
      await storescu(dicomPort, big.file);
      expect(await until(() => hubHasPart(database, big.sopInstanceUid), 60_000), tail()).toBe(true);
      const connections = slow.stats.connections;
      slow.cut('blackhole');
      // The gateway's requests time out after 15 s of silence; then a new connection carries on.
      expect(await until(() => gateway.outbox.stateOf(big.sopInstanceUid) === 'in_pacs', 120_000), tail()).toBe(true);
      const stored = await expectStoredOnce(database, hubDir, big);
      expect(slow.stats.connections).toBeGreaterThan(connections);
      expect(slow.stats.bytesUp).toBeLessThan(stored.packed_bytes * 1.5);
      expect(tail(200)).toMatch(
        new RegExp(`Sending ${big.sopInstanceUid.replaceAll('.', '\\.')} stopped: the link to the hub carried nothing`),
      );
      await closeGateway(gateway);
      await closeLink(slow);
    },
    180_000,
  );

  it.concurrent(
    'a new IP address mid-upload (the trailer moved to another mast): the upload resumes and the hub sees the new address',
    async ({ expect }) => {
      const slow = await link(listener.port, 8_000_000);
      const { gateway, dicomPort, gatewayId } = await inProcessGateway(`https://127.0.0.1:${slow.port}`);
      const contactIp = async () =>
        (
          await database.db
            .selectFrom('gateway')
            .select('last_contact_ip')
            .where('id', '=', gatewayId)
            .executeTakeFirstOrThrow()
        ).last_contact_ip;
      const big = image(LARGE);
      await storescu(dicomPort, big.file);
      expect(await until(() => hubHasPart(database, big.sopInstanceUid), 60_000), tail()).toBe(true);
      expect(await contactIp()).toBe('127.0.0.1');
      slow.changeAddress();
      expect(slow.localAddress).toBe('127.0.0.2');
      expect(await until(() => gateway.outbox.stateOf(big.sopInstanceUid) === 'in_pacs', 90_000), tail()).toBe(true);
      const stored = await expectStoredOnce(database, hubDir, big);
      expect(slow.stats.bytesUp).toBeLessThan(stored.packed_bytes * 1.5);
      // The hub notes a gateway's address at most every 30 s: the gateway keeps asking for its worklist meanwhile.
      expect(await until(async () => (await contactIp()) === '127.0.0.2', 45_000)).toBe(true);
      await closeGateway(gateway);
      await closeLink(slow);
    },
    180_000,
  );
});
