import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorklistEntry } from '../../../src/dicom/worklist-item.js';
import { WorklistCopy } from '../../../src/gateway/worklist-copy.js';

const entry = (clinicDate: string, nhsNumber: string): WorklistEntry => ({
  appointmentId: '00000000-0000-4000-8000-000000000001',
  participantId: '00000000-0000-4000-9000-000000000001',
  status: 'scheduled',
  accessionNumber: 'SH00000001',
  nhsNumber,
  givenName: 'Ada',
  familyName: 'Smith',
  dateOfBirth: '1960-02-29',
  sex: 'female',
  clinicDate,
  startTime: '09:00',
  stationAeTitle: 'MOBILE1',
  locationName: 'Car park',
  adjustments: [],
});

describe('the gateway worklist copy', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'copy-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('survives a restart, keeps its key private, and purges clinic days that have passed', () => {
    const d = dir();
    const copy = new WorklistCopy(d);
    copy.replace(
      {
        unitId: 'mobile-1',
        fetchedAt: '2026-11-23T07:00:00Z',
        entries: [entry('2026-11-23', '9990000018'), entry('2026-11-24', '9990000026')],
      },
      '2026-11-23',
    );
    expect(statSync(join(d, 'worklist.key')).mode & 0o077).toBe(0);
    const again = new WorklistCopy(d);
    expect(again.current()?.entries.map((e) => e.nhsNumber)).toEqual(['9990000018', '9990000026']);
    again.purgeBefore('2026-11-24');
    expect(new WorklistCopy(d).current()?.entries.map((e) => e.nhsNumber)).toEqual(['9990000026']);
    expect(readFileSync(join(d, 'worklist.enc')).includes(Buffer.from('9990000026'))).toBe(false);
  });

  it('sets aside a copy that was tampered with, says so, and starts empty rather than failing to start', () => {
    const d = dir();
    new WorklistCopy(d).replace(
      { unitId: 'mobile-1', fetchedAt: '2026-11-23T07:00:00Z', entries: [entry('2026-11-23', '9990000018')] },
      '2026-11-23',
    );
    const file = join(d, 'worklist.enc');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(file, bytes);
    const problems: string[] = [];
    const copy = new WorklistCopy(d, (_level, message) => problems.push(message));
    expect(copy.current()).toBeUndefined();
    expect(problems[0]).toMatch(/Worklist copy could not be read .*moved to .*worklist\.enc\.unreadable-\d+/);
    expect(readdirSync(d).some((f) => f.startsWith('worklist.enc.unreadable-'))).toBe(true);
  });
});
