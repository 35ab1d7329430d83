import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { part10File } from '../../src/dicom/part10.js';
import { createAuthority, issueServerCertificate } from '../../src/tls/certificates.js';
import { DicomWebPacs, FileArchive, PacsRefused, pacsFromUrl, type StoredInstance } from '../../src/pacs/pacs.js';
import { writeSyntheticMammogram } from '../support/mammogram.js';
import { haveOrthanc, startOrthanc, type RunningOrthanc } from '../support/orthanc.js';

const STUDY = '2.25.1234'; // what writeSyntheticMammogram writes
const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function pixelDataOf(file: Buffer): Buffer {
  const parsed = dcmjs.data.DicomMessage.readFile(Uint8Array.from(file).buffer);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict) as { PixelData: ArrayBuffer[] };
  return Buffer.from(ds.PixelData[0]!);
}

async function digestOf(path: string, algorithm: 'sha256' | 'md5'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Rejects with what store threw, so a test can check its class and message. */
async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the store to fail, but it succeeded');
}

/**
 * Writes a large multi-frame Part 10 file (Breast Tomosynthesis Image, Explicit VR Little Endian) with a streaming
 * writer: the header from part10File, then Pixel Data (OW, explicit length) written a frame at a time.
 */
async function writeLargeMultiframe(
  path: string,
  sopInstanceUid: string,
  frames: number,
  side = 2048,
): Promise<number> {
  const sopClassUid = '1.2.840.10008.5.1.4.1.1.13.1.3';
  const header = part10File(
    { sopClassUid, sopInstanceUid, transferSyntaxUid: '1.2.840.10008.1.2.1' },
    {
      SOPClassUID: sopClassUid,
      SOPInstanceUID: sopInstanceUid,
      StudyInstanceUID: STUDY,
      SeriesInstanceUID: '2.25.12346',
      PatientID: '9990000018',
      PatientName: 'SMITH^Ada',
      Modality: 'MG',
      NumberOfFrames: String(frames),
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: side,
      Columns: side,
      BitsAllocated: 16,
      BitsStored: 14,
      HighBit: 13,
      PixelRepresentation: 0,
    },
  );
  const frame = randomBytes(side * side * 2);
  const pixelLength = frame.length * frames;
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(pixelLength, 8);
  const file = await open(path, 'w');
  try {
    await file.write(header);
    await file.write(pixelHeader);
    for (let i = 0; i < frames; i++) {
      frame.writeUInt32LE(i, 0); // each frame a little different
      await file.write(frame);
    }
  } finally {
    await file.close();
  }
  return header.length + pixelHeader.length + pixelLength;
}

describe('FileArchive', () => {
  let dir: string;
  let root: string;
  let source: string;
  const instance: StoredInstance = { sopInstanceUid: '2.25.555001', studyInstanceUid: STUDY };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pacs-archive-'));
    root = join(dir, 'archive');
    source = join(dir, 'in.dcm');
    writeSyntheticMammogram(source, { sopInstanceUid: instance.sopInstanceUid, side: 512 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores a file as root/<StudyInstanceUID>/<SOPInstanceUID>.dcm, bit-exact; storing it again is a no-op', async () => {
    const archive = new FileArchive(root);
    expect(archive.description).toBe(`file archive ${root}`);
    expect(archive.studyLink()).toBeUndefined();
    expect(await archive.has(instance)).toBe(false);
    await archive.store(source, instance);
    const stored = join(root, STUDY, `${instance.sopInstanceUid}.dcm`);
    expect(archive.pathOf(instance)).toBe(stored);
    expect(readFileSync(stored).equals(readFileSync(source))).toBe(true);
    const first = statSync(stored);

    await archive.store(source, instance);
    expect(readdirSync(join(root, STUDY))).toEqual([`${instance.sopInstanceUid}.dcm`]);
    const second = statSync(stored);
    expect(second.ino).toBe(first.ino); // not rewritten
    expect(second.mtimeMs).toBe(first.mtimeMs);
    expect(await archive.has(instance)).toBe(true);
  });

  it('takes concurrent stores of the same instance safely: one whole file, no temporary files left', async () => {
    const archive = new FileArchive(root);
    await Promise.all(Array.from({ length: 8 }, () => archive.store(source, instance)));
    expect(readdirSync(join(root, STUDY))).toEqual([`${instance.sopInstanceUid}.dcm`]);
    expect(readFileSync(archive.pathOf(instance)).equals(readFileSync(source))).toBe(true);
  });

  it('refuses a different file under a SOP Instance UID it holds, and keeps the first', async () => {
    const archive = new FileArchive(root);
    await archive.store(source, instance);
    const other = join(dir, 'other.dcm');
    writeSyntheticMammogram(other, { sopInstanceUid: instance.sopInstanceUid, side: 512 });
    const error = await failureOf(archive.store(other, instance));
    expect(error).toBeInstanceOf(PacsRefused);
    expect(error.message).toMatch(/already holds a different file for SOP Instance UID 2\.25\.555001/);
    expect(readFileSync(archive.pathOf(instance)).equals(readFileSync(source))).toBe(true);

    // Two different files racing: exactly one wins, the other is refused, nothing is half-written.
    const racing = { ...instance, sopInstanceUid: '2.25.555002' };
    const results = await Promise.allSettled([archive.store(source, racing), archive.store(other, racing)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(PacsRefused);
    const held = readFileSync(archive.pathOf(racing));
    expect(held.equals(readFileSync(source)) || held.equals(readFileSync(other))).toBe(true);
  });

  it('does not count a partly written temporary file from a crash, and clears it on the next store', async () => {
    const archive = new FileArchive(root);
    mkdirSync(join(root, STUDY), { recursive: true });
    const host = hostname().replace(/[^A-Za-z0-9-]/g, '-') || 'host';
    const deadPid = spawnSync('true').pid; // a process that has finished
    const sleeper = spawn('sleep', ['30']); // one that is still running: its file may be a store in progress
    try {
      const crashed = join(root, STUDY, `.${instance.sopInstanceUid}.${host}.${deadPid}.0badc0ffee00.tmp`);
      const live = join(root, STUDY, `.${instance.sopInstanceUid}.${host}.${sleeper.pid}.0123456789ab.tmp`);
      writeFileSync(crashed, readFileSync(source).subarray(0, 100_000));
      writeFileSync(live, 'in progress');

      expect(await archive.has(instance)).toBe(false);
      await archive.store(source, instance);
      expect(await archive.has(instance)).toBe(true);
      expect(readFileSync(archive.pathOf(instance)).equals(readFileSync(source))).toBe(true);
      expect(readdirSync(join(root, STUDY)).sort()).toEqual(
        [
          `${instance.sopInstanceUid}.dcm`,
          `.${instance.sopInstanceUid}.${host}.${sleeper.pid}.0123456789ab.tmp`,
        ].sort(),
      );
    } finally {
      sleeper.kill();
    }
  });

  it('refuses UIDs that are not UIDs (they become file names)', async () => {
    const archive = new FileArchive(root);
    for (const bad of [
      { sopInstanceUid: '../../etc/passwd', studyInstanceUid: STUDY },
      { sopInstanceUid: instance.sopInstanceUid, studyInstanceUid: '..' },
      { sopInstanceUid: '', studyInstanceUid: STUDY },
    ]) {
      expect(await failureOf(archive.store(source, bad))).toBeInstanceOf(PacsRefused);
    }
    expect(() => readdirSync(root)).toThrow(); // nothing was created
  });

  it('throws a plain Error when the source file is missing', async () => {
    const error = await failureOf(new FileArchive(root).store(join(dir, 'missing.dcm'), instance));
    expect(error).not.toBeInstanceOf(PacsRefused);
    expect(error.message).toMatch(/ENOENT/);
  });
});

describe('pacsFromUrl', () => {
  it('gives the file archive for an empty or file: URL and a DICOMweb PACS for http(s)', () => {
    expect(pacsFromUrl('', '/var/lib/hub/archive')).toBeInstanceOf(FileArchive);
    expect(pacsFromUrl('file:', '/var/lib/hub/archive').description).toBe('file archive /var/lib/hub/archive');
    expect(pacsFromUrl('file:///srv/pacs', '/var/lib/hub/archive').description).toBe('file archive /srv/pacs');
    const pacs = pacsFromUrl('https://hub:s3cret@pacs.example.nhs.uk/dicom-web/', '/x');
    expect(pacs).toBeInstanceOf(DicomWebPacs);
    expect(pacs.description).toBe('DICOMweb https://pacs.example.nhs.uk/dicom-web');
    expect(pacs.studyLink('1.2.3')).toBe('https://pacs.example.nhs.uk/dicom-web/studies/1.2.3');
    const viewer = pacsFromUrl('http://pacs/dicom-web', '/x', {
      studyLinkTemplate: 'https://viewer.example/?study={StudyInstanceUID}',
    });
    expect(viewer.studyLink('1.2.3')).toBe('https://viewer.example/?study=1.2.3');
    expect(() => pacsFromUrl('ftp://pacs/x', '/x')).toThrow(/Unsupported PACS URL scheme ftp:/);
    expect(() => pacsFromUrl('not a url', '/x')).toThrow(/Not a PACS URL/);
  });
});

describe('DicomWebPacs against a scripted DICOMweb server', () => {
  let dir: string;
  let file: string;
  let server: Server;
  let base: string;
  let handle: (request: IncomingMessage, body: Buffer, response: ServerResponse) => void;
  const requests: { headers: IncomingMessage['headers']; url: string; body: Buffer }[] = [];
  const instance: StoredInstance = { sopInstanceUid: '2.25.666001', studyInstanceUid: STUDY };
  const json = (response: ServerResponse, status: number, dataset: unknown) => {
    response.writeHead(status, { 'Content-Type': 'application/dicom+json' });
    response.end(JSON.stringify(dataset));
  };
  const item = (uid: string, reason?: number) => ({
    '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.1.2'] },
    '00081155': { vr: 'UI', Value: [uid] },
    ...(reason === undefined ? {} : { '00081197': { vr: 'US', Value: [reason] } }),
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pacs-stow-'));
    file = join(dir, 'in.dcm');
    writeSyntheticMammogram(file, { sopInstanceUid: instance.sopInstanceUid, side: 256 });
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const body = Buffer.concat(chunks);
        requests.push({ headers: request.headers, url: request.url ?? '', body });
        handle(request, body, response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/dicom-web`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    requests.length = 0;
  });

  it('POSTs the file as the one part of multipart/related to {base}/studies, with basic auth', async () => {
    handle = (_request, _body, response) =>
      json(response, 200, { '00081199': { vr: 'SQ', Value: [item(instance.sopInstanceUid)] } });
    await new DicomWebPacs({ url: `http://hub:pa%3Ass@${base.slice('http://'.length)}/` }).store(file, instance);
    const [request] = requests;
    expect(request!.url).toBe('/dicom-web/studies');
    const type = request!.headers['content-type']!;
    expect(type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=[\w-]+$/);
    const boundary = /boundary=([\w-]+)/.exec(type)![1]!;
    expect(request!.headers.accept).toBe('application/dicom+json');
    expect(request!.headers.authorization).toBe(`Basic ${Buffer.from('hub:pa:ss').toString('base64')}`);
    expect(request!.headers['content-length']).toBe(String(request!.body.length));
    expect(request!.headers['transfer-encoding']).toBeUndefined();
    const expected = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
      readFileSync(file),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    expect(request!.body.equals(expected)).toBe(true);
  });

  it('sends a bearer token when given one', async () => {
    handle = (_request, _body, response) =>
      json(response, 200, { '00081199': { vr: 'SQ', Value: [item(instance.sopInstanceUid)] } });
    await new DicomWebPacs({ url: base, bearerToken: 'tok3n' }).store(file, instance);
    expect(requests[0]!.headers.authorization).toBe('Bearer tok3n');
  });

  it('counts "already held" failure reasons (0x0111, Azure 0xB00E) as success', async () => {
    for (const reason of [0x0111, 0xb00e]) {
      handle = (_request, _body, response) =>
        json(response, 409, { '00081198': { vr: 'SQ', Value: [item(instance.sopInstanceUid, reason)] } });
      await new DicomWebPacs({ url: base }).store(file, instance);
    }
  });

  it('throws PacsRefused with the HTTP status and Failure Reason when the PACS refuses the instance', async () => {
    handle = (_request, _body, response) =>
      json(response, 409, { '00081198': { vr: 'SQ', Value: [item(instance.sopInstanceUid, 0xa900)] } });
    const error = await failureOf(new DicomWebPacs({ url: base }).store(file, instance));
    expect(error).toBeInstanceOf(PacsRefused);
    expect(error.message).toMatch(
      /refused SOP instance 2\.25\.666001.*HTTP 409 Conflict; Failure Reason 0xA900 \(data set does not match SOP class\)/,
    );
    expect((error as PacsRefused).httpStatus).toBe(409);
    expect((error as PacsRefused).failureReason).toBe(0xa900);

    handle = (_request, _body, response) =>
      json(response, 202, {
        '00081198': { vr: 'SQ', Value: [item(instance.sopInstanceUid, 0xc122)] },
        '00081199': { vr: 'SQ', Value: [item('2.25.1')] },
      });
    const partial = await failureOf(new DicomWebPacs({ url: base }).store(file, instance));
    expect(partial).toBeInstanceOf(PacsRefused);
    expect(partial.message).toMatch(/HTTP 202.*0xC122 \(transfer syntax not supported\)/);

    handle = (_request, _body, response) => json(response, 200, { '00081199': { vr: 'SQ', Value: [item('2.25.1')] } });
    const mismatch = await failureOf(new DicomWebPacs({ url: base }).store(file, instance));
    expect(mismatch).toBeInstanceOf(PacsRefused);
    expect(mismatch.message).toMatch(/it stored 2\.25\.1 instead/);
  });

  it('throws a plain Error for 5xx, auth failures, out of resources and no answer (retry later)', async () => {
    const cases: [number, string, RegExp][] = [
      [503, 'Service Unavailable', /server error \(HTTP 503/],
      [401, 'Unauthorized', /check the PACS URL, credentials.*HTTP 401/],
      [404, 'Not Found', /HTTP 404/],
    ];
    for (const [status, text, message] of cases) {
      handle = (_request, _body, response) => {
        response.writeHead(status, text, { 'Content-Type': 'text/html' });
        response.end(`<html><body><h1>${text}</h1></body></html>`);
      };
      const error = await failureOf(new DicomWebPacs({ url: base }).store(file, instance));
      expect(error).not.toBeInstanceOf(PacsRefused);
      expect(error.message).toMatch(message);
      expect(error.message).toContain(text);
    }
    handle = (_request, _body, response) =>
      json(response, 409, { '00081198': { vr: 'SQ', Value: [item(instance.sopInstanceUid, 0xa700)] } });
    const full = await failureOf(new DicomWebPacs({ url: base }).store(file, instance));
    expect(full).not.toBeInstanceOf(PacsRefused);
    expect(full.message).toMatch(/out of resources/);

    handle = () => undefined; // takes the file, never answers
    const silent = await failureOf(
      new DicomWebPacs({ url: base, idleTimeoutMs: 200, responseTimeoutMs: 300 }).store(file, instance),
    );
    expect(silent).not.toBeInstanceOf(PacsRefused);
    expect(silent.message).toMatch(/no answer within 0\.3 s of sending the file/);
  });
  it('reports the answer of a PACS that refuses a large file before taking it all (413), and stops sending', async () => {
    const big = join(dir, 'big.dcm');
    const size = await writeLargeMultiframe(big, instance.sopInstanceUid, 8, 1024); // 16 MB
    // As nginx does (lingering close): answer as soon as the headers arrive, and drain what the client still sends.
    let received = 0;
    let answered = false;
    const early = createNetServer((socket) => {
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (answered) return;
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        answered = true;
        const text = 'Request body larger than 1 MB';
        socket.write(
          `HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`,
        );
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => early.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(early.address() as { port: number }).port}/dicom-web`;
      const error = await failureOf(new DicomWebPacs({ url }).store(big, instance));
      expect(error).toBeInstanceOf(PacsRefused);
      expect(error.message).toMatch(/HTTP 413 Payload Too Large; Request body larger than 1 MB/);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(received).toBeLessThan(size); // it stopped sending once it had the answer
    } finally {
      early.close();
    }
  });

  it('uses https with a CA it is given, and gives a plain Error for a certificate it cannot trust', async () => {
    const authority = await createAuthority('Test trust CA');
    const certificate = await issueServerCertificate(authority, ['127.0.0.1']);
    const secure = createHttpsServer({ key: certificate.privateKeyPem, cert: certificate.certificatePem }, (q, r) => {
      q.resume();
      q.on('end', () => json(r, 200, { '00081199': { vr: 'SQ', Value: [item(instance.sopInstanceUid)] } }));
    });
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(secure.address() as { port: number }).port}/dicom-web`;
      await new DicomWebPacs({ url, ca: authority.certificatePem }).store(file, instance);
      const untrusted = await failureOf(new DicomWebPacs({ url }).store(file, instance));
      expect(untrusted).not.toBeInstanceOf(PacsRefused);
      expect(untrusted.message).toMatch(/certificate/i);
    } finally {
      secure.closeAllConnections();
      await new Promise((resolve) => secure.close(resolve));
    }
  });
});

const orthancAvailable = haveOrthanc();
const NO_ORTHANC =
  'SKIPPED: Orthanc is not installed (needs /usr/sbin/Orthanc and its DICOMweb plugin: apt-get install orthanc orthanc-dicomweb)';
if (!orthancAvailable) console.warn(`pacs.test.ts: DicomWebPacs against a real Orthanc ${NO_ORTHANC}`);

describe.skipIf(!orthancAvailable)(
  `DicomWebPacs against a real Orthanc${orthancAvailable ? '' : ` (${NO_ORTHANC})`}`,
  () => {
    let orthanc: RunningOrthanc;
    let pacs: DicomWebPacs;
    let dir: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pacs-orthanc-'));
      orthanc = await startOrthanc({ aeTitle: 'SHPACS' });
      console.info(`Orthanc answered ${orthanc.startupMs} ms after it was started`);
      pacs = new DicomWebPacs({ url: orthanc.dicomWebUrl });
    });
    afterAll(async () => {
      await orthanc?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('stores a synthetic mammogram; Orthanc returns the same pixel data, and the same file byte for byte', async () => {
      const file = join(dir, 'mammogram.dcm');
      const instance = { sopInstanceUid: '2.25.777100', studyInstanceUid: STUDY };
      const pixels = writeSyntheticMammogram(file, { sopInstanceUid: instance.sopInstanceUid, side: 512 });
      await pacs.store(file, instance);
      expect(await orthanc.instances()).toEqual([instance.sopInstanceUid]);
      const returned = await orthanc.fileOf(instance.sopInstanceUid);
      expect(sha256(pixelDataOf(returned))).toBe(sha256(pixels));
      // Observed with Orthanc 1.10.1: it keeps the Part 10 file exactly as received (meta header included).
      expect(sha256(returned)).toBe(sha256(readFileSync(file)));
      expect(pacs.studyLink(STUDY)).toBe(`${orthanc.dicomWebUrl}/studies/${STUDY}`);
    });

    it('stores the same instance again without error; Orthanc still holds one copy', async () => {
      const file = join(dir, 'twice.dcm');
      const instance = { sopInstanceUid: '2.25.777200', studyInstanceUid: STUDY };
      writeSyntheticMammogram(file, { sopInstanceUid: instance.sopInstanceUid, side: 256 });
      await pacs.store(file, instance);
      await pacs.store(file, instance);
      const held = (await orthanc.instances()).filter((uid) => uid === instance.sopInstanceUid);
      expect(held).toHaveLength(1);
    });

    it('Orthanc (OverwriteInstances false) answers 200 to a different file under a UID it holds, and keeps the first', async () => {
      const first = join(dir, 'first.dcm');
      const second = join(dir, 'second.dcm');
      const instance = { sopInstanceUid: '2.25.777300', studyInstanceUid: STUDY };
      writeSyntheticMammogram(first, { sopInstanceUid: instance.sopInstanceUid, side: 256 });
      writeSyntheticMammogram(second, { sopInstanceUid: instance.sopInstanceUid, side: 256 });
      await pacs.store(first, instance);
      await pacs.store(second, instance); // no error: the PACS cannot be relied on to report a clash
      expect((await orthanc.fileOf(instance.sopInstanceUid)).equals(readFileSync(first))).toBe(true);
    });

    it('refuses a file that is not DICOM: PacsRefused, HTTP 400', async () => {
      const file = join(dir, 'not-dicom.dcm');
      writeFileSync(file, 'this is a text file, not a mammogram\n');
      const error = await failureOf(pacs.store(file, { sopInstanceUid: '2.25.777400', studyInstanceUid: STUDY }));
      expect(error).toBeInstanceOf(PacsRefused);
      expect((error as PacsRefused).httpStatus).toBe(400);
      expect(error.message).toMatch(
        /refused SOP instance 2\.25\.777400: the PACS refused the file \(HTTP 400 Bad Request/,
      );
      expect(orthanc.log()).toMatch(/STOW-RS cannot parse an incoming DICOM file/);
    });

    it('throws a plain (transient) Error, not PacsRefused, when Orthanc is stopped', async () => {
      const stopped = await startOrthanc();
      const url = stopped.dicomWebUrl;
      await stopped.close();
      const file = join(dir, 'while-down.dcm');
      writeSyntheticMammogram(file, { sopInstanceUid: '2.25.777500', side: 64 });
      const error = await failureOf(
        new DicomWebPacs({ url }).store(file, { sopInstanceUid: '2.25.777500', studyInstanceUid: STUDY }),
      );
      expect(error).not.toBeInstanceOf(PacsRefused);
      expect(error.message).toMatch(/could not connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    });

    it('streams a ~300 MB file: the test process grows by less than 100 MB', { timeout: 300_000 }, async () => {
      const file = join(dir, 'tomo.dcm');
      const instance = { sopInstanceUid: '2.25.777600', studyInstanceUid: STUDY };
      const bytes = await writeLargeMultiframe(file, instance.sopInstanceUid, 36);
      expect(bytes).toBeGreaterThan(300_000_000);
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      const started = Date.now();
      try {
        await pacs.store(file, instance);
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      const growth = peak - before;
      console.info(
        `stored ${(bytes / 1e6).toFixed(0)} MB in ${Date.now() - started} ms; RSS grew ${(growth / 1e6).toFixed(1)} MB`,
      );
      expect(growth).toBeLessThan(100 * 1024 * 1024);
      const id = await orthanc.orthancIdOf(instance.sopInstanceUid);
      expect(id).toBeDefined();
      expect(await orthanc.rest(`/instances/${id}/attachments/dicom/md5`)).toBe(await digestOf(file, 'md5'));
      rmSync(file);
    });
  },
);
