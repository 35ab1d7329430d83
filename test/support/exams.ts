import { randomUUID } from 'node:crypto';
import { createUser, type StaffUser } from '../../src/store/accounts.js';
import type { Db } from '../../src/store/database.js';
import { addParticipant, PASSWORD } from './fixtures.js';

/** Film readers beyond smallOffice's one: double reading needs two, arbitration a third. */
export async function moreReaders(db: Db, prefix = 'reader'): Promise<StaffUser[]> {
  const names = ['Second', 'Third', 'Fourth'];
  return Promise.all(
    names.map((n, i) =>
      createUser(db, {
        username: `${prefix}${i + 2}`,
        displayName: `${n} Reader`,
        role: 'film_reader',
        password: PASSWORD,
      }),
    ),
  );
}

let examCalls = 0;

export interface ScreenedExam {
  participantId: string;
  nhsNumber: string;
  episodeId: string;
  appointmentId: string;
  accessionNumber: string;
  studyInstanceUid: string;
}

/**
 * One screened exam whose images are at the PACS (smallOffice's static site, in a clinic of its own on `on`):
 * a participant, her open episode, a screened appointment with images available. `imagesAvailable: false`
 * leaves the images not yet arrived.
 */
export async function screenedExam(
  db: Db,
  options: {
    on?: string;
    episodeType?: 'C' | 'R';
    imagesAvailable?: boolean;
    participant?: Parameters<typeof addParticipant>[1];
  } = {},
): Promise<ScreenedExam> {
  const on = options.on ?? '2026-11-16';
  const n = examCalls++;
  const participant = await addParticipant(db, options.participant);
  const clinic = await db
    .insertInto('clinic')
    .values({
      site_id: 'static-1',
      location_id: 'central',
      clinic_date: on,
      // A clinic of its own: 5-minute steps from 00:00, so hundreds of exams on one day never share a start.
      starts_at: `${String(Math.floor((n * 5) / 60) % 24).padStart(2, '0')}:${String((n * 5) % 60).padStart(2, '0')}`,
      ends_at: '23:59',
      slot_minutes: 10,
      status: 'closed',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const episode = await db
    .insertInto('episode')
    .values({
      participant_id: participant.id,
      bso_code: 'TST',
      episode_type: options.episodeType ?? 'R',
      opened_on: '2026-10-01',
      screened_on: on,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const accessionNumber = `EX${String(n).padStart(6, '0')}${randomUUID().slice(0, 4).toUpperCase()}`;
  const studyInstanceUid = `2.25.${BigInt('0x' + randomUUID().replaceAll('-', '')).toString()}`;
  const appointment = await db
    .insertInto('appointment')
    .values({
      clinic_id: clinic.id,
      participant_id: participant.id,
      episode_id: episode.id,
      slot_index: 0,
      slot_count: 1,
      status: 'screened',
      accession_number: accessionNumber,
      study_instance_uid: options.imagesAvailable === false ? null : studyInstanceUid,
      images_available_at: options.imagesAvailable === false ? null : new Date(`${on}T16:00:00Z`),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return {
    participantId: participant.id,
    nhsNumber: participant.nhs_number,
    episodeId: episode.id,
    appointmentId: appointment.id,
    accessionNumber,
    studyInstanceUid,
  };
}
