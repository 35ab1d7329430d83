import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ProcedureStepRefused,
  ProcedureStepStore,
  type NewProcedureStep,
} from '../../../src/gateway/procedure-steps.js';

const step = (sopInstanceUid: string): NewProcedureStep => ({
  sopInstanceUid,
  accessionNumber: 'SH00000001',
  requestedProcedureId: 'SH00000001',
  scheduledProcedureStepId: 'SH00000001',
  studyInstanceUid: '2.25.1',
  patientId: '9990000018',
  startDate: '20261123',
  startTime: '093000',
  imageCount: 0,
  modality: 'MAMMO1',
});

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (error) {
    return error instanceof ProcedureStepRefused ? error.code : error;
  }
  return undefined;
};

describe('the gateway procedure step journal', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'steps-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('keeps PS3.4 F.7.2 rules: no duplicate, no change to an unknown or ended step', () => {
    const store = new ProcedureStepStore(dir());
    store.begin(step('2.25.1'));
    expect(refusal(() => store.begin(step('2.25.1')))).toBe('duplicate');
    expect(refusal(() => store.change('2.25.2', { status: 'COMPLETED' }))).toBe('unknown');
    expect(store.change('2.25.1', { imageCount: 2 })).toMatchObject({ status: 'IN PROGRESS', imageCount: 2 });
    expect(store.change('2.25.1', { status: 'DISCONTINUED', reason: 'Equipment failure' })).toMatchObject({
      status: 'DISCONTINUED',
      imageCount: 2,
      reason: 'Equipment failure',
    });
    expect(refusal(() => store.change('2.25.1', { status: 'COMPLETED' }))).toBe('ended');
  });

  it('reads its state back after a restart, the last line of each step winning', () => {
    const d = dir();
    const first = new ProcedureStepStore(d);
    first.begin(step('2.25.1'));
    first.begin(step('2.25.2'));
    first.change('2.25.1', { status: 'COMPLETED', imageCount: 4 });
    const second = new ProcedureStepStore(d);
    expect(second.get('2.25.1')).toMatchObject({ status: 'COMPLETED', imageCount: 4 });
    expect(second.get('2.25.2')).toMatchObject({ status: 'IN PROGRESS' });
    expect(second.damagedLines).toBe(0);
    expect(statSync(second.file).mode & 0o777).toBe(0o600);
  });

  it('cuts off a torn last line (a power cut mid-write) so that the next change is readable', () => {
    const d = dir();
    const first = new ProcedureStepStore(d);
    first.begin(step('2.25.1'));
    appendFileSync(first.file, '{"sopInstanceUid":"2.25.9","status":"IN PR');
    const logged: string[] = [];
    const second = new ProcedureStepStore(d, (_level, message) => logged.push(message));
    expect(second.damagedLines).toBe(0);
    expect(logged).toEqual([]);
    expect(second.get('2.25.9')).toBeUndefined();
    second.change('2.25.1', { status: 'COMPLETED' });
    expect(readFileSync(second.file, 'utf8').endsWith('"}\n')).toBe(true);
    expect(new ProcedureStepStore(d).get('2.25.1')).toMatchObject({ status: 'COMPLETED' });
  });

  it('skips and reports a damaged line in the middle rather than refusing to start', () => {
    const d = dir();
    const first = new ProcedureStepStore(d);
    first.begin(step('2.25.1'));
    appendFileSync(first.file, 'not json\n{"sopInstanceUid":"2.25.3","status":"PAUSED","imageCount":0}\n');
    first.begin(step('2.25.2'));
    const logged: string[] = [];
    const second = new ProcedureStepStore(d, (_level, message) => logged.push(message));
    expect(second.damagedLines).toBe(2);
    expect(logged[0]).toMatch(/2 damaged line\(s\) skipped/);
    expect(second.all().map((s) => s.sopInstanceUid)).toEqual(['2.25.1', '2.25.2']);
  });
});
