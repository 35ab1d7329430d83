import { describe, expect, it } from 'vitest';
import { capAt, CapScheduleError, parseCapSchedule } from '../../../src/pathway/bandwidth-cap.js';
import { sendOrder, transferPriority, type WaitingImage } from '../../../src/pathway/transfer-priority.js';

describe('transfer priority', () => {
  it('is urgent for a technical recall (the earlier attempt partly screened or not screened)', () => {
    expect(transferPriority({ episodeType: 'R', earlierAttempt: 'partially_screened' })).toBe('urgent');
    expect(transferPriority({ episodeType: 'R', earlierAttempt: 'attended_not_screened' })).toBe('urgent');
  });
  it('is urgent for early recall and higher-risk short-term recall episodes', () => {
    expect(transferPriority({ episodeType: 'E', earlierAttempt: null })).toBe('urgent');
    expect(transferPriority({ episodeType: 'T', earlierAttempt: null })).toBe('urgent');
  });
  it('is routine otherwise, including a rebooking after a cancellation or did-not-attend', () => {
    expect(transferPriority({ episodeType: 'R', earlierAttempt: null })).toBe('routine');
    expect(transferPriority({ episodeType: 'C', earlierAttempt: 'cancelled' })).toBe('routine');
    expect(transferPriority({ episodeType: null, earlierAttempt: 'did_not_attend' })).toBe('routine');
  });
  it('sends urgent exams first, then the exam waiting longest, then images in arrival order', () => {
    const image = (priority: 'urgent' | 'routine', examReceivedAt: number, sequence: number): WaitingImage => ({
      priority,
      examReceivedAt,
      sequence,
    });
    const a = image('routine', 100, 1);
    const b = image('routine', 100, 2);
    const c = image('routine', 50, 3);
    const d = image('urgent', 300, 4);
    expect([a, b, c, d].sort(sendOrder)).toEqual([d, c, a, b]);
  });
});

describe('bandwidth cap schedule', () => {
  it('reads periods in Mbit/s, including one across midnight', () => {
    const schedule = parseCapSchedule('08:00-18:00=4, 22:00-06:00=20');
    expect(schedule).toEqual([
      { from: 480, to: 1080, bitsPerSecond: 4_000_000 },
      { from: 1320, to: 360, bitsPerSecond: 20_000_000 },
    ]);
    expect(capAt(schedule, 8 * 60)).toBe(4_000_000);
    expect(capAt(schedule, 18 * 60)).toBeNull();
    expect(capAt(schedule, 23 * 60)).toBe(20_000_000);
    expect(capAt(schedule, 3 * 60)).toBe(20_000_000);
    expect(capAt(schedule, 7 * 60)).toBeNull();
  });
  it('takes the lower cap where periods overlap, and no schedule means no cap', () => {
    expect(capAt(parseCapSchedule('08:00-18:00=4,12:00-13:00=1.5'), 12 * 60 + 30)).toBe(1_500_000);
    expect(capAt(parseCapSchedule(''), 600)).toBeNull();
  });
  it('refuses what it cannot read with a message saying how to write it', () => {
    expect(() => parseCapSchedule('8-18=4')).toThrow(CapScheduleError);
    expect(() => parseCapSchedule('8-18=4')).toThrow(/HH:MM-HH:MM=MBIT/);
    expect(() => parseCapSchedule('08:00-08:00=4')).toThrow(/same time/);
    expect(() => parseCapSchedule('08:00-18:00=0')).toThrow(/above 0/);
  });
});
