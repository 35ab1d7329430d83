import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ImageStore, type ReceivedImage } from '../../../src/gateway/image-store.js';

const image = (sopInstanceUid: string, accessionNumber: string, patientId = '9990000018'): ReceivedImage => ({
  sopInstanceUid,
  sopClassUid: '1.2.840.10008.5.1.4.1.1.1.2',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
  accessionNumber,
  patientId,
  studyInstanceUid: '2.25.1',
  bytes: 1000,
  receivedAt: '2026-11-23T09:40:00.000Z',
  file: `/images/${sopInstanceUid}.dcm`,
});

describe('the gateway image index', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'images-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('counts the different images held for an appointment, across a restart', () => {
    const d = dir();
    const store = new ImageStore(d, 0);
    store.record(image('2.25.1', 'SH00000001'));
    store.record(image('2.25.2', 'SH00000001'));
    store.record(image('2.25.2', 'SH00000001')); // sent again after a lost response
    store.record(image('2.25.3', 'SH00000002', '9990000026'));
    store.record(image('2.25.4', '', '9990000018')); // no accession number: counted by Patient ID
    expect(store.countFor('SH00000001', '9990000018')).toBe(3);
    expect(store.countFor('SH00000002', '9990000026')).toBe(1);
    expect(store.countFor('SH00000003', '9990000034')).toBe(0);
    expect(new ImageStore(d, 0).countFor('SH00000001', '9990000018')).toBe(3);
  });

  it('cuts off a torn last index line on start, so the next image is indexed readably', () => {
    const d = dir();
    new ImageStore(d, 0).record(image('2.25.1', 'SH00000001'));
    appendFileSync(join(d, 'received.jsonl'), '{"sopInstanceUid":"2.25.');
    const store = new ImageStore(d, 0);
    store.record(image('2.25.2', 'SH00000001'));
    const lines = readFileSync(join(d, 'received.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as ReceivedImage).sopInstanceUid)).toEqual(['2.25.1', '2.25.2']);
  });
});
