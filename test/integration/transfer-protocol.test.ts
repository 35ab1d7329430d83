import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubConnection } from '../../src/gateway/hub-connection.js';
import {
  encodeUploadMetadata,
  TRANSFER_KEY_PATH,
  TUS_VERSION,
  UPLOADS_PATH,
  type UploadStatus,
} from '../../src/protocol/transfer.js';
import { sealImageFile } from '../../src/transfer/package-files.js';
import { freshDatabase } from '../support/database.js';
import { smallOffice, type Office } from '../support/fixtures.js';
import { enrolledGateway, gatewayListener } from '../support/gateway-hub.js';
import { writeRealisticMammogram } from '../support/mammogram.js';

type Listener = Awaited<ReturnType<typeof gatewayListener>>;

/**
 * The upload protocol spoken directly, as a gateway's HubConnection speaks it (docs/transfer-protocol.md): here the
 * parts the gateway's own tests reach only by timing, above all an upload begun before its package's length is
 * known (creation-defer-length), opened by the hub as it arrives.
 */
describe('the upload protocol at the hub (tus 1.0.0 with creation-defer-length)', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: Listener;
  let hub: HubConnection;
  let work: string;
  let hubKey: Buffer;
  let uid = 0;

  /** A real sealed package of a small synthetic mammogram: its bytes and SOP Instance UID. */
  const sealedPackage = async () => {
    const sopInstanceUid = `2.25.515${++uid}`;
    const imageFile = join(work, `${sopInstanceUid}.dcm`);
    writeRealisticMammogram(imageFile, {
      sopInstanceUid,
      accessionNumber: `SHP${uid}`,
      patientId: '9990000018',
      width: 640,
      height: 800,
      seed: uid,
    });
    const packageFile = join(work, `${sopInstanceUid}.pkg`);
    await sealImageFile(imageFile, packageFile, hubKey);
    return { sopInstanceUid, bytes: readFileSync(packageFile) };
  };

  const create = (id: string, sop: string, length: number | 'later', extra: Record<string, string> = {}) =>
    hub.exchange('POST', UPLOADS_PATH, {
      headers: {
        'tus-resumable': TUS_VERSION,
        ...(length === 'later' ? { 'upload-defer-length': '1' } : { 'upload-length': String(length) }),
        'upload-metadata': encodeUploadMetadata({ id, sop, accession: '', priority: 'routine', waited: 0 }),
        ...extra,
      },
    });

  const patch = (id: string, offset: number, body: Buffer, extra: Record<string, string> = {}) =>
    hub.exchange('PATCH', `${UPLOADS_PATH}/${id}`, {
      body,
      headers: {
        'tus-resumable': TUS_VERSION,
        'content-type': 'application/offset+octet-stream',
        'upload-offset': String(offset),
        'content-length': String(body.length),
        ...extra,
      },
    });

  const status = async (id: string, wait = 0) => {
    const answer = await hub.exchange('GET', `${UPLOADS_PATH}/${id}${wait ? `?wait=${wait}` : ''}`);
    expect(answer.status).toBe(200);
    return JSON.parse(answer.text) as UploadStatus;
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'transfer-protocol-'));
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    listener = await gatewayListener(database, 0, { checkpointBytes: 64 * 1024 });
    const hubUrl = `https://127.0.0.1:${listener.port}`;
    const enrolled = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
    hub = new HubConnection(hubUrl, enrolled.identity);
    hubKey = Buffer.from((await hub.get<{ publicKey: string }>(TRANSFER_KEY_PATH)).publicKey, 'base64');
  }, 60_000);

  afterAll(async () => {
    await listener?.close();
    await database?.drop();
  });

  it('says it takes uploads whose length comes later', async () => {
    const answer = await hub.exchange('OPTIONS', UPLOADS_PATH);
    expect(answer.status).toBe(204);
    expect(String(answer.headers['tus-extension']).split(',')).toEqual(['creation', 'creation-defer-length']);
  });

  it('takes a package in pieces before its length is known, opens it as it arrives and stores it once told the length', async () => {
    const { sopInstanceUid, bytes } = await sealedPackage();
    const id = randomUUID();
    const created = await create(id, sopInstanceUid, 'later');
    expect(created.status).toBe(201);
    expect(created.headers['upload-offset']).toBe('0');
    const head = await hub.exchange('HEAD', `${UPLOADS_PATH}/${id}`);
    expect(head.headers['upload-defer-length']).toBe('1');
    expect(head.headers['upload-length']).toBeUndefined();

    const half = Math.floor(bytes.length / 2);
    const first = await patch(id, 0, bytes.subarray(0, half));
    expect(first.status).toBe(204);
    expect(first.headers['upload-offset']).toBe(String(half));
    expect(await status(id)).toMatchObject({ state: 'receiving', offset: half, length: null });

    const usedBefore = listener.intake.openedEarly.used;
    const last = await patch(id, half, bytes.subarray(half), { 'upload-length': String(bytes.length) });
    expect(last.status).toBe(204);
    expect(last.headers['upload-offset']).toBe(String(bytes.length));
    expect(await status(id, 10)).toMatchObject({ state: 'stored', offset: bytes.length, length: bytes.length });
    // The hub had opened it while it arrived: what was left at the last byte was the end of that.
    expect(listener.intake.openedEarly.used).toBe(usedBefore + 1);
    const stored = await database.db
      .selectFrom('transfer_image')
      .select(['packed_bytes', 'upload_id'])
      .where('sop_instance_uid', '=', sopInstanceUid)
      .executeTakeFirstOrThrow();
    expect(stored).toEqual({ packed_bytes: bytes.length, upload_id: id });
  });

  it('completes an upload whose every byte came before its length, when a creation request tells it', async () => {
    // What a gateway does after sending a package as it sealed it: all of it is at the hub, the length comes last.
    const { sopInstanceUid, bytes } = await sealedPackage();
    const id = randomUUID();
    expect((await create(id, sopInstanceUid, 'later')).status).toBe(201);
    expect((await patch(id, 0, bytes)).status).toBe(204);
    expect((await status(id)).state).toBe('receiving');
    const again = await create(id, sopInstanceUid, bytes.length);
    expect(again.status).toBe(201);
    expect(again.headers['upload-offset']).toBe(String(bytes.length));
    expect((await status(id, 10)).state).toBe('stored');
  });

  it('refuses a length it cannot take, and keeps the first one told', async () => {
    const { sopInstanceUid, bytes } = await sealedPackage();
    const id = randomUUID();
    const neither = await hub.exchange('POST', UPLOADS_PATH, {
      headers: {
        'tus-resumable': TUS_VERSION,
        'upload-metadata': encodeUploadMetadata({
          id,
          sop: sopInstanceUid,
          accession: '',
          priority: 'routine',
          waited: 0,
        }),
      },
    });
    expect(neither.status).toBe(400);
    expect(neither.text).toMatch(/Upload-Defer-Length: 1/);
    expect((await create(id, sopInstanceUid, 'later', { 'upload-defer-length': '2' })).status).toBe(400);

    expect((await create(id, sopInstanceUid, 'later')).status).toBe(201);
    expect((await patch(id, 0, bytes.subarray(0, 1000))).status).toBe(204);
    // Shorter than what the hub already holds: not this package.
    const tooShort = await patch(id, 1000, bytes.subarray(1000, 2000), { 'upload-length': '500' });
    expect(tooShort.status).toBe(409);
    expect(tooShort.text).toMatch(/has 1000 bytes of this package already/);
    expect((await status(id)).length).toBeNull();

    expect((await create(id, sopInstanceUid, bytes.length)).status).toBe(201);
    const other = await create(id, sopInstanceUid, bytes.length + 1);
    expect(other.status).toBe(409);
    expect(other.text).toMatch(new RegExp(`said to be ${bytes.length} bytes`));
    expect((await status(id)).length).toBe(bytes.length);
  });

  it('supersedes an upload left while its package was sealed, once the image arrives by another', async () => {
    const { sopInstanceUid, bytes } = await sealedPackage();
    const left = randomUUID();
    expect((await create(left, sopInstanceUid, 'later')).status).toBe(201);
    expect((await patch(left, 0, bytes.subarray(0, 4096))).status).toBe(204);
    const part = join(listener.intake.uploadsDir, `${left}.pkg`);
    expect(existsSync(part)).toBe(true);

    const id = randomUUID();
    expect((await create(id, sopInstanceUid, bytes.length)).status).toBe(201);
    expect((await patch(id, 0, bytes)).status).toBe(204);
    expect((await status(id, 10)).state).toBe('stored');
    expect(await status(left)).toMatchObject({ state: 'superseded', message: `Its image arrived by upload ${id}` });
    expect(existsSync(part)).toBe(false);
  });

  it('decides on a damaged package from the whole of it, whatever the early opening made of it', async () => {
    const { sopInstanceUid, bytes } = await sealedPackage();
    const damaged = Buffer.from(bytes);
    damaged[Math.floor(damaged.length / 2)]! ^= 0x01;
    const id = randomUUID();
    const againBefore = listener.intake.openedEarly.openedAgain;
    expect((await create(id, sopInstanceUid, damaged.length)).status).toBe(201);
    expect((await patch(id, 0, damaged)).status).toBe(204);
    const outcome = await status(id, 10);
    expect(outcome.state).toBe('rejected');
    expect(outcome.message).toMatch(/authentication|tag|segment/i);
    expect(listener.intake.openedEarly.openedAgain).toBe(againBefore + 1);
    const stored = await database.db
      .selectFrom('transfer_image')
      .select('sop_instance_uid')
      .where('sop_instance_uid', '=', sopInstanceUid)
      .execute();
    expect(stored).toEqual([]);
  });
});
