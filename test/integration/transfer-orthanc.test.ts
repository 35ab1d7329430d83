import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { startGateway } from '../../src/gateway/gateway.js';
import { DicomWebPacs } from '../../src/pacs/pacs.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { freshDatabase } from '../support/database.js';
import { haveDcmtk } from '../support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY } from '../support/fixtures.js';
import { gatewayListener, startTestGateway, until } from '../support/gateway-hub.js';
import { startLink, type Link } from '../support/link-simulator.js';
import { writeRealisticMammogram } from '../support/mammogram.js';
import { haveOrthanc, startOrthanc, type RunningOrthanc } from '../support/orthanc.js';
import { writeTomosynthesis } from '../support/tomosynthesis.js';

const run = promisify(execFile);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The end-to-end test: DCMTK's storescu as the mammography machine → the gateway → a flaky simulated 4G
 * link (rate-capped, cut every 1.5 s) → the hub → a real Orthanc over DICOMweb STOW-RS. Every SOP instance must
 * arrive once and bit-exact, and the exam must show its images available.
 */
describe.skipIf(!haveDcmtk || !haveOrthanc())('storescu → gateway → flaky link → hub → Orthanc', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let orthanc: RunningOrthanc;
  let listener: Awaited<ReturnType<typeof gatewayListener>>;
  let link: Link;
  let gateway: ReturnType<typeof startGateway>;
  let work: string;
  let dicomPort: number;
  let office: Awaited<ReturnType<typeof smallOffice>>;
  const logs: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'transfer-orthanc-'));
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    orthanc = await startOrthanc();
    listener = await gatewayListener(database, 0, {
      dir: join(work, 'hub'),
      pacs: new DicomWebPacs({ url: orthanc.dicomWebUrl }),
      checkpointBytes: 256 * 1024,
    });
    link = await startLink({ target: { host: '127.0.0.1', port: listener.port }, bitsPerSecond: 24_000_000 });
    const hubUrl = `https://127.0.0.1:${link.port}`;
    ({ gateway, dicomPort } = await startTestGateway(database, listener, office.actor, {
      hubUrl,
      log: (level, message) => void logs.push(`${level}: ${message}`),
    }));
    await until(() => gateway.feed.state.online, 10_000);
  });
  afterAll(async () => {
    await gateway?.close();
    await link?.close();
    await listener?.close();
    await orthanc?.close();
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  // Its own waits allow 60 s for storescu and 120 s for the PACS: on a busy 2-core machine it needs more than the
  // default 60 s in all (it takes about 15 s on a quiet one).
  it('delivers a four-view exam and a tomosynthesis object once each, bit-exact, through drops', async () => {
    const participant = await addParticipant(database.db);
    const clinics = await newClinics(database.db);
    const appointmentId = await bookAppointment(
      database.db,
      { participantId: participant.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    const { accession_number: accessionNumber } = await database.db
      .selectFrom('appointment')
      .select('accession_number')
      .where('id', '=', appointmentId)
      .executeTakeFirstOrThrow();
    const files = ['RCC', 'LCC', 'RMLO', 'LMLO'].map((view, i) => {
      const sopInstanceUid = `2.25.9090${i + 1}`;
      const file = join(work, `${view}.dcm`);
      const bytes = writeRealisticMammogram(file, {
        sopInstanceUid,
        accessionNumber,
        patientId: participant.nhs_number,
        width: 1792,
        height: 2304,
        seed: i + 11,
      });
      return { sopInstanceUid, file, sha256: sha256(bytes) };
    });
    const tomoFile = join(work, 'tomo.dcm');
    const tomo = writeTomosynthesis(tomoFile, {
      frames: 12,
      rows: 1024,
      columns: 768,
      sopInstanceUid: '2.25.909099',
      accessionNumber,
      patientId: participant.nhs_number,
    });
    const all = [...files, { sopInstanceUid: '2.25.909099', file: tomoFile, sha256: tomo.sha256 }];

    const cuts = setInterval(() => link.cut(), 1500);
    try {
      await run(
        'storescu',
        ['-R', '-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), ...all.map((f) => f.file)],
        {
          timeout: 60_000,
        },
      );
      expect(
        await until(async () => (await orthanc.instances()).length === all.length, 120_000, 250),
        logs.slice(-20).join('\n'),
      ).toBe(true);
    } finally {
      clearInterval(cuts);
    }
    expect(link.stats.cuts).toBeGreaterThan(0);
    // Once each in the PACS, and each file exactly as the machine sent it (so its pixels are too).
    expect((await orthanc.instances()).sort()).toEqual(all.map((f) => f.sopInstanceUid).sort());
    for (const f of all) expect(sha256(await orthanc.fileOf(f.sopInstanceUid)), f.sopInstanceUid).toBe(f.sha256);
    expect(sha256(readFileSync(tomoFile))).toBe(tomo.sha256);
    const stored = await database.db.selectFrom('transfer_image').select(['sop_instance_uid', 'pacs']).execute();
    expect(stored).toHaveLength(all.length);
    expect(stored[0]!.pacs).toMatch(/DICOMweb/);
    const appointment = await database.db
      .selectFrom('appointment')
      .select('images_available_at')
      .where('id', '=', appointmentId)
      .executeTakeFirstOrThrow();
    expect(appointment.images_available_at).not.toBeNull();
    await until(() => all.every((f) => gateway.outbox.stateOf(f.sopInstanceUid) === 'in_pacs'), 10_000);
    expect(all.map((f) => gateway.outbox.stateOf(f.sopInstanceUid))).toEqual(all.map(() => 'in_pacs'));
  }, 180_000);
});
