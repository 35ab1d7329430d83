import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/gateway.js';
import { renderStatus } from '../../src/gateway/status-page.js';
import { freshDatabase } from '../support/database.js';
import { findscuWorklist, freePort, haveDcmtk } from '../support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Clinics } from '../support/fixtures.js';
import { apiToken, testHub } from '../support/hub-client.js';

const until = async (what: () => Promise<boolean>, ms: number) => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
};

describe.skipIf(!haveDcmtk)('gateway worklist fed by the hub, asked by findscu', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let hub: FastifyInstance;
  let hubUrl: string;
  let clinics: Clinics;
  let token: string;
  let dataDir: string;
  const logs: string[] = [];
  const gatewayOptions = (dicomPort: number) => ({
    hubUrl,
    unitId: 'mobile-1',
    token,
    dataDir,
    dicomPort,
    aeTitle: 'SHGATEWAY',
    allowedCallingAeTitles: ['MOBILE1'],
    pollIntervalMs: 300,
    today: () => TODAY,
    log: (level: string, message: string) => logs.push(`${level}: ${message}`),
  });
  const ask = (port: number) =>
    findscuWorklist(port, ['PatientID', 'PatientName', 'ScheduledProcedureStepSequence[0].Modality=MG'], {
      callingAe: 'MOBILE1',
    });

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    clinics = await newClinics(database.db);
    hub = await testHub(database.db);
    hubUrl = await hub.listen({ port: 0, host: '127.0.0.1' });
    token = await apiToken(hub, 'admin');
    dataDir = mkdtempSync(join(tmpdir(), 'gateway-'));
  });
  afterAll(async () => {
    await hub.close().catch(() => undefined);
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the unit’s appointments, follows a cancellation at the hub, and keeps answering with the hub gone', async () => {
    const onUnit = await addParticipant(database.db, { given_name: 'Vanessa', family_name: 'Van' });
    const leaving = await addParticipant(database.db, { given_name: 'Lena', family_name: 'Leaving' });
    const elsewhere = await addParticipant(database.db, { given_name: 'Stella', family_name: 'Static' });
    const book = async (participantId: string, clinicId: string) => {
      const response = await hub.inject({
        method: 'POST',
        url: '/api/v1/appointments',
        headers: { authorization: `Bearer ${token}` },
        payload: { participantId, clinicId },
      });
      expect(response.statusCode).toBe(201);
      return response.json<{ id: string }>().id;
    };
    await book(onUnit.id, clinics.inaccessibleClinic);
    const leavingId = await book(leaving.id, clinics.inaccessibleClinic);
    await book(elsewhere.id, clinics.accessibleClinic);

    const port = await freePort();
    const gateway = startGateway(gatewayOptions(port));
    try {
      expect(await until(async () => gateway.feed.state.online, 10_000)).toBe(true);
      const first = await ask(port);
      expect(first.exitCode).toBe(0);
      expect(first.responses.map((r) => r.PatientID).sort()).toEqual([onUnit.nhs_number, leaving.nhs_number].sort());

      // Cancelled at the hub: gone from the machine's worklist within 5 seconds.
      const cancelled = await hub.inject({
        method: 'POST',
        url: `/api/v1/appointments/${leavingId}/status`,
        headers: { authorization: `Bearer ${token}` },
        payload: { version: 1, status: 'cancelled', reason: 'Participant rang' },
      });
      expect(cancelled.statusCode).toBe(200);
      const started = Date.now();
      expect(
        await until(async () => (await ask(port)).responses.every((r) => r.PatientID !== leaving.nhs_number), 5_000),
      ).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);

      // The hub goes away: the worklist still answers, and the gateway says it is offline and why.
      await hub.close();
      expect(await until(async () => !gateway.feed.state.online, 5_000)).toBe(true);
      expect(gateway.feed.state.lastError).toMatch(/fetch failed|ECONNREFUSED/);
      expect((await ask(port)).responses.map((r) => r.PatientID)).toEqual([onUnit.nhs_number]);
      expect(logs.some((l) => l.startsWith('warn: Worklist feed offline'))).toBe(true);
      const status = renderStatus('mobile-1', gateway.feed.state, gateway.copy, TODAY);
      expect(status).toMatch(/Offline since/);
      expect(status).toMatch(/Worklist copy from .* old\): 1 appointments, 1 today/);
      expect(status).toContain('VAN, Vanessa');
    } finally {
      gateway.close();
    }

    // A restart with the hub still gone (a power cut on the van): answers from the encrypted copy on disk.
    const encrypted = readFileSync(join(dataDir, 'worklist.enc'));
    expect(encrypted.includes(Buffer.from(onUnit.nhs_number))).toBe(false);
    expect(encrypted.includes(Buffer.from('Vanessa'))).toBe(false);
    const port2 = await freePort();
    const restarted = startGateway(gatewayOptions(port2));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const answer = await ask(port2);
      expect(answer.responses.map((r) => r.PatientID)).toEqual([onUnit.nhs_number]);
      expect(restarted.feed.state.online).toBe(false);
    } finally {
      restarted.close();
    }
  });
});
