import { describe, expect, it } from 'vitest';
import type { WorklistEntry } from '../../../src/dicom/worklist-item.js';
import { nameBasedUuid, procedureStepChange, withTrailerChanges } from '../../../src/gateway/trailer-changes.js';
import type { GatewayChange } from '../../../src/protocol/gateway-changes.js';

const entry = (n: number): WorklistEntry => ({
  appointmentId: `00000000-0000-4000-8000-00000000000${n}`,
  participantId: `00000000-0000-4000-9000-00000000000${n}`,
  status: 'scheduled',
  accessionNumber: `SH0000000${n}`,
  nhsNumber: ['9990000018', '9990000026', '9990000034'][n - 1]!,
  givenName: ['Ada', 'Bea', 'Cat'][n - 1]!,
  familyName: ['Smith', 'Jones', 'Brown'][n - 1]!,
  dateOfBirth: '1960-02-29',
  sex: 'female',
  clinicDate: '2026-11-23',
  startTime: `09:${n}0`,
  stationAeTitle: 'MOBILE1',
  locationName: 'Tesco car park',
  adjustments: [],
});
const common = (n: number) => ({
  id: nameBasedUuid(`change ${n}`),
  madeAt: '2026-11-23T09:00:00Z',
  madeBy: 'Morgan',
  appointmentId: entry(n).appointmentId,
});

describe('the worklist as the trailer sees it', () => {
  it('drops did-not-attend and finished exams, shows check-in and corrected names, in the hub order', () => {
    const changes: GatewayChange[] = [
      { ...common(1), kind: 'attendance', seenStatus: 'scheduled', status: 'checked_in' },
      { ...common(2), kind: 'attendance', seenStatus: 'scheduled', status: 'did_not_attend' },
      {
        ...common(3),
        kind: 'demographics',
        participantId: entry(3).participantId,
        fields: { family_name: { seen: 'Brown', value: 'Browne' } },
      },
      { ...common(1), id: nameBasedUuid('x'), kind: 'procedure_step', step: 'in_progress', imageCount: 0 },
    ];
    const seen = withTrailerChanges([entry(1), entry(2), entry(3)], changes);
    expect(seen.map((e) => [e.familyName, e.status])).toEqual([
      ['Smith', 'in_progress'],
      ['Browne', 'scheduled'],
    ]);
    const completed = withTrailerChanges(seen, [
      { ...common(1), id: nameBasedUuid('y'), kind: 'procedure_step', step: 'completed', imageCount: 4 },
    ]);
    expect(completed.map((e) => e.familyName)).toEqual(['Browne']);
  });

  it('leaves the hub copy itself untouched', () => {
    const copy = [entry(3)];
    withTrailerChanges(copy, [
      {
        ...common(3),
        kind: 'demographics',
        participantId: entry(3).participantId,
        fields: { given_name: { seen: 'Cat', value: 'Kat' } },
      },
    ]);
    expect(copy[0]!.givenName).toBe('Cat');
  });
});

describe('MPPS reports as changes', () => {
  const event = {
    kind: 'completed' as const,
    sopInstanceUid: '2.25.9',
    accessionNumber: 'SH00000002',
    patientId: '9990000026',
    imageCount: 4,
    at: '2026-11-23T09:40:00Z',
  };

  it('names the appointment by accession number, with the same id every time it is reported', () => {
    const change = procedureStepChange(event, [entry(1), entry(2)], 'machine');
    expect(change).toMatchObject({
      kind: 'procedure_step',
      appointmentId: entry(2).appointmentId,
      step: 'completed',
      imageCount: 4,
    });
    expect(procedureStepChange(event, [entry(2)], 'machine')!.id).toBe(change!.id);
    expect(change!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('makes no change for an accession number that is not on the worklist, or none at all', () => {
    expect(procedureStepChange({ ...event, accessionNumber: 'SH404' }, [entry(2)], 'machine')).toBeUndefined();
    expect(
      procedureStepChange({ ...event, accessionNumber: '' }, [{ ...entry(2), accessionNumber: '' }], 'machine'),
    ).toBeUndefined();
  });
});
