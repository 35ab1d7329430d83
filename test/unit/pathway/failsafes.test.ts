import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ageInDays,
  FAILSAFE_CHECKS,
  FAILSAFE_DEFINITIONS,
  failsafeStatus,
  FailsafeThresholdsError,
  isOverdue,
  londonTime,
  nextDailyRun,
  parseThresholds,
  summarise,
  tallyMismatches,
  type FailsafeCheckId,
} from '../../../src/pathway/failsafes.js';
import { loadFailsafeThresholds, SHIPPED_THRESHOLDS_FILE } from '../../../src/store/failsafes.js';
import { isoDateArb, utcDay } from './arbitraries.js';

/** The shipped file as plain JSON, for a test to spoil one key. */
type Loose = Record<FailsafeCheckId, Record<string, unknown>> & Record<string, Record<string, unknown>>;
const shipped = () => JSON.parse(readFileSync(SHIPPED_THRESHOLDS_FILE, 'utf8')) as { thresholds: Loose };

/** The message parseThresholds gives for a config, or '' when it is accepted. */
function problem(config: unknown): string {
  try {
    parseThresholds(config, 'test.json');
    return '';
  } catch (error) {
    expect(error).toBeInstanceOf(FailsafeThresholdsError);
    return (error as Error).message;
  }
}

describe('age in days', () => {
  it('counts whole calendar days from the step to the day asked, 0 on the day itself', () => {
    expect(ageInDays('2026-11-23', '2026-11-23')).toBe(0);
    expect(ageInDays('2026-11-09', '2026-11-23')).toBe(14);
    // Across a month end and a leap day.
    expect(ageInDays('2028-02-28', '2028-03-01')).toBe(2);
    // A step dated after the day asked (a clock ahead) is not a negative wait.
    expect(ageInDays('2026-11-24', '2026-11-23')).toBe(0);
  });

  it('agrees with a UTC day count for any two dates', () => {
    fc.assert(
      fc.property(isoDateArb(2000, 2040), isoDateArb(2000, 2040), (a, b) => {
        expect(ageInDays(a, b)).toBe(Math.max(0, utcDay(b) - utcDay(a)));
      }),
    );
  });
});

describe('overdue and status', () => {
  const letter = { days: 14, dueSoonDays: 3 };

  it('a letter sent on day 14 is within 14 days; day 15 is overdue', () => {
    expect(isOverdue(14, letter)).toBe(false);
    expect(isOverdue(15, letter)).toBe(true);
    expect(failsafeStatus(14, letter)).toBe('due_soon');
    expect(failsafeStatus(15, letter)).toBe('overdue');
  });

  it('is due soon over the last dueSoonDays days before the limit, the limit day included', () => {
    expect(failsafeStatus(10, letter)).toBe('ok');
    expect(failsafeStatus(11, letter)).toBe('due_soon');
    expect(failsafeStatus(0, letter)).toBe('ok');
    // dueSoonDays 0: amber on the last day only.
    expect(failsafeStatus(0, { days: 1, dueSoonDays: 0 })).toBe('ok');
    expect(failsafeStatus(1, { days: 1, dueSoonDays: 0 })).toBe('due_soon');
    expect(failsafeStatus(2, { days: 1, dueSoonDays: 0 })).toBe('overdue');
    // A limit of 0 days: anyone waiting a day is overdue.
    expect(failsafeStatus(0, { days: 0, dueSoonDays: 0 })).toBe('due_soon');
    expect(failsafeStatus(1, { days: 0, dueSoonDays: 0 })).toBe('overdue');
  });

  it('status only gets worse as she waits longer', () => {
    const rank = { ok: 0, due_soon: 1, overdue: 2 } as const;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 }), fc.nat(100), (days, soon, age) => {
        const t = { days, dueSoonDays: Math.min(soon, days) };
        expect(rank[failsafeStatus(age + 1, t)]).toBeGreaterThanOrEqual(rank[failsafeStatus(age, t)]);
        expect(failsafeStatus(age, t) === 'overdue').toBe(isOverdue(age, t));
      }),
    );
  });

  it('summarises a list: counts, overdue, due soon, oldest, and red/amber/green', () => {
    expect(summarise([], letter)).toEqual({ count: 0, overdue: 0, dueSoon: 0, oldestDays: null, status: 'ok' });
    expect(summarise([1, 12, 3], letter)).toEqual({
      count: 3,
      overdue: 0,
      dueSoon: 1,
      oldestDays: 12,
      status: 'due_soon',
    });
    expect(summarise([20, 1, 15, 14], letter)).toMatchObject({ count: 4, overdue: 2, dueSoon: 1, oldestDays: 20 });
    expect(summarise([20], letter).status).toBe('overdue');
  });
});

describe('the tally', () => {
  it('names each step whose count does not match the number screened', () => {
    const day = { screened: 10, imagesReceived: 10, readTwice: 8, resulted: 8, lettersSent: 7 };
    expect(tallyMismatches(day)).toEqual(['readTwice', 'resulted', 'lettersSent']);
    expect(tallyMismatches({ ...day, readTwice: 10, resulted: 10, lettersSent: 10 })).toEqual([]);
  });
});

describe('the thresholds file', () => {
  it('the shipped file is valid: every check has a threshold with its source, national ones quoting the standard', () => {
    const thresholds = parseThresholds(shipped(), 'shipped');
    expect(Object.keys(thresholds).sort()).toEqual([...FAILSAFE_CHECKS].sort());
    expect(thresholds.result_letter_not_sent).toMatchObject({ days: 14, scope: 'national' });
    expect(thresholds.result_letter_not_sent.target).toMatch(/95%/);
    expect(thresholds.recalled_no_assessment).toMatchObject({ days: 21, scope: 'national' });
    expect(thresholds.recalled_no_assessment.source).toMatch(/NHSBSP/);
    // A technical recall's repeat exam, and an assessment outcome's letter and GP message, are followed too.
    expect(thresholds.technical_recall_no_repeat).toMatchObject({ days: 28, scope: 'local' });
    expect(FAILSAFE_DEFINITIONS.technical_recall_no_repeat).toMatchObject({
      title: 'Technical recall, but no repeat exam',
      owner: 'The screening office admin team',
      group: 'pathway',
    });
    expect(thresholds.outcome_letter_not_sent).toMatchObject({ days: 7, scope: 'local' });
    expect(thresholds.outcome_gp_not_acknowledged).toMatchObject({ days: 2, scope: 'local' });
    expect(FAILSAFE_DEFINITIONS.outcome_letter_not_sent.counts).toBe('the day the outcome was decided');
    // Every check is defined under its own id.
    for (const id of FAILSAFE_CHECKS) expect(FAILSAFE_DEFINITIONS[id].id).toBe(id);
    // Everything else is a local setting, and says so.
    for (const id of FAILSAFE_CHECKS.filter((c) => thresholds[c].scope === 'local'))
      expect(thresholds[id].source).toMatch(/^Local setting, not a national standard/);
    for (const id of FAILSAFE_CHECKS) {
      expect(thresholds[id].source.length).toBeGreaterThan(20);
      expect(FAILSAFE_DEFINITIONS[id].owner).not.toBe('');
    }
  });

  it('names the bad key and says what is wrong', () => {
    const bad = shipped();
    bad.thresholds.images_not_read.days = 'seven';
    expect(problem(bad)).toMatch(
      /^Failsafe thresholds in test\.json are not valid: thresholds\.images_not_read\.days: must be a whole number of days from 0 to 365$/,
    );

    const negative = shipped();
    negative.thresholds.read_no_result.days = -1;
    expect(problem(negative)).toContain('thresholds.read_no_result.days: must be a whole number of days');

    const fraction = shipped();
    fraction.thresholds.read_no_result.days = 1.5;
    expect(problem(fraction)).toContain('thresholds.read_no_result.days: must be a whole number of days');

    const missing = shipped();
    Reflect.deleteProperty(missing.thresholds, 'movers_not_acknowledged');
    expect(problem(missing)).toContain('thresholds.movers_not_acknowledged: is missing');

    const unknown = shipped();
    unknown.thresholds.screened_no_image = { ...unknown.thresholds.screened_no_images };
    expect(problem(unknown)).toContain('thresholds.screened_no_image: not a known setting');

    const typo = shipped();
    typo.thresholds.open_conflicts.dayz = 3;
    expect(problem(typo)).toContain('thresholds.open_conflicts.dayz: not a known setting');

    const noSource = shipped();
    noSource.thresholds.open_conflicts.source = '  ';
    expect(problem(noSource)).toContain('thresholds.open_conflicts.source: must say where the figure comes from');

    const soonerThanLimit = shipped();
    soonerThanLimit.thresholds.read_no_result.dueSoonDays = 5;
    expect(problem(soonerThanLimit)).toContain('thresholds.read_no_result.dueSoonDays: must not be more than "days"');

    const nationalWithoutTarget = shipped();
    delete nationalWithoutTarget.thresholds.result_letter_not_sent.target;
    expect(problem(nationalWithoutTarget)).toContain(
      'thresholds.result_letter_not_sent.target: is needed for a national standard',
    );

    const scope = shipped();
    scope.thresholds.read_no_result.scope = 'regional';
    expect(problem(scope)).toContain('thresholds.read_no_result.scope: must be "national" or "local"');

    expect(problem([])).toContain('(the file): must be a JSON object with "thresholds"');
    expect(problem({})).toContain('thresholds: is missing');
  });

  it('lists every problem at once', () => {
    const bad = shipped();
    bad.thresholds.images_not_read.days = 'seven';
    Reflect.deleteProperty(bad.thresholds, 'open_conflicts');
    const message = problem(bad);
    expect(message).toContain('thresholds.images_not_read.days');
    expect(message).toContain('thresholds.open_conflicts: is missing');
  });

  it('FAILSAFE_THRESHOLDS_FILE overrides the shipped file; a bad or missing file is named in the error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'failsafe-thresholds-'));
    const mine = shipped();
    mine.thresholds.result_letter_not_sent.days = 10;
    const file = join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify(mine));
    expect(loadFailsafeThresholds({ FAILSAFE_THRESHOLDS_FILE: file }).thresholds.result_letter_not_sent.days).toBe(10);
    expect(loadFailsafeThresholds({}).file).toBe(SHIPPED_THRESHOLDS_FILE);
    expect(loadFailsafeThresholds({}).thresholds.result_letter_not_sent.days).toBe(14);

    writeFileSync(join(dir, 'broken.json'), '{ "thresholds": ');
    expect(() => loadFailsafeThresholds({ FAILSAFE_THRESHOLDS_FILE: join(dir, 'broken.json') })).toThrow(
      /broken\.json are not valid: the file is not valid JSON/,
    );
    expect(() => loadFailsafeThresholds({ FAILSAFE_THRESHOLDS_FILE: join(dir, 'absent.json') })).toThrow(
      /absent\.json are not valid: the file cannot be read/,
    );
  });
});

describe('the daily run time', () => {
  it('is 06:00 on the clock in England, in winter (GMT) and summer (BST)', () => {
    expect(londonTime('2026-11-23', 6).toISOString()).toBe('2026-11-23T06:00:00.000Z');
    expect(londonTime('2026-07-01', 6).toISOString()).toBe('2026-07-01T05:00:00.000Z');
    // The clocks change at 01:00 GMT: 06:00 that day is already on the new time.
    expect(londonTime('2026-03-29', 6).toISOString()).toBe('2026-03-29T05:00:00.000Z');
    expect(londonTime('2026-10-25', 6).toISOString()).toBe('2026-10-25T06:00:00.000Z');
  });

  it('the next run is today at 06:00 if still to come, else tomorrow', () => {
    expect(nextDailyRun(new Date('2026-11-23T05:59:00Z'), 6).toISOString()).toBe('2026-11-23T06:00:00.000Z');
    expect(nextDailyRun(new Date('2026-11-23T06:00:00Z'), 6).toISOString()).toBe('2026-11-24T06:00:00.000Z');
    // 23:30 UTC on 30 June is 00:30 on 1 July in England: the next run is 06:00 BST on 1 July.
    expect(nextDailyRun(new Date('2026-06-30T23:30:00Z'), 6).toISOString()).toBe('2026-07-01T05:00:00.000Z');
    // The evening before the clocks go back: the next run is at 06:00 GMT.
    expect(nextDailyRun(new Date('2026-10-24T20:00:00Z'), 6).toISOString()).toBe('2026-10-25T06:00:00.000Z');
  });

  it('is always within a day (and a clock change) of now, and in the future', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('2000-01-01'), max: new Date('2040-01-01'), noInvalidDate: true }), (now) => {
        const next = nextDailyRun(now, 6).getTime();
        expect(next).toBeGreaterThan(now.getTime());
        expect(next - now.getTime()).toBeLessThanOrEqual(25 * 3600_000);
      }),
    );
  });
});
