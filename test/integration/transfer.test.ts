import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { startGateway } from '../../src/gateway/gateway.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { freshDatabase } from '../support/database.js';
import { haveDcmtk } from '../support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Clinics, type Office } from '../support/fixtures.js';
import { gatewayListener, startTestGateway, until } from '../support/gateway-hub.js';
import { startLink, type Link } from '../support/link-simulator.js';
import { MG_FOR_PRESENTATION, writeRealisticMammogram } from '../support/mammogram.js';
import { requestCommitment } from '../support/commitment-modality.js';

const run = promisify(execFile);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function storescu(port: number, ...files: string[]) {
  await run('storescu', ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(port), ...files], {
    timeout: 60_000,
  });
}

type Listener = Awaited<ReturnType<typeof gatewayListener>>;
type Gateway = ReturnType<typeof startGateway>;

describe.skipIf(!haveDcmtk)('image transfer: storescu → gateway → (simulated link) → hub → archive', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let clinics: Clinics;
  let listener: Listener;
  let transferDir: string;
  let hubPort: number;
  let link: Link;
  let gateway: Gateway;
  let dicomPort: number;
  let work: string;
  const logs: string[] = [];
  let uid = 0;

  /** A participant booked at mobile-1 today: her accession number and NHS number. */
  const booked = async (episodeType?: 'E') => {
    const p = await addParticipant(database.db);
    clinics = await newClinics(database.db); // a clinic holds six; each exam gets a fresh one
    const id = await bookAppointment(
      database.db,
      { participantId: p.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    if (episodeType) {
      const appointment = await database.db
        .selectFrom('appointment')
        .select('episode_id')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      await database.db
        .updateTable('episode')
        .set({ episode_type: episodeType })
        .where('id', '=', appointment.episode_id!)
        .execute();
    }
    const a = await database.db
      .selectFrom('appointment')
      .select(['accession_number'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return { appointmentId: id, accessionNumber: a.accession_number, nhsNumber: p.nhs_number };
  };

  const image = (exam: { accessionNumber: string; nhsNumber: string }, size?: { width: number; height: number }) => {
    const sopInstanceUid = `2.25.4242${++uid}`;
    const file = join(work, `${sopInstanceUid}.dcm`);
    const bytes = writeRealisticMammogram(file, {
      sopInstanceUid,
      accessionNumber: exam.accessionNumber,
      patientId: exam.nhsNumber,
      seed: uid,
      ...size,
    });
    return { sopInstanceUid, file, sha256: sha256(bytes), bytes: bytes.length };
  };

  const storedImages = () => database.db.selectFrom('transfer_image').selectAll().orderBy('stored_at').execute();
  const archived = (studyUid: string, sop: string) => join(transferDir, 'archive', studyUid, `${sop}.dcm`);

  const startHub = async () => {
    listener = await gatewayListener(database, hubPort, { dir: transferDir, checkpointBytes: 128 * 1024 });
    hubPort = listener.port;
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'transfer-'));
    transferDir = join(work, 'hub');
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    hubPort = 0;
    await startHub();
    link = await startLink({ target: { host: '127.0.0.1', port: hubPort } });
    const hubUrl = `https://127.0.0.1:${link.port}`;
    ({ gateway, dicomPort } = await startTestGateway(database, listener, office.actor, {
      hubUrl,
      resyncMs: 1000,
      log: (level, message) => void logs.push(`${new Date().toISOString().slice(11, 23)} ${level}: ${message}`),
    }));
    await until(() => gateway.feed.state.online, 10_000);
  });
  afterAll(async () => {
    await gateway?.close();
    await link?.close();
    await listener?.close();
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('sends every image by itself to the archive, bit-exact and once, and marks the exam’s images available', async () => {
    const exam = await booked();
    await until(
      () => gateway.copy.current()?.entries.some((e) => e.accessionNumber === exam.accessionNumber) ?? false,
      5000,
    );
    const images = [image(exam), image(exam)];
    await storescu(dicomPort, ...images.map((i) => i.file));
    expect(await until(async () => (await storedImages()).length === 2, 30_000), logs.join('\n')).toBe(true);

    for (const i of images) {
      const stored = (await storedImages()).find((s) => s.sop_instance_uid === i.sopInstanceUid)!;
      expect(stored).toMatchObject({ accession_number: exam.accessionNumber, codec: 'jpeg-ls' });
      expect(stored.packed_bytes).toBeLessThan(i.bytes / 2);
      expect(sha256(readFileSync(archived(stored.study_instance_uid, i.sopInstanceUid)))).toBe(i.sha256);
      expect(stored.original_sha256).toBe(i.sha256);
    }
    const appointment = await database.db
      .selectFrom('appointment')
      .select(['images_available_at', 'study_instance_uid'])
      .where('id', '=', exam.appointmentId)
      .executeTakeFirstOrThrow();
    expect(appointment.images_available_at).not.toBeNull();
    expect(appointment.study_instance_uid).toBe('2.25.1234');
    // The gateway keeps nothing once the PACS has it: no image as received, no package.
    await until(() => images.every((i) => gateway.outbox.stateOf(i.sopInstanceUid) === 'in_pacs'), 5000);
    expect(
      images.map((i) => gateway.outbox.stateOf(i.sopInstanceUid)),
      logs.join('\n'),
    ).toEqual(['in_pacs', 'in_pacs']);
    expect(readdirSync(gateway.outbox.dir)).toEqual([]);
    expect(readdirSync(gateway.images.images)).toEqual([]);
    const audit = await database.db
      .selectFrom('audit_event')
      .select(['username', 'detail'])
      .where('action', '=', 'image.store')
      .execute();
    expect(audit).toHaveLength(2);
    expect(audit[0]!.username).toBe('gateway mobile-1');

    // The machine asks for Storage Commitment and is told, on its association, that both are committed.
    const commitment = await requestCommitment(
      dicomPort,
      '2.25.777',
      images.map((i) => ({ sopClassUid: MG_FOR_PRESENTATION, sopInstanceUid: i.sopInstanceUid })),
      { callingAe: 'MOBILE1', lingerMs: 3000 },
    );
    expect(commitment.status).toBe(0);
    expect(commitment.reports).toHaveLength(1);
    expect(commitment.reports[0]).toMatchObject({ eventType: 1, transactionUid: '2.25.777', failed: [] });
    expect(commitment.reports[0]!.committed.sort()).toEqual(images.map((i) => i.sopInstanceUid).sort());
  });

  it('stores an image sent twice once', async () => {
    const exam = await booked();
    const one = image(exam);
    await storescu(dicomPort, one.file);
    expect(
      await until(async () => (await storedImages()).some((s) => s.sop_instance_uid === one.sopInstanceUid), 20_000),
    ).toBe(true);
    const before = (await storedImages()).length;
    await storescu(dicomPort, one.file);
    const uploads = () =>
      database.db
        .selectFrom('transfer_upload')
        .select('state')
        .where('sop_instance_uid', '=', one.sopInstanceUid)
        .execute();
    expect(await until(async () => (await uploads()).filter((u) => u.state === 'stored').length === 2, 20_000)).toBe(
      true,
    );
    expect(await storedImages()).toHaveLength(before);
  });

  it('starts sending an image while it is still sealing it, and tells its length once it is sealed', async () => {
    const exam = await booked();
    const one = image(exam, { width: 2560, height: 3328 });
    await storescu(dicomPort, one.file);
    const sealedLog = () => logs.find((l) => l.includes(`Sealed ${one.sopInstanceUid}:`));
    expect(await until(() => sealedLog() !== undefined, 20_000), logs.join('\n')).toBe(true);
    expect(
      await until(async () => (await storedImages()).some((s) => s.sop_instance_uid === one.sopInstanceUid), 30_000),
    ).toBe(true);
    const upload = await database.db
      .selectFrom('transfer_upload')
      .select(['created_at', 'length', 'received_bytes', 'state'])
      .where('sop_instance_uid', '=', one.sopInstanceUid)
      .executeTakeFirstOrThrow();
    // The hub had the upload (and, with no rate cap, its first bytes) before the gateway had finished sealing it.
    const sealedAt = new Date(`${new Date(upload.created_at).toISOString().slice(0, 11)}${sealedLog()!.slice(0, 12)}Z`);
    expect(new Date(upload.created_at).getTime()).toBeLessThan(sealedAt.getTime());
    const stored = (await storedImages()).find((s) => s.sop_instance_uid === one.sopInstanceUid)!;
    expect(upload).toMatchObject({ state: 'stored', length: stored.packed_bytes, received_bytes: stored.packed_bytes });
    expect(stored.original_sha256).toBe(one.sha256);
  });

  it('continues from the hub’s offset after every drop and never starts an image again from zero', async () => {
    const exam = await booked();
    const big = image(exam, { width: 2048, height: 2560 });
    link.setRate(8_000_000);
    const cuts = setInterval(() => link.cut(), 700);
    const upBefore = link.stats.bytesUp;
    try {
      await storescu(dicomPort, big.file);
      expect(
        await until(async () => (await storedImages()).some((s) => s.sop_instance_uid === big.sopInstanceUid), 60_000),
        logs.slice(-20).join('\n'),
      ).toBe(true);
    } finally {
      clearInterval(cuts);
      link.setRate(undefined);
    }
    const stored = (await storedImages()).find((s) => s.sop_instance_uid === big.sopInstanceUid)!;
    expect(sha256(readFileSync(archived(stored.study_instance_uid, big.sopInstanceUid)))).toBe(big.sha256);
    expect(link.stats.cuts).toBeGreaterThan(2);
    // Everything that crossed the link for it (TLS, headers, bytes sent again after each cut) is close to the package.
    expect(link.stats.bytesUp - upBefore).toBeLessThan(stored.packed_bytes * 1.3);
  });

  it('rejects a package altered on the box, sends it once more, then shows the image as damaged', async () => {
    const exam = await booked();
    const one = image(exam);
    link.setRate(16_000); // slow enough to alter the package before its end is sent
    try {
      await storescu(dicomPort, one.file);
      expect(
        await until(() => ['sending', 'sealed'].includes(gateway.outbox.stateOf(one.sopInstanceUid) ?? ''), 10_000),
      ).toBe(true);
      const item = gateway.outbox.all().find((i) => i.sopInstanceUid === one.sopInstanceUid)!;
      const sealed = readFileSync(item.packageFile!);
      sealed.writeUInt8(sealed.readUInt8(sealed.length - 100) ^ 0x01, sealed.length - 100);
      writeFileSync(item.packageFile!, sealed);
    } finally {
      link.setRate(undefined);
    }
    expect(
      await until(() => gateway.outbox.stateOf(one.sopInstanceUid) === 'damaged', 20_000),
      logs.slice(-10).join('\n'),
    ).toBe(true);
    const uploads = await database.db
      .selectFrom('transfer_upload')
      .select(['state', 'message'])
      .where('sop_instance_uid', '=', one.sopInstanceUid)
      .execute();
    expect(uploads.map((u) => u.state)).toEqual(['rejected', 'rejected']);
    expect(uploads[0]!.message).toMatch(/failed authentication/);
    expect((await storedImages()).some((s) => s.sop_instance_uid === one.sopInstanceUid)).toBe(false);
    const item = gateway.outbox.all().find((i) => i.sopInstanceUid === one.sopInstanceUid)!;
    expect(item.message).toMatch(/send the image again from the machine/);
    expect(existsSync(item.packageFile!)).toBe(false);
  });

  it('sends an urgent exam (early recall) before routine images waiting ahead of it', async () => {
    const routine = await booked();
    const urgent = await booked('E');
    await until(
      () =>
        gateway.copy
          .current()
          ?.entries.some((e) => e.accessionNumber === urgent.accessionNumber && e.priority === 'urgent') ?? false,
      5000,
    );
    const routineImages = [image(routine), image(routine), image(routine)];
    const urgentImage = image(urgent);
    link.setRate(4_000_000);
    try {
      await storescu(dicomPort, ...routineImages.map((i) => i.file));
      await storescu(dicomPort, urgentImage.file);
      const all = [...routineImages, urgentImage].map((i) => i.sopInstanceUid);
      expect(
        await until(
          async () => (await storedImages()).filter((s) => all.includes(s.sop_instance_uid)).length === 4,
          60_000,
        ),
      ).toBe(true);
    } finally {
      link.setRate(undefined);
    }
    const order = (await storedImages()).map((s) => s.sop_instance_uid);
    const urgentAt = order.indexOf(urgentImage.sopInstanceUid);
    const lastRoutineAt = Math.max(...routineImages.map((i) => order.indexOf(i.sopInstanceUid)));
    expect(urgentAt).toBeLessThan(lastRoutineAt);
  });

  it('carries on after the hub restarts mid-upload, storing the image once', async () => {
    const exam = await booked();
    const big = image(exam, { width: 2048, height: 2560 });
    link.setRate(8_000_000);
    try {
      await storescu(dicomPort, big.file);
      expect(await until(() => gateway.outbox.stateOf(big.sopInstanceUid) === 'sending', 10_000)).toBe(true);
      await new Promise((r) => setTimeout(r, 800));
      await listener.close();
      await new Promise((r) => setTimeout(r, 500));
      await startHub();
      expect(
        await until(async () => (await storedImages()).some((s) => s.sop_instance_uid === big.sopInstanceUid), 60_000),
        logs.slice(-10).join('\n'),
      ).toBe(true);
    } finally {
      link.setRate(undefined);
    }
    const stored = (await storedImages()).filter((s) => s.sop_instance_uid === big.sopInstanceUid);
    expect(stored).toHaveLength(1);
    expect(sha256(readFileSync(archived(stored[0]!.study_instance_uid, big.sopInstanceUid)))).toBe(big.sha256);
  });
});
