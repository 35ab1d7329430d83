import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjsDimse from 'dcmjs-dimse';
import { afterEach, describe, expect, it } from 'vitest';
import { ImageStore } from '../../src/gateway/image-store.js';
import type { ImageState } from '../../src/gateway/outbox.js';
import {
  COMMITMENT_STATUS,
  FAILURE_REASON,
  outboxImageSource,
  parseCommitmentPeers,
  ReceivedImages,
  STORAGE_COMMITMENT_SOP_CLASS,
  StorageCommitment,
  type CommitmentPeers,
  type SopReference,
} from '../../src/gateway/storage-commitment.js';
import { MAMMOGRAPHY_STORAGE, startWorklistScp, type WorklistScp } from '../../src/gateway/worklist-scp.js';
import { readReport, requestCommitment, type Report } from '../support/commitment-modality.js';
import { freePort, haveDcmtk } from '../support/dcmtk.js';
import { MG_FOR_PRESENTATION, writeSyntheticMammogram } from '../support/mammogram.js';

const { Scp, Server } = dcmjsDimse;
const { NEventReportResponse } = dcmjsDimse.responses;
const { Status, PresentationContextResult, TransferSyntax } = dcmjsDimse.constants;
const run = promisify(execFile);
dcmjsDimse.log.setLevel('silent');

const GATEWAY_AE = 'SHGATEWAY';
const MAMMO = 'MAMMO1';
const TOMO = '1.2.840.10008.5.1.4.1.1.13.1.3';
const image = (n: number, sopClassUid = MG_FOR_PRESENTATION): SopReference => ({
  sopClassUid,
  sopInstanceUid: `2.25.4242${n}`,
});

/** The mammography machine's own DICOM listener (dcmjs-dimse Server), where reports on a new association arrive. */
function startModalityScp(port: number, answer = Status.Success) {
  const reports: Report[] = [];
  class ModalityScp extends Scp {
    private roles: Report['roles'];
    private calling = '';
    private called = '';

    override associationRequested(association: dcmjsDimse.association.Association): void {
      this.calling = association.getCallingAeTitle().trim();
      this.called = association.getCalledAeTitle().trim();
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        if (context.getAbstractSyntaxUid() !== STORAGE_COMMITMENT_SOP_CLASS) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        this.roles = { scu: context.getUserRole(), scp: context.getProviderRole() };
        context.setResult(PresentationContextResult.Accept, TransferSyntax.ImplicitVRLittleEndian);
      }
      this.sendAssociationAccept();
    }

    override nEventReportRequest(
      request: dcmjsDimse.requests.NEventReportRequest,
      callback: (response: dcmjsDimse.responses.NEventReportResponse) => void,
    ): void {
      reports.push({
        ...readReport(request, 'new association'),
        roles: this.roles,
        calling: this.calling,
        called: this.called,
      });
      const response = NEventReportResponse.fromRequest(request);
      response.setStatus(answer);
      callback(response);
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override abort(): void {
      (this as unknown as { socket: { destroy(): void } }).socket.destroy();
    }
  }
  const server = new Server(ModalityScp);
  server.listen(port);
  return { reports, close: () => server.close() };
}

/** The outbox as the commitment service sees it, driven by hand. */
class FakeOutbox {
  readonly events = new EventEmitter();
  private readonly states = new Map<string, ImageState>();

  stateOf(sop: string): ImageState | undefined {
    return this.states.get(sop);
  }

  set(reference: SopReference, state: ImageState | undefined): void {
    if (state) this.states.set(reference.sopInstanceUid, state);
    else this.states.delete(reference.sopInstanceUid);
    this.events.emit('changed');
    if (state === 'in_pacs') this.events.emit('stored', reference.sopInstanceUid);
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Gateway {
  dir: string;
  port: number;
  outbox: FakeOutbox;
  received: ReceivedImages;
  commitment: StorageCommitment;
  scp: WorklistScp;
  logs: string[];
  close(): Promise<void>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The gateway's DICOM side with Storage Commitment, the outbox faked: the images' states are set by each test. */
async function startGatewaySide(
  options: {
    dir?: string;
    peers?: CommitmentPeers;
    unknownGraceMs?: number;
    received?: ReceivedImages;
    outbox?: FakeOutbox;
    images?: ImageStore;
  } = {},
): Promise<Gateway> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'commitment-'));
  if (!options.dir) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const outbox = options.outbox ?? new FakeOutbox();
  const received = options.received ?? new ReceivedImages();
  const logs: string[] = [];
  const log = (level: string, message: string) => logs.push(`${level}: ${message}`);
  const commitment = new StorageCommitment({
    dataDir: dir,
    aeTitle: GATEWAY_AE,
    peers: options.peers ?? {},
    images: outboxImageSource(outbox, received, MAMMOGRAPHY_STORAGE),
    log,
    unknownGraceMs: options.unknownGraceMs ?? 60_000,
    retryMs: 200,
    maxRetryMs: 400,
    responseTimeoutMs: 3000,
    associationTimeoutMs: 5000,
    tickMs: 50,
  });
  const scp = startWorklistScp({
    port,
    aeTitle: GATEWAY_AE,
    allowedCallingAeTitles: [MAMMO],
    worklist: () => [],
    commitment,
    ...(options.images ? { images: options.images, onImage: (i) => received.add(i) } : {}),
    log,
  });
  // dcmjs-dimse logs connection errors (an unreachable modality is expected here) at error level.
  dcmjsDimse.log.setLevel('silent');
  await sleep(100);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    scp.close();
    await commitment.close();
  };
  cleanups.push(close);
  return { dir, port, outbox, received, commitment, scp, logs, close };
}

async function modalityAt(): Promise<{ port: number; peers: CommitmentPeers }> {
  const port = await freePort();
  return { port, peers: { [MAMMO]: { host: '127.0.0.1', port } } };
}

describe('Storage Commitment Push Model SCP (PS3.4 J), dcmjs-dimse as the modality', () => {
  it('answers Success at once, reports nothing while images are on their way, then event type 1 on a new association', async () => {
    const modality = await modalityAt();
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const gw = await startGatewaySide({ peers: modality.peers });
    const images = [image(1), image(2), image(3, TOMO)];
    for (const i of images) gw.outbox.set(i, 'sending');

    const answer = await requestCommitment(gw.port, '2.25.9001', images);
    expect(answer.status).toBe(Status.Success);
    expect(answer.reports).toEqual([]);
    // Journalled (fsynced) before the answer.
    const journal = readFileSync(join(gw.dir, 'storage-commitment.jsonl'), 'utf8');
    expect(journal).toContain('2.25.9001');
    expect(gw.commitment.pending()).toHaveLength(1);

    gw.outbox.set(images[0]!, 'in_pacs');
    gw.outbox.set(images[1]!, 'at_hub');
    await sleep(500);
    expect(machine.reports).toEqual([]);

    gw.outbox.set(images[1]!, 'in_pacs');
    gw.outbox.set(images[2]!, 'in_pacs');
    await until(() => machine.reports.length === 1, 'the report');
    expect(machine.reports[0]).toEqual({
      eventType: 1,
      transactionUid: '2.25.9001',
      committed: images.map((i) => i.sopInstanceUid),
      failed: [],
      via: 'new association',
      // PS3.4 J.3.3: the gateway, opening the association as SCP, proposes the SCP role.
      roles: { scu: false, scp: true },
      calling: GATEWAY_AE,
      called: MAMMO,
    });
    await until(() => gw.commitment.pending().length === 0, 'the request to be done');
    // Nothing pending: the journal is gone; and nothing is sent twice.
    expect(existsSync(join(gw.dir, 'storage-commitment.jsonl'))).toBe(false);
    await sleep(300);
    expect(machine.reports).toHaveLength(1);
    expect(gw.logs.join('\n')).toContain('Storage commitment 2.25.9001 reported to MAMMO1');
  });

  it('reports on the request’s own association while the modality keeps it open', async () => {
    const gw = await startGatewaySide();
    const images = [image(11), image(12)];
    gw.outbox.set(images[0]!, 'in_pacs');
    gw.outbox.set(images[1]!, 'at_hub');
    const asked = requestCommitment(gw.port, '2.25.9011', images, { lingerMs: 2500 });
    await sleep(600);
    gw.outbox.set(images[1]!, 'in_pacs');
    const answer = await asked;
    expect(answer.status).toBe(Status.Success);
    expect(answer.reports).toEqual([
      {
        eventType: 1,
        transactionUid: '2.25.9011',
        committed: images.map((i) => i.sopInstanceUid),
        failed: [],
        via: 'own association',
      },
    ]);
    await until(() => gw.commitment.pending().length === 0, 'the request to be done');
  });

  it('sends the report on a new association when the modality leaves it unanswered on its own', async () => {
    const modality = await modalityAt();
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const gw = await startGatewaySide({ peers: modality.peers });
    const images = [image(16)];
    gw.outbox.set(images[0]!, 'in_pacs');
    const answer = await requestCommitment(gw.port, '2.25.9016', images, { lingerMs: 1000, answerReports: false });
    expect(answer.reports).toHaveLength(1);
    await until(() => machine.reports.length === 1, 'the report on a new association');
    expect(machine.reports[0]).toMatchObject({ eventType: 1, transactionUid: '2.25.9016', via: 'new association' });
    expect(gw.logs.join('\n')).toMatch(/association not answered \(the association ended\): sending it another way/);
  });

  it('reports event type 2 with the failure reasons: damaged 0110, never received 0112, wrong class 0119, unsupported class 0122', async () => {
    const modality = await modalityAt();
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const received = new ReceivedImages([
      { sopInstanceUid: image(23).sopInstanceUid, sopClassUid: MG_FOR_PRESENTATION },
      { sopInstanceUid: image(25).sopInstanceUid, sopClassUid: TOMO },
    ]);
    const gw = await startGatewaySide({ peers: modality.peers, unknownGraceMs: 800, received });
    const inPacs = image(21);
    const damaged = image(22);
    // Received long ago and confirmed in the PACS: the outbox no longer knows it, received.jsonl does.
    const forgotten = image(23);
    const neverReceived = image(24);
    const wrongClass = image(25); // received as tomosynthesis, named as a 2D mammogram
    const unsupported = image(26, '1.2.840.10008.5.1.4.1.1.88.67'); // an X-Ray Radiation Dose SR
    gw.outbox.set(inPacs, 'in_pacs');
    gw.outbox.set(damaged, 'damaged');
    const all = [inPacs, damaged, forgotten, neverReceived, wrongClass, unsupported];
    const started = Date.now();
    const answer = await requestCommitment(gw.port, '2.25.9021', all);
    expect(answer.status).toBe(Status.Success);
    await until(() => machine.reports.length === 1, 'the report');
    // The image never received may still have been arriving: reported missing only after the grace period.
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(machine.reports[0]).toMatchObject({
      eventType: 2,
      transactionUid: '2.25.9021',
      committed: [inPacs.sopInstanceUid, forgotten.sopInstanceUid],
      failed: [
        { sop: damaged.sopInstanceUid, reason: FAILURE_REASON.processingFailure },
        { sop: neverReceived.sopInstanceUid, reason: FAILURE_REASON.noSuchObjectInstance },
        { sop: wrongClass.sopInstanceUid, reason: FAILURE_REASON.classInstanceConflict },
        { sop: unsupported.sopInstanceUid, reason: FAILURE_REASON.referencedSopClassNotSupported },
      ],
    });
    expect(gw.logs.join('\n')).toMatch(/image 2\.25\.424222 cannot be committed \(damaged on the gateway/);
  });

  it('waits for an image still arriving rather than reporting it missing', async () => {
    const modality = await modalityAt();
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const gw = await startGatewaySide({ peers: modality.peers, unknownGraceMs: 1500 });
    const late = image(31);
    await requestCommitment(gw.port, '2.25.9031', [late]);
    await sleep(300);
    // Received after the request (another association), then sent on.
    gw.received.add(late);
    gw.outbox.set(late, 'received');
    await sleep(1500);
    expect(machine.reports).toEqual([]);
    gw.outbox.set(late, 'in_pacs');
    await until(() => machine.reports.length === 1, 'the report');
    expect(machine.reports[0]).toMatchObject({ eventType: 1, committed: [late.sopInstanceUid] });
  });

  it('refuses malformed requests with the PS3.4 J.3.2 / PS3.7 C statuses, recording nothing', async () => {
    const gw = await startGatewaySide();
    const images = [image(41)];
    const noTransaction = await requestCommitment(gw.port, undefined, images);
    expect(noTransaction.status).toBe(COMMITMENT_STATUS.invalidArgumentValue);
    expect(noTransaction.errorComment).toMatch(/Transaction UID/);
    const empty = await requestCommitment(gw.port, '2.25.9041', []);
    expect(empty.status).toBe(0x0115);
    expect(empty.errorComment).toMatch(/Referenced SOP Sequence/);
    const noInstance = await requestCommitment(gw.port, '2.25.9042', [], {
      dataset: { TransactionUID: '2.25.9042', ReferencedSOPSequence: [{ ReferencedSOPClassUID: MG_FOR_PRESENTATION }] },
    });
    expect(noInstance.status).toBe(0x0115);
    const badUid = await requestCommitment(gw.port, 'not-a-uid', images);
    expect(badUid.status).toBe(0x0115);
    const action = await requestCommitment(gw.port, '2.25.9043', images, { actionTypeId: 2 });
    expect(action.status).toBe(COMMITMENT_STATUS.noSuchActionType);
    const instance = await requestCommitment(gw.port, '2.25.9044', images, { sopInstanceUid: '2.25.1' });
    expect(instance.status).toBe(COMMITMENT_STATUS.noSuchSopInstance);
    // A modality not configured does not get an association at all.
    const stranger = await requestCommitment(gw.port, '2.25.9045', images, { callingAe: 'STRANGER' });
    expect(stranger.rejected).toBe(true);
    expect(stranger.status).toBeUndefined();
    expect(gw.commitment.pending()).toEqual([]);
    expect(existsSync(join(gw.dir, 'storage-commitment.jsonl'))).toBe(false);
    expect(gw.logs.filter((l) => l.includes('Storage commitment request from MAMMO1 refused'))).toHaveLength(6);
  });

  it('takes the same request twice as one; another request reusing its Transaction UID fails 0131', async () => {
    const modality = await modalityAt();
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const gw = await startGatewaySide({ peers: modality.peers });
    const images = [image(51), image(52)];
    for (const i of images) gw.outbox.set(i, 'sealed');
    expect((await requestCommitment(gw.port, '2.25.9051', images)).status).toBe(Status.Success);
    expect((await requestCommitment(gw.port, '2.25.9051', images)).status).toBe(Status.Success);
    expect(gw.commitment.pending()).toHaveLength(1);
    // Its outcome is known at once: it may go on its own association, before the modality releases it.
    const duplicate = await requestCommitment(gw.port, '2.25.9051', [image(53)], { lingerMs: 1000 });
    expect(duplicate.status).toBe(Status.Success);
    expect(duplicate.reports).toEqual([
      {
        eventType: 2,
        transactionUid: '2.25.9051',
        committed: [],
        failed: [{ sop: image(53).sopInstanceUid, reason: FAILURE_REASON.duplicateTransactionUid }],
        via: 'own association',
      },
    ]);
    for (const i of images) gw.outbox.set(i, 'in_pacs');
    await until(() => machine.reports.length === 1, 'the first request’s report');
    expect(machine.reports[0]).toMatchObject({ eventType: 1, committed: images.map((i) => i.sopInstanceUid) });
  });

  it('keeps trying a modality it cannot reach, and reports once it is listening', async () => {
    const modality = await modalityAt();
    const gw = await startGatewaySide({ peers: modality.peers });
    const images = [image(61)];
    gw.outbox.set(images[0]!, 'sending');
    expect((await requestCommitment(gw.port, '2.25.9061', images)).status).toBe(Status.Success);
    // In the PACS once the modality has released its association: the report needs a new one.
    gw.outbox.set(images[0]!, 'in_pacs');
    await until(() => gw.logs.filter((l) => l.includes('not delivered to MAMMO1')).length >= 2, 'two failed attempts');
    expect(gw.commitment.pending()).toHaveLength(1);
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    await until(() => machine.reports.length === 1, 'the report once the modality listens');
    expect(machine.reports[0]).toMatchObject({ eventType: 1, transactionUid: '2.25.9061' });
    await until(() => gw.commitment.pending().length === 0, 'the request to be done');
  });

  it('still reports a request after a restart, with what it had learnt of its images before', async () => {
    const modality = await modalityAt();
    const dir = mkdtempSync(join(tmpdir(), 'commitment-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const images = [image(71), image(72), image(73)];
    const before = await startGatewaySide({ dir, peers: modality.peers });
    before.outbox.set(images[0]!, 'in_pacs');
    before.outbox.set(images[1]!, 'damaged');
    before.outbox.set(images[2]!, 'sending');
    expect((await requestCommitment(before.port, '2.25.9071', images)).status).toBe(Status.Success);
    await until(() => readFileSync(join(dir, 'storage-commitment.jsonl'), 'utf8').includes('resolved'), 'resolution');
    await before.close();

    // After the restart the outbox has forgotten the first image (confirmed long ago) and not the others.
    const outbox = new FakeOutbox();
    outbox.set(images[2]!, 'at_hub');
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const after = await startGatewaySide({ dir, peers: modality.peers, outbox });
    expect(after.commitment.pending().map((t) => t.transactionUid)).toEqual(['2.25.9071']);
    expect(after.logs.join('\n')).toContain('1 request(s) from before the restart');
    await sleep(400);
    expect(machine.reports).toEqual([]);
    outbox.set(images[2]!, 'in_pacs');
    await until(() => machine.reports.length === 1, 'the report after the restart');
    expect(machine.reports[0]).toMatchObject({
      eventType: 2,
      transactionUid: '2.25.9071',
      committed: [images[0]!.sopInstanceUid, images[2]!.sopInstanceUid],
      failed: [{ sop: images[1]!.sopInstanceUid, reason: FAILURE_REASON.processingFailure }],
    });
    // Reported (once the modality's answer is in): a third start has nothing to send.
    await until(() => after.commitment.pending().length === 0, 'the request to be done');
    await after.close();
    const third = await startGatewaySide({ dir, peers: modality.peers });
    expect(third.commitment.pending()).toEqual([]);
  });

  it('reads --commitment-peer values', () => {
    expect(parseCommitmentPeers(['MAMMO1@10.0.0.5:104', 'MAMMO2@mammo2.local:11112,MAMMO3@[fd00::5]:104'])).toEqual({
      MAMMO1: { host: '10.0.0.5', port: 104 },
      MAMMO2: { host: 'mammo2.local', port: 11112 },
      MAMMO3: { host: 'fd00::5', port: 104 },
    });
    expect(parseCommitmentPeers(undefined)).toEqual({});
    expect(() => parseCommitmentPeers('MAMMO1@10.0.0.5')).toThrow(/AE@host:port/);
    expect(() => parseCommitmentPeers('MAMMO1@10.0.0.5:70000')).toThrow(/AE@host:port/);
  });
});

async function storescu(port: number, file: string) {
  const { stdout, stderr } = await run(
    'storescu',
    ['-v', '-aet', MAMMO, '-aec', GATEWAY_AE, '127.0.0.1', String(port), file],
    { timeout: 20_000 },
  );
  return stdout + stderr;
}

describe.skipIf(!haveDcmtk)('Storage Commitment after DCMTK storescu stores the images', () => {
  it('commits images received over C-STORE once the outbox has them in the PACS, or has forgotten them', async () => {
    const modality = await modalityAt();
    const machine = startModalityScp(modality.port);
    cleanups.push(() => machine.close());
    const dir = mkdtempSync(join(tmpdir(), 'commitment-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = new ImageStore(join(dir, 'gateway'), 1024 * 1024);
    const received = new ReceivedImages(ImageStore.readIndex(join(dir, 'gateway')));
    const gw = await startGatewaySide({ dir: join(dir, 'gateway'), peers: modality.peers, images: store, received });
    const images = [image(81), image(82)];
    for (const [i, reference] of images.entries()) {
      const file = join(dir, `in-${i}.dcm`);
      writeSyntheticMammogram(file, { sopInstanceUid: reference.sopInstanceUid, side: 64 });
      expect(await storescu(gw.port, file)).toMatch(/Received Store Response \(Success\)/);
    }
    expect(received.sopClassOf(images[0]!.sopInstanceUid)).toBe(MG_FOR_PRESENTATION);
    gw.outbox.set(images[0]!, 'sending');
    expect((await requestCommitment(gw.port, '2.25.9081', images)).status).toBe(Status.Success);
    await sleep(300);
    expect(machine.reports).toEqual([]);
    // The second image is not in the (fake) outbox at all: received, and no longer held, so in the PACS.
    gw.outbox.set(images[0]!, 'in_pacs');
    await until(() => machine.reports.length === 1, 'the report');
    expect(machine.reports[0]).toMatchObject({
      eventType: 1,
      committed: images.map((i) => i.sopInstanceUid),
    });
  });
});
