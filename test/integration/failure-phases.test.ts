/**
 * Issue 8, "every failure names its phase": each phase broken on purpose between a real gateway and a real hub
 * listener (wrong DNS name, closed port, a certificate from another authority, a revoked gateway, a link that
 * accepts and then black-holes traffic, a package altered on the box, the PACS down or answering 503), checking the
 * phase the gateway (or hub) names, the trailer page's words for it, and the recovery once the fault is removed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/gateway.js';
import type { GatewayIdentity } from '../../src/gateway/identity.js';
import { renderStatus, type TrailerDesk } from '../../src/gateway/status-page.js';
import { startGatewayListener } from '../../src/hub/gateway-listener.js';
import { currentPacsFailure } from '../../src/hub/transfer-intake.js';
import { DicomWebPacs } from '../../src/pacs/pacs.js';
import { PHASE_DESCRIPTIONS, type FailurePhase } from '../../src/protocol/failure-phase.js';
import { revokeGateway } from '../../src/store/gateways.js';
import { createAuthority } from '../../src/tls/certificates.js';
import { freshDatabase } from '../support/database.js';
import { freePort, haveDcmtk } from '../support/dcmtk.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { enrolledGateway, gatewayListener, startTestGateway, until } from '../support/gateway-hub.js';
import { startLink, type Link } from '../support/link-simulator.js';
import { writeRealisticMammogram } from '../support/mammogram.js';
import { haveOrthanc, startOrthanc, type RunningOrthanc } from '../support/orthanc.js';

const run = promisify(execFile);
type Listener = Awaited<ReturnType<typeof gatewayListener>>;
type Gateway = ReturnType<typeof startGateway>;

/** The trailer page as people read it (tags gone, entities decoded, spaces collapsed). */
const pageText = (desk: TrailerDesk) =>
  renderStatus(desk, 'csrf', {}, new Date())
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)))
    .replace(/\s+/g, ' ')
    .replace(/ ([:.,])/g, '$1');

/** The desk with the sender's phase-named failure on it (what gateway.ts's outbox() is to pass). */
const withSender = (gateway: Gateway): TrailerDesk => ({
  ...gateway.desk,
  outbox: () => ({ ...gateway.desk.outbox(), lastFailure: gateway.sender.lastFailure }),
});

const label = (phase: FailurePhase) => PHASE_DESCRIPTIONS[phase].label;

describe('every failure between a gateway and the hub names its phase, and the link recovers', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: Listener;
  let hubUrl: string;
  let work: string;
  const logs: string[] = [];
  const gateways = new Set<Gateway>();
  const links = new Set<Link>();

  const runGateway = (url: string, identity: GatewayIdentity, dataDir: string, dicomPort = 0) => {
    const gateway = startGateway({
      hubUrl: url,
      identity,
      dataDir,
      dicomPort,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MOBILE1'],
      minFreeBytes: 1,
      maxRetryMs: 500,
      resyncMs: 1000,
      silenceMs: 1500,
      today: () => TODAY,
      log: (level, message) => void logs.push(`${level}: ${message}`),
    });
    gateways.add(gateway);
    return gateway;
  };
  const stop = async (gateway: Gateway) => {
    gateways.delete(gateway);
    await gateway.close();
  };
  const enrolled = () => enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
  /** Waits until the gateway names `phase`, and returns the trailer page as it was then. */
  const named = async (gateway: Gateway, phase: FailurePhase, ms = 10_000) => {
    let page = '';
    const held = await until(
      () => {
        if (gateway.feed.state.lastFailure?.phase !== phase) return false;
        page = pageText(gateway.desk);
        return true;
      },
      ms,
      20,
    );
    expect(held, `${phase}: ${JSON.stringify(gateway.feed.state.lastFailure)}\n${logs.slice(-5).join('\n')}`).toBe(
      true,
    );
    return page;
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'failure-phases-'));
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    listener = await gatewayListener(database);
    hubUrl = `https://127.0.0.1:${listener.port}`;
  });
  afterAll(async () => {
    for (const gateway of gateways) await gateway.close();
    for (const link of links) await link.close();
    await listener?.close();
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('a hub name that does not resolve is DNS, on the page with what to do; the right address connects', async () => {
    const { identity, dataDir } = await enrolled();
    const wrong = runGateway(`https://hub.invalid:${listener.port}`, identity, dataDir);
    const page = await named(wrong, 'dns');
    expect(wrong.feed.state.lastFailure!.message).toMatch(/hub\.invalid could not be looked up/);
    expect(page).toContain(`Offline`);
    expect(page).toContain(`${label('dns')}: The hub’s name hub.invalid could not be looked up`);
    expect(page).toContain(`What to do: ${PHASE_DESCRIPTIONS.dns.action}`);
    expect(logs.some((l) => l.startsWith(`warn: ${label('dns')}: `))).toBe(true);
    await stop(wrong);

    const right = runGateway(hubUrl, identity, dataDir);
    expect(await until(() => right.feed.state.online, 10_000)).toBe(true);
    expect(right.feed.state.lastFailure).toBeNull();
    expect(pageText(right.desk)).not.toContain(label('dns'));
    await stop(right);
  });

  it('a closed port is TCP connect; once something listens there the gateway connects by itself', async () => {
    const { identity, dataDir } = await enrolled();
    const port = await freePort();
    const gateway = runGateway(`https://127.0.0.1:${port}`, identity, dataDir);
    const page = await named(gateway, 'tcp_connect');
    expect(gateway.feed.state.lastFailure!.message).toMatch(/ECONNREFUSED/);
    expect(page).toContain(`${label('tcp_connect')}: Nothing answered at the hub’s address`);
    // The port opens (the hub's firewall fixed): a proxy to the hub there.
    const link = await startLink({ target: { host: '127.0.0.1', port: listener.port }, listenPort: port });
    links.add(link);
    expect(await until(() => gateway.feed.state.online, 15_000), logs.slice(-5).join('\n')).toBe(true);
    expect(gateway.feed.state.lastFailure).toBeNull();
    // What the outage was is kept once the link is back, for the hub to hear of it.
    expect(gateway.feed.state.lastOutage?.failure.phase).toBe('tcp_connect');
    await stop(gateway);
  });

  it('a gateway trusting another authority does not trust the hub’s certificate; with the right one it connects', async () => {
    const { identity, dataDir } = await enrolled();
    const stranger = await createAuthority('Not the hub’s authority');
    const misled = runGateway(hubUrl, { ...identity, authorityPem: stranger.certificatePem }, dataDir);
    const page = await named(misled, 'certificate_rejected');
    expect(misled.feed.state.lastFailure!.message).toMatch(/^The gateway does not trust the hub’s certificate/);
    expect(page).toContain(`${label('certificate_rejected')}: The gateway does not trust the hub’s certificate`);
    await stop(misled);

    const trusting = runGateway(hubUrl, identity, dataDir);
    expect(await until(() => trusting.feed.state.online, 10_000)).toBe(true);
    expect(trusting.feed.state.lastFailure).toBeNull();
    await stop(trusting);
  });

  it('a revoked gateway is its certificate refused by the hub; enrolled again it connects', async () => {
    const { identity, dataDir, gatewayId } = await enrolled();
    const gateway = runGateway(hubUrl, identity, dataDir);
    expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
    await revokeGateway(database.db, gatewayId, 'Certificate test', office.actor);
    const page = await named(gateway, 'certificate_rejected');
    expect(gateway.feed.state.lastFailure!.message).toMatch(/^The hub refused this gateway’s certificate: .*revoked/);
    expect(page).toContain(`${label('certificate_rejected')}: The hub refused this gateway’s certificate`);
    expect(page).toContain('enrol it again from the hub’s Gateways page');
    await stop(gateway);

    const again = await enrolled();
    const renewed = runGateway(hubUrl, again.identity, again.dataDir);
    expect(await until(() => renewed.feed.state.online, 10_000)).toBe(true);
    expect(renewed.feed.state.lastFailure).toBeNull();
    await stop(renewed);
  });

  it('a link that accepts and then black-holes traffic is a silent link, dropped and made again', async () => {
    const link = await startLink({ target: { host: '127.0.0.1', port: listener.port } });
    links.add(link);
    const { identity, dataDir } = await enrolledGateway(
      database,
      `https://127.0.0.1:${link.port}`,
      listener.authorityPem,
      'mobile-1',
      office.actor,
    );
    const gateway = runGateway(`https://127.0.0.1:${link.port}`, identity, dataDir);
    expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
    const connections = link.stats.connections;
    link.cut('blackhole'); // open connections carry nothing from now on; new ones go through
    const page = await named(gateway, 'silent_link');
    expect(page).toContain(`${label('silent_link')}: The push stream looked open but carried nothing for 1.5 s`);
    expect(logs.some((l) => l.startsWith(`warn: ${label('silent_link')}: `))).toBe(true);
    // Made again through the same link, on a new connection, without anyone touching it (an ask for the worklist
    // caught on the black-holed link first waits out its own 15 s limit).
    expect(await until(() => gateway.feed.state.online, 40_000), logs.slice(-5).join('\n')).toBe(true);
    expect(gateway.feed.state.lastFailure).toBeNull();
    expect(gateway.feed.state.lastOutage?.failure.phase).toBe('silent_link');
    expect(link.stats.connections).toBeGreaterThan(connections);
    await stop(gateway);
  });

  it.skipIf(!haveDcmtk)(
    'a package altered on the box is decryption/integrity at the hub; the next image goes',
    async () => {
      const link = await startLink({ target: { host: '127.0.0.1', port: listener.port } });
      links.add(link);
      const url = `https://127.0.0.1:${link.port}`;
      const { identity, dataDir } = await enrolledGateway(
        database,
        url,
        listener.authorityPem,
        'mobile-1',
        office.actor,
      );
      const dicomPort = await freePort();
      const gateway = runGateway(url, identity, dataDir, dicomPort);
      expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
      const image = (n: number) => {
        const sopInstanceUid = `2.25.8808${process.pid}${n}`;
        const file = join(work, `${sopInstanceUid}.dcm`);
        writeRealisticMammogram(file, {
          sopInstanceUid,
          accessionNumber: `PHASE${n}`,
          patientId: '9990000018',
          seed: n,
        });
        return { sopInstanceUid, file };
      };
      const storescu = (file: string) =>
        run('storescu', ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), file], {
          timeout: 60_000,
        });

      const altered = image(1);
      link.setRate(16_000); // slow enough to alter the package before its end is sent
      try {
        await storescu(altered.file);
        expect(
          await until(
            () => ['sending', 'sealed'].includes(gateway.outbox.stateOf(altered.sopInstanceUid) ?? ''),
            10_000,
          ),
        ).toBe(true);
        const item = gateway.outbox.all().find((i) => i.sopInstanceUid === altered.sopInstanceUid)!;
        const sealed = readFileSync(item.packageFile!);
        sealed.writeUInt8(sealed.readUInt8(sealed.length - 100) ^ 0x01, sealed.length - 100);
        writeFileSync(item.packageFile!, sealed);
      } finally {
        link.setRate(undefined);
      }
      expect(
        await until(() => gateway.sender.lastFailure?.phase === 'decrypt_auth', 20_000),
        logs.slice(-8).join('\n'),
      ).toBe(true);
      expect(gateway.sender.lastFailure!.message).toMatch(/^The hub refused the package of .*failed authentication/);
      expect(logs.some((l) => l.startsWith(`warn: ${label('decrypt_auth')}: `))).toBe(true);
      const page = pageText(withSender(gateway));
      expect(page).toContain(`Last error ${label('decrypt_auth')}: The hub refused the package`);
      expect(page).toContain('send it again from the mammography machine');
      expect(await until(() => gateway.outbox.stateOf(altered.sopInstanceUid) === 'damaged', 20_000)).toBe(true);

      // Recovery: the next image is stored, and the failure is no longer shown.
      const good = image(2);
      await storescu(good.file);
      expect(await until(() => gateway.outbox.stateOf(good.sopInstanceUid) === 'in_pacs', 30_000)).toBe(true);
      expect(gateway.sender.lastFailure).toBeUndefined();
      expect(pageText(withSender(gateway))).not.toContain(label('decrypt_auth'));
      await stop(gateway);
    },
  );
});

describe.skipIf(!haveDcmtk || !haveOrthanc())('a PACS that is down or refusing names its phase at the hub', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let orthanc: RunningOrthanc;
  let listener: Listener;
  let gateway: Gateway;
  let work: string;
  let pacsPort: number;
  let dicomPort: number;
  let pacsLink: Link | undefined;
  let refusing: Server | undefined;
  const hubLogs: string[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'failure-phases-pacs-'));
    database = await freshDatabase('pglite');
    const office = await smallOffice(database.db);
    orthanc = await startOrthanc();
    // The hub's PACS is at a port where nothing listens yet.
    pacsPort = await freePort();
    const pacs = new DicomWebPacs({ url: `http://127.0.0.1:${pacsPort}/dicom-web`, connectTimeoutMs: 2000 });
    // As test/support/gateway-hub.ts starts it, but keeping the hub's log lines.
    listener = await startGatewayListener({
      database,
      port: 0,
      host: '127.0.0.1',
      today: () => TODAY,
      heartbeatMs: 1000,
      transfers: { dir: join(work, 'hub'), pacs, retryMs: 300 },
      log: (level, message) => void hubLogs.push(`${level}: ${message}`),
    });
    ({ gateway, dicomPort } = await startTestGateway(database, listener, office.actor, {
      minFreeBytes: 1,
      maxRetryMs: 500,
      log: (level, message) => void logs.push(`${level}: ${message}`),
    }));
    await until(() => gateway.feed.state.online, 10_000);
  });
  afterAll(async () => {
    await gateway?.close();
    await pacsLink?.close();
    refusing?.closeAllConnections();
    await new Promise((resolve) => (refusing ? refusing.close(resolve) : resolve(undefined)));
    await listener?.close();
    await orthanc?.close();
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('PACS down is PACS unreachable, a 503 is PACS refused, and once the PACS is back the image is stored', async () => {
    const sopInstanceUid = `2.25.8809${process.pid}1`;
    const file = join(work, 'image.dcm');
    writeRealisticMammogram(file, { sopInstanceUid, accessionNumber: 'PACS1', patientId: '9990000018', seed: 7 });
    await run('storescu', ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), file], {
      timeout: 60_000,
    });

    // Nothing listens where the PACS should be.
    expect(
      await until(() => listener.intake.lastPacsFailure?.phase === 'pacs_unreachable', 30_000),
      `${hubLogs.slice(-5).join('\n')}\n${logs.slice(-5).join('\n')}`,
    ).toBe(true);
    expect(listener.intake.lastPacsFailure!.message).toMatch(/could not connect.*ECONNREFUSED/);
    expect(currentPacsFailure()).toEqual(listener.intake.lastPacsFailure);
    expect(hubLogs.some((l) => l.startsWith(`warn: ${label('pacs_unreachable')}: Package `))).toBe(true);
    // The gateway has handed the whole package over and waits: nothing refused, nothing damaged.
    expect(gateway.outbox.stateOf(sopInstanceUid)).toBe('at_hub');

    // Something answers there now, but with 503: the PACS refused (and is tried again).
    refusing = createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(503).end('Service Unavailable'));
    });
    await new Promise<void>((resolve) => refusing!.listen(pacsPort, '127.0.0.1', resolve));
    expect(await until(() => listener.intake.lastPacsFailure?.phase === 'pacs_refused', 15_000)).toBe(true);
    expect(listener.intake.lastPacsFailure!.message).toMatch(/HTTP 503/);
    expect(hubLogs.some((l) => l.startsWith(`warn: ${label('pacs_refused')}: Package `))).toBe(true);
    refusing.closeAllConnections();
    await new Promise((resolve) => refusing!.close(resolve));
    refusing = undefined;

    // The PACS is back (a proxy to Orthanc at its address): the image is stored, and the failure cleared.
    pacsLink = await startLink({ target: { host: '127.0.0.1', port: orthanc.httpPort }, listenPort: pacsPort });
    expect(await until(() => gateway.outbox.stateOf(sopInstanceUid) === 'in_pacs', 30_000)).toBe(true);
    expect(await orthanc.instances()).toContain(sopInstanceUid);
    expect(listener.intake.lastPacsFailure).toBeNull();
    expect(currentPacsFailure()).toBeNull();
  });
});
