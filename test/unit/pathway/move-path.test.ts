import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  APPOINTMENT_STATUSES,
  canMove,
  movePath,
  procedureStepStatus,
} from '../../../src/pathway/appointment-status.js';

describe('movePath', () => {
  it('walks a scheduled appointment through check-in to screened', () => {
    expect(movePath('scheduled', 'screened')).toEqual(['checked_in', 'screened']);
    expect(movePath('scheduled', 'in_progress')).toEqual(['checked_in', 'in_progress']);
    expect(movePath('paused', 'paused')).toEqual([]);
  });

  it('finds no way out of a final status', () => {
    expect(movePath('cancelled', 'screened')).toBeUndefined();
    expect(movePath('screened', 'in_progress')).toBeUndefined();
  });

  it('only ever takes allowed moves, and ends where it was asked to', () => {
    const status = fc.constantFrom(...APPOINTMENT_STATUSES);
    fc.assert(
      fc.property(status, status, (from, to) => {
        const path = movePath(from, to);
        if (!path) return;
        let at = from;
        for (const next of path) {
          expect(canMove(at, next)).toBe(true);
          at = next;
        }
        expect(at).toBe(to);
      }),
    );
  });
});

describe('procedureStepStatus', () => {
  it('maps MPPS states to appointment statuses', () => {
    expect(procedureStepStatus('in_progress', 0, undefined)).toEqual({ to: 'in_progress', reason: null });
    expect(procedureStepStatus('completed', 4, undefined)).toEqual({ to: 'screened', reason: null });
    expect(procedureStepStatus('discontinued', 2, 'Patient refused')).toEqual({
      to: 'partially_screened',
      reason: 'Patient refused',
    });
    expect(procedureStepStatus('discontinued', 0, 'Equipment failure').to).toBe('attended_not_screened');
    expect(procedureStepStatus('discontinued', 0, 'Equipment failure').reason).toBe('Technical failure');
  });
});
