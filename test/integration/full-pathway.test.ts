import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PDFDocument } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { startGateway } from '../../src/gateway/gateway.js';
import { failsafeReport } from '../../src/store/failsafes.js';
import { pollGpInbox } from '../../src/mesh/gp-system.js';
import { MeshClient } from '../../src/mesh/mesh-client.js';
import { startTestMailbox, TEST_MESH_SHARED_KEY, type TestMailbox } from '../../src/mesh/test-mailbox.js';
import type { Actor } from '../../src/store/audit.js';
import { pollGpMessageUpdates, sendQueuedGpMessages } from '../../src/store/gp-messages.js';
import { createBatch, sendBatch } from '../../src/store/invitation-sending.js';
import { letterPdf, sendLetters } from '../../src/store/letters.js';
import { recordOpinion } from '../../src/store/reading.js';
import { issueResult } from '../../src/store/results.js';
import { freshDatabase } from '../support/database.js';
import { findscuWorklist, haveDcmtk } from '../support/dcmtk.js';
import { moreReaders } from '../support/exams.js';
import { addParticipant, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { gatewayListener, startTestGateway, until } from '../support/gateway-hub.js';
import { writeRealisticMammogram } from '../support/mammogram.js';
import { sendMpps } from '../support/mpps-client.js';

const run = promisify(execFile);
const HUB_MAILBOX = { id: 'TSTHUB001', password: 'hub-secret' };
const PRACTICE_MAILBOX = { id: 'Y00001OT001', password: 'practice-secret' };

/**
 * The whole pathway for one woman, through the real pieces: invited in a batch (which books her at the mobile
 * unit), on the unit's worklist (DCMTK findscu), screened (MPPS and four images by storescu through the gateway to
 * the hub's archive), read twice, resulted, her letter printed as a PDF, and her GP told by a FHIR message over
 * MESH that the practice's system downloads and acknowledges.
 */
describe.skipIf(!haveDcmtk)('the screening pathway, invitation to GP acknowledgement', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: Awaited<ReturnType<typeof gatewayListener>>;
  let gateway: ReturnType<typeof startGateway>;
  let mailbox: TestMailbox;
  let work: string;
  let dicomPort: number;
  const logs: string[] = [];
  const actorOf = (user: { id: string; username: string }): Actor => ({
    userId: user.id,
    username: user.username,
    ip: '127.0.0.1',
  });

  /** The failsafe checks she is on (none once everything is done). */
  const failsafesOf = async (participantId: string) =>
    (await failsafeReport(database.db, 'TST', TODAY))
      .filter((r) => r.items.some((i) => i.participantId === participantId))
      .map((r) => r.check.id);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'pathway-'));
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    await database.db
      .updateTable('gp_practice')
      .set({ mesh_mailbox: PRACTICE_MAILBOX.id })
      .where('ods_code', '=', 'Y00001')
      .execute();
    // The only clinic in the batch's weeks: the mobile unit at the car park, today.
    await database.db
      .insertInto('clinic')
      .values({
        site_id: 'mobile-1',
        location_id: 'car-park',
        clinic_date: TODAY,
        starts_at: '09:00',
        ends_at: '12:00',
        slot_minutes: 10,
      })
      .execute();
    listener = await gatewayListener(database, 0, { dir: join(work, 'hub') });
    ({ gateway, dicomPort } = await startTestGateway(database, listener, office.actor, {
      resyncMs: 1000,
      log: (level, message) => void logs.push(`${level}: ${message}`),
    }));
    mailbox = await startTestMailbox({ sharedKey: TEST_MESH_SHARED_KEY, mailboxes: [HUB_MAILBOX, PRACTICE_MAILBOX] });
    await until(() => gateway.feed.state.online, 10_000);
  });
  afterAll(async () => {
    await gateway?.close();
    await listener?.close();
    await mailbox?.close();
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('invites, books, screens through the gateway, reads twice, results, writes her letter and tells her GP', async () => {
    const db = database.db;
    const ada = await addParticipant(db, {
      given_name: 'Ada',
      family_name: 'Pathway',
      date_of_birth: '1972-06-01',
      postcode: 'LS6 2AB',
    });

    // Invite: a batch by her GP practice, sent: she is offered the one clinic, and her letter is due.
    const batchId = await createBatch(
      db,
      {
        bsoCode: 'TST',
        criterion: { kind: 'gp_practice', odsCode: 'Y00001' },
        batchDate: TODAY,
        horizonDate: '2027-01-04',
      },
      'full-pathway-test-0001',
      office.actor,
    );
    await sendBatch(db, batchId, office.actor, TODAY);
    const invitation = await db
      .selectFrom('invitation as i')
      .innerJoin('appointment as a', 'a.id', 'i.appointment_id')
      .select(['i.status', 'a.id', 'a.accession_number'])
      .where('i.participant_id', '=', ada.id)
      .executeTakeFirstOrThrow();
    expect(invitation.status).toBe('offered');

    // The mobile unit's machine finds her on its worklist.
    await until(
      () => gateway.copy.current()?.entries.some((e) => e.accessionNumber === invitation.accession_number) ?? false,
      10_000,
    );
    const worklist = await findscuWorklist(
      dicomPort,
      ['PatientID', 'AccessionNumber', 'StudyInstanceUID', 'ScheduledProcedureStepSequence[0].Modality=MG'],
      { callingAe: 'MOBILE1' },
    );
    expect(await failsafesOf(ada.id)).toEqual([]); // booked for today: not yet due
    const item = worklist.responses.find((r) => r.AccessionNumber === invitation.accession_number);
    expect(item?.PatientID).toBe(ada.nhs_number);
    const studyUid = String(item!.StudyInstanceUID);

    // Screened: MPPS in progress, four views by storescu, MPPS completed.
    const step = '2.25.8800001';
    await sendMpps(
      dicomPort,
      [
        {
          op: 'create',
          sopInstanceUid: step,
          dataset: {
            ScheduledStepAttributesSequence: [
              { AccessionNumber: invitation.accession_number, StudyInstanceUID: studyUid },
            ],
            PatientID: ada.nhs_number,
            PerformedProcedureStepStatus: 'IN PROGRESS',
            PerformedProcedureStepStartDate: TODAY.replaceAll('-', ''),
            PerformedProcedureStepStartTime: '091000',
            Modality: 'MG',
          },
        },
      ],
      'MOBILE1',
    );
    const views = ['RCC', 'RMLO', 'LCC', 'LMLO'].map((view, i) => {
      const sopInstanceUid = `2.25.88000${i + 10}`;
      const file = join(work, `${view}.dcm`);
      writeRealisticMammogram(file, {
        sopInstanceUid,
        accessionNumber: invitation.accession_number,
        patientId: ada.nhs_number,
        width: 256,
        height: 320,
        seed: i,
      });
      return { sopInstanceUid, file };
    });
    await run(
      'storescu',
      ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), ...views.map((v) => v.file)],
      {
        timeout: 60_000,
      },
    );
    await sendMpps(
      dicomPort,
      [
        {
          op: 'set',
          sopInstanceUid: step,
          dataset: {
            PerformedProcedureStepStatus: 'COMPLETED',
            PerformedProcedureStepEndDate: TODAY.replaceAll('-', ''),
            PerformedProcedureStepEndTime: '091800',
            PerformedSeriesSequence: [
              {
                SeriesInstanceUID: '2.25.8800002',
                ReferencedImageSequence: views.map((v) => ({
                  ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.1.2',
                  ReferencedSOPInstanceUID: v.sopInstanceUid,
                })),
              },
            ],
          },
        },
      ],
      'MOBILE1',
    );
    const appointment = () =>
      db
        .selectFrom('appointment')
        .select(['status', 'images_available_at', 'episode_id'])
        .where('id', '=', invitation.id)
        .executeTakeFirstOrThrow();
    expect(
      await until(async () => {
        const a = await appointment();
        const images = await db.selectFrom('transfer_image').select('sop_instance_uid').execute();
        return a.status === 'screened' && a.images_available_at !== null && images.length === views.length;
      }, 60_000),
      logs.slice(-20).join('\n'),
    ).toBe(true);
    const stored = await db.selectFrom('transfer_image').select('sop_instance_uid').execute();
    expect(stored.map((s) => s.sop_instance_uid).sort()).toEqual(views.map((v) => v.sopInstanceUid).sort());

    expect(await failsafesOf(ada.id)).toEqual(['images_not_read']);

    // Read twice, blind: both normal.
    const [second] = await moreReaders(db);
    const reads = [
      await recordOpinion(
        db,
        { appointmentId: invitation.id, opinion: 'normal', details: {}, comment: '' },
        actorOf(office.users.reader),
      ),
      await recordOpinion(
        db,
        { appointmentId: invitation.id, opinion: 'normal', details: {}, comment: '' },
        actorOf(second!),
      ),
    ];
    expect(reads).toEqual([1, 2]);

    expect(await failsafesOf(ada.id)).toEqual(['read_no_result']);

    // Resulted: routine recall in 36 months; her episode closed; a letter and a GP message queued.
    const admin = actorOf(office.users.admin);
    const issued = await issueResult(db, { appointmentId: invitation.id, policy: 'discordant' }, admin, TODAY);
    expect(issued).toMatchObject({ result: 'routine_recall' });
    const episode = await db
      .selectFrom('episode')
      .select(['closed_on', 'end_code', 'final_action'])
      .where('id', '=', (await appointment()).episode_id!)
      .executeTakeFirstOrThrow();
    expect(episode).toEqual({ closed_on: TODAY, end_code: 'SC', final_action: 'RR' });

    expect(await failsafesOf(ada.id)).toEqual(['result_letter_not_sent', 'result_gp_not_acknowledged']);

    // Her letter: printed in the day's run as a PDF, and downloadable again exactly as sent.
    const run1 = await sendLetters(db, { office: 'TST' }, admin, TODAY);
    expect(run1.printed.map((s) => s.nhsNumber)).toEqual([ada.nhs_number]);
    const printed = await PDFDocument.load(run1.pdf!);
    expect(printed.getPageCount()).toBeGreaterThanOrEqual(1);
    const letter = await db
      .selectFrom('communication')
      .select(['id', 'status', 'kind', 'content_sha256'])
      .where('participant_id', '=', ada.id)
      .where('recipient', '=', 'participant')
      .executeTakeFirstOrThrow();
    expect(letter).toMatchObject({ status: 'sent', kind: 'result_normal' });
    const again = await letterPdf(db, letter.id, admin);
    expect(Buffer.from(again.pdf.slice(0, 5)).toString()).toBe('%PDF-');

    // Her GP: a FHIR message by MESH, downloaded and acknowledged by the practice's system.
    const hub = new MeshClient({
      url: mailbox.url,
      sharedKey: TEST_MESH_SHARED_KEY,
      mailbox: HUB_MAILBOX.id,
      password: HUB_MAILBOX.password,
    });
    const practice = new MeshClient({
      url: mailbox.url,
      sharedKey: TEST_MESH_SHARED_KEY,
      mailbox: PRACTICE_MAILBOX.id,
      password: PRACTICE_MAILBOX.password,
    });
    expect(await sendQueuedGpMessages(db, hub)).toMatchObject({ sent: 1 });
    const received = await pollGpInbox(practice);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ nhsNumber: ada.nhs_number, answered: 'ok' });
    await pollGpMessageUpdates(db, hub);
    const gp = await db
      .selectFrom('communication')
      .select(['status', 'delivered_at', 'acknowledged_at', 'gp_practice_code'])
      .where('participant_id', '=', ada.id)
      .where('recipient', '=', 'gp')
      .executeTakeFirstOrThrow();
    expect(gp.status).toBe('acknowledged');
    expect(gp.gp_practice_code).toBe('Y00001');
    expect(gp.acknowledged_at).not.toBeNull();

    expect(await failsafesOf(ada.id)).toEqual([]);

    // And the audit trail tells the story in order.
    const actions = (
      await db.selectFrom('audit_event').select('action').where('participant_id', '=', ada.id).orderBy('id').execute()
    ).map((a) => a.action);
    const order = ['reading.opinion', 'result.issue', 'letter.send', 'gp_message.sent', 'gp_message.acknowledged'];
    const positions = order.map((action) => actions.indexOf(action));
    expect(positions, actions.join(', ')).toEqual([...positions].sort((a, b) => a - b));
    expect(
      positions.every((p) => p >= 0),
      actions.join(', '),
    ).toBe(true);
  }, 180_000);
});
