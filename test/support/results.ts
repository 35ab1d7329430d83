import type { StaffUser } from '../../src/store/accounts.js';
import type { Db } from '../../src/store/database.js';
import type { Opinion } from '../../src/pathway/screening-outcomes.js';
import type { ScreenedExam } from './exams.js';

/** A clinic of its own (site, location, day, start): 10-minute slots. */
export async function addClinic(
  db: Db,
  c: {
    site: string;
    location: string;
    date: string;
    starts: string;
    ends: string;
    purpose: 'screening' | 'assessment';
  },
): Promise<string> {
  const row = await db
    .insertInto('clinic')
    .values({
      site_id: c.site,
      location_id: c.location,
      clinic_date: c.date,
      starts_at: c.starts,
      ends_at: c.ends,
      slot_minutes: 10,
      purpose: c.purpose,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Records reads 1, 2 (and 3, the arbiter's) of an exam, as the reading pages would. */
export async function readExam(db: Db, exam: ScreenedExam, readers: StaffUser[], opinions: Opinion[]) {
  for (const [i, opinion] of opinions.entries()) {
    const details =
      opinion === 'recall_assessment'
        ? { findings: [{ side: 'left', lesion: 'mass_ill_defined', location: 'upper outer quadrant', concern: 4 }] }
        : opinion === 'technical_recall'
          ? { views: ['LMLO'], reason: 'positioning' }
          : {};
    await db
      .insertInto('reading_opinion')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        read_number: (i + 1) as 1 | 2 | 3,
        reader_id: readers[i]!.id,
        opinion,
        details: JSON.stringify(details),
      })
      .execute();
  }
}
