import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReceivedImage } from '../../../src/gateway/image-store.js';
import { Outbox } from '../../../src/gateway/outbox.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function received(dir: string, sop: string, accession: string, at: string): ReceivedImage {
  mkdirSync(join(dir, 'images'), { recursive: true });
  const file = join(dir, 'images', `${sop}.dcm`);
  writeFileSync(file, 'image bytes');
  return {
    sopInstanceUid: sop,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.2',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    accessionNumber: accession,
    patientId: '9990000018',
    studyInstanceUid: '2.25.1',
    bytes: 1000,
    receivedAt: at,
    file,
  };
}

const quiet = () => undefined;

describe('gateway outbox journal', () => {
  it('takes up after a restart where it stopped: sealed, uploading, stored and damaged images', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    dirs.push(dir);
    const images = [
      received(dir, '2.25.1', 'A1', '2026-11-23T09:00:00Z'),
      received(dir, '2.25.2', 'A1', '2026-11-23T09:00:01Z'),
      received(dir, '2.25.3', 'A2', '2026-11-23T09:10:00Z'),
    ];
    const first = new Outbox(dir, images, () => 'routine', quiet);
    const [one, two] = [first.nextToSeal()!, first.all()[1]!];
    expect(one.sopInstanceUid).toBe('2.25.1');
    writeFileSync(first.packagePath('p1'), 'sealed');
    first.sealed(one, 'p1', 6, 'jpeg-ls');
    expect(existsSync(images[0]!.file)).toBe(false); // the plaintext goes once the package is durable
    expect(first.uploadFor(one)).toBe('p1');
    first.uploaded(one);
    writeFileSync(first.packagePath('p2'), 'sealed');
    first.sealed(two, 'p2', 6, 'jpeg-ls');
    // A package being sealed when the power went: left as .part.
    writeFileSync(join(first.dir, 'p3.pkg.part'), 'half');

    const second = new Outbox(dir, images, () => 'routine', quiet);
    expect(second.stateOf('2.25.1')).toBe('at_hub');
    expect(second.stateOf('2.25.2')).toBe('sealed');
    expect(second.stateOf('2.25.3')).toBe('received');
    expect(readdirSync(second.dir).sort()).toEqual(['p1.pkg', 'p2.pkg']);
    const again = second.all().find((i) => i.sopInstanceUid === '2.25.1')!;
    expect(again.uploadId).toBe('p1');
    second.stored(again);
    expect(existsSync(second.packagePath('p1'))).toBe(false);

    const third = new Outbox(dir, images, () => 'routine', quiet);
    expect(third.stateOf('2.25.1')).toBe('in_pacs');
    expect(third.waiting().map((i) => i.sopInstanceUid)).toEqual(['2.25.2', '2.25.3']);
  });

  it('sends a rejected package again under a new upload, and marks it damaged the second time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(dir, [received(dir, '2.25.9', 'A9', '2026-11-23T09:00:00Z')], () => 'routine', quiet);
    const item = outbox.nextToSeal()!;
    writeFileSync(outbox.packagePath('p9'), 'sealed');
    outbox.sealed(item, 'p9', 6, 'jpeg-ls');
    expect(outbox.uploadFor(item)).toBe('p9');
    outbox.rejected(item, 'Segment 0 failed authentication');
    expect(outbox.stateOf('2.25.9')).toBe('sealed');
    const second = outbox.uploadFor(item);
    expect(second).not.toBe('p9');
    outbox.rejected(item, 'Segment 0 failed authentication');
    expect(outbox.stateOf('2.25.9')).toBe('damaged');
    expect(existsSync(outbox.packagePath('p9'))).toBe(false);
    const reopened = new Outbox(dir, [], () => 'routine', quiet);
    expect(reopened.stateOf('2.25.9')).toBeUndefined(); // not in the index given: not this box's image
  });

  it('marks an image damaged after a restart when its received file has gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    dirs.push(dir);
    const image = received(dir, '2.25.7', 'A7', '2026-11-23T09:00:00Z');
    rmSync(image.file);
    const outbox = new Outbox(dir, [image], () => 'routine', quiet);
    expect(outbox.stateOf('2.25.7')).toBe('damaged');
    expect(outbox.all()[0]!.message).toMatch(/missing/);
  });

  it('orders urgent exams first, whatever their arrival', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(
      dir,
      [received(dir, '2.25.1', 'R1', '2026-11-23T09:00:00Z'), received(dir, '2.25.2', 'U1', '2026-11-23T10:00:00Z')],
      (accession) => (accession.startsWith('U') ? 'urgent' : 'routine'),
      quiet,
    );
    expect(outbox.nextToSeal()!.sopInstanceUid).toBe('2.25.2');
  });
});

describe('an image sent again from the machine after it was damaged', () => {
  it('starts afresh, and stays so after a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-'));
    dirs.push(dir);
    const first = received(dir, '2.25.5', 'A5', '2026-11-23T09:00:00Z');
    const outbox = new Outbox(dir, [first], () => 'routine', quiet);
    outbox.damaged(outbox.nextToSeal()!, 'Could not be sealed: unreadable');
    const again = received(dir, '2.25.5', 'A5', '2026-11-23T09:30:00Z');
    outbox.add(again);
    expect(outbox.stateOf('2.25.5')).toBe('received');
    expect(existsSync(again.file)).toBe(true);
    const reopened = new Outbox(dir, [first, again], () => 'routine', quiet);
    expect(reopened.stateOf('2.25.5')).toBe('received');
  });
});
