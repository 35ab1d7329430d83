import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enrol, type GatewayIdentity } from '../../src/gateway/identity.js';
import { startGatewayListener } from '../../src/hub/gateway-listener.js';
import { FileArchive, type Pacs } from '../../src/pacs/pacs.js';
import type { Database } from '../../src/store/database.js';
import { addGateway } from '../../src/store/gateways.js';
import type { WorklistEntry } from '../../src/dicom/worklist-item.js';
import { WorklistCopy } from '../../src/gateway/worklist-copy.js';
import { createAuthority, createGatewayKey, fingerprint, issueGatewayCertificate } from '../../src/tls/certificates.js';
import { startGateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { freePort } from './dcmtk.js';
import { TODAY } from './fixtures.js';
import type { Actor } from '../../src/store/audit.js';

/**
 * The hub's gateway listener on a free port (or the port given, to restart it where gateways expect it), storing
 * images in a file archive in `transferDir` (a new temporary folder unless given) or the PACS given.
 */
export async function gatewayListener(
  database: Database,
  port = 0,
  transfers: { dir?: string; pacs?: Pacs; retryMs?: number; checkpointBytes?: number } = {},
) {
  const dir = transfers.dir ?? mkdtempSync(join(tmpdir(), 'hub-transfers-'));
  return startGatewayListener({
    database,
    port,
    host: '127.0.0.1',
    today: () => TODAY,
    heartbeatMs: 1000,
    transfers: {
      dir,
      pacs: transfers.pacs ?? new FileArchive(join(dir, 'archive')),
      retryMs: transfers.retryMs ?? 500,
      ...(transfers.checkpointBytes ? { checkpointBytes: transfers.checkpointBytes } : {}),
    },
    log: () => undefined,
  });
}

/** A gateway registered on the hub for a unit and enrolled with its one-time code, in a fresh data folder. */
export async function enrolledGateway(
  database: Database,
  hubUrl: string,
  authorityPem: string,
  unitId: string,
  actor: Actor,
): Promise<{ identity: GatewayIdentity; dataDir: string; gatewayId: string }> {
  const { code, gatewayId } = await addGateway(database.db, unitId, actor);
  const dataDir = mkdtempSync(join(tmpdir(), 'gateway-'));
  const identity = await enrol({ hubUrl, code, authorityFingerprint: fingerprint(authorityPem), dataDir });
  return { identity, dataDir, gatewayId };
}

/**
 * Mobile unit 1's gateway as the tests run one: enrolled (through `options.hubUrl` if given, else straight to the
 * listener), serving the machine MOBILE1 on a free DICOM port, with short reconnect waits. `options` override any
 * of it.
 */
export async function startTestGateway(
  database: Database,
  listener: { port: number; authorityPem: string },
  actor: Actor,
  options: Partial<GatewayOptions> = {},
) {
  const hubUrl = options.hubUrl ?? `https://127.0.0.1:${listener.port}`;
  const enrolled = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', actor);
  const dicomPort = options.dicomPort ?? (await freePort());
  const gateway = startGateway({
    hubUrl,
    identity: enrolled.identity,
    dataDir: enrolled.dataDir,
    dicomPort,
    aeTitle: 'SHGATEWAY',
    allowedCallingAeTitles: ['MOBILE1'],
    maxRetryMs: 300,
    today: () => TODAY,
    log: () => undefined,
    ...options,
  });
  return { gateway, dicomPort, dataDir: enrolled.dataDir, gatewayId: enrolled.gatewayId };
}

/** Polls until `what` holds or `ms` pass; true if it held. */
export async function until(what: () => Promise<boolean> | boolean, ms: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

/**
 * A gateway data folder as enrolment leaves it (an identity from a throwaway authority), for tests that run the
 * gateway with its hub unreachable; with `entries`, also a worklist copy as the hub last sent it.
 */
export async function offlineGatewayFolder(dataDir: string, unitId: string, entries: WorklistEntry[] = []) {
  const authority = await createAuthority('Test authority');
  const key = await createGatewayKey();
  const issued = await issueGatewayCertificate(
    authority,
    key.requestPem,
    '00000000-0000-4000-8000-00000000abcd',
    unitId,
  );
  mkdirSync(dataDir, { recursive: true });
  const identity: GatewayIdentity = {
    gatewayId: '00000000-0000-4000-8000-00000000abcd',
    unitId,
    privateKeyPem: key.privateKeyPem,
    certificatePem: issued.certificatePem,
    authorityPem: authority.certificatePem,
  };
  writeFileSync(join(dataDir, 'identity.json'), JSON.stringify(identity));
  const earliest = entries.map((e) => e.clinicDate).sort()[0];
  if (earliest) new WorklistCopy(dataDir).replace({ unitId, fetchedAt: new Date().toISOString(), entries }, earliest);
  return identity;
}
