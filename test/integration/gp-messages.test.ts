import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGpResponseMessage, type MessageBundle } from '../../src/fhir/gp-result-message.js';
import { buildHub } from '../../src/hub/app.js';
import { pollGpInbox } from '../../src/mesh/gp-system.js';
import { ackWorkflow, GP_RESULT_WORKFLOW, MeshClient, type MeshSettings } from '../../src/mesh/mesh-client.js';
import { sends, startTestMailbox, type TestMailbox } from '../../src/mesh/test-mailbox.js';
import type { ExamResult } from '../../src/pathway/screening-outcomes.js';
import type { Db } from '../../src/store/database.js';
import {
  canonicalJson,
  pollGpMessageUpdates,
  retryGpMessage,
  sendQueuedGpMessages,
  unacknowledgedAlerts,
} from '../../src/store/gp-messages.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { screenedExam } from '../support/exams.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient } from '../support/hub-client.js';

const KEY = 'IntegrationSharedKey';
const HUB = { id: 'HUBMBX01', password: 'hub-password' };
const RIVERSIDE = { id: 'Y00001MB', password: 'riverside-password' };
const MOORSIDE = { id: 'Y00009MB', password: 'moorside-password' };

const minutes = (n: number) => n * 60 * 1000;

describe.each(BACKENDS)('GP results by MESH on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let mailbox: TestMailbox;
  let settings: MeshSettings;
  let hub: MeshClient;
  let riverside: MeshClient;
  let moorside: MeshClient;
  // The tests' clock: every test moves it on, so one test's retry times never fall in another's.
  let clock = Date.now();
  const at = (offset = 0) => new Date(clock + offset);
  const db = (): Db => database.db;

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(db());
    mailbox = await startTestMailbox({ sharedKey: KEY, mailboxes: [HUB, RIVERSIDE, MOORSIDE] });
    settings = { url: mailbox.url, mailbox: HUB.id, password: HUB.password, sharedKey: KEY };
    hub = new MeshClient(settings);
    riverside = new MeshClient({
      url: mailbox.url,
      mailbox: RIVERSIDE.id,
      password: RIVERSIDE.password,
      sharedKey: KEY,
    });
    moorside = new MeshClient({ url: mailbox.url, mailbox: MOORSIDE.id, password: MOORSIDE.password, sharedKey: KEY });
    // Riverside has a mailbox MESH knows; Hillside's recorded mailbox is not registered at MESH; Lakeside has none.
    await db()
      .updateTable('gp_practice')
      .set({ mesh_mailbox: RIVERSIDE.id })
      .where('ods_code', '=', 'Y00001')
      .execute();
    await db().updateTable('gp_practice').set({ mesh_mailbox: 'Y00002MB' }).where('ods_code', '=', 'Y00002').execute();
    await db()
      .insertInto('gp_practice')
      .values([
        { ods_code: 'Y00003', name: 'Lakeside Practice', postcode: 'LS7 1AA', bso_code: 'TST', mesh_mailbox: null },
        {
          ods_code: 'Y00009',
          name: 'Moorside Surgery',
          postcode: 'LS8 1AA',
          bso_code: 'TST',
          mesh_mailbox: MOORSIDE.id,
        },
      ])
      .execute();
  });
  afterAll(async () => {
    await mailbox?.close();
    await database?.drop();
  });

  /** A screened exam with its result issued and the GP message queued, as the results module leaves them. */
  async function queuedResult(options: { practice?: string; result?: ExamResult } = {}) {
    const exam = await screenedExam(db());
    const practice = options.practice ?? 'Y00001';
    await db()
      .updateTable('participant')
      .set({ gp_practice_code: practice })
      .where('id', '=', exam.participantId)
      .execute();
    const result = options.result ?? 'routine_recall';
    await db()
      .insertInto('exam_result')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        result,
        next_test_due: result === 'routine_recall' ? '2029-11-16' : null,
        issued_by: office.users.admin.id,
      })
      .execute();
    const row = await db()
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient: 'gp',
        kind:
          result === 'routine_recall'
            ? 'result_normal'
            : result === 'technical_recall'
              ? 'result_technical_recall'
              : 'result_assessment',
        channel: 'mesh',
        gp_practice_code: practice,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { ...exam, id: row.id };
  }

  const message = (id: string) =>
    db().selectFrom('communication').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const auditOf = (id: string) =>
    db()
      .selectFrom('audit_event')
      .select(['action', 'username', 'detail', 'participant_id'])
      .where('entity_id', '=', id)
      .orderBy('id')
      .execute();
  const atPractice = (localId: string) => mailbox.messagesTo(RIVERSIDE.id).filter((m) => m.localId === localId);

  it('sends a queued result, sees it delivered, and takes the practice acknowledgement', async () => {
    clock += minutes(60);
    const a = await queuedResult();
    const b = await queuedResult();
    expect(await sendQueuedGpMessages(db(), hub, { now: at() })).toEqual({ sent: 2, retrying: 0, failed: 0 });

    const sent = await message(a.id);
    expect(sent).toMatchObject({ status: 'sent', attempts: 1, next_attempt_at: null, last_error: null });
    expect(new Date(sent.sent_at!).getTime()).toBe(at().getTime());
    const bundle = sent.content as MessageBundle;
    expect(bundle.type).toBe('message');
    expect(bundle.entry[0]!.resource.id).toBe(a.id);
    expect(sent.content_sha256).toBe(createHash('sha256').update(canonicalJson(bundle)).digest('hex'));
    // What reached the practice is exactly what is stored, under our local id, on the result workflow.
    const [arrived] = atPractice(a.id);
    expect(arrived).toMatchObject({ messageId: sent.mesh_message_id, from: HUB.id, workflowId: GP_RESULT_WORKFLOW });
    expect(arrived!.body.toString('utf8')).toBe(canonicalJson(bundle));
    expect(arrived!.subject).toBe('Breast screening result');
    const patient = bundle.entry.find((e) => e.resource.resourceType === 'Patient')!.resource;
    expect(patient.identifier).toEqual([{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: a.nhsNumber }]);

    // The practice answers a but only downloads b.
    const received = await pollGpInbox(riverside, { respond: ({ messageId }) => (messageId === a.id ? 'ok' : null) });
    expect(received.map((r) => r.messageHeaderId).sort()).toEqual([a.id, b.id].sort());
    expect(received.find((r) => r.messageHeaderId === a.id)).toMatchObject({ nhsNumber: a.nhsNumber, answered: 'ok' });
    expect(mailbox.inbox(HUB.id)).toHaveLength(1);
    expect(mailbox.messagesTo(HUB.id).at(-1)!.workflowId).toBe(ackWorkflow(GP_RESULT_WORKFLOW));

    const poll = await pollGpMessageUpdates(db(), hub, { now: at(minutes(5)) });
    expect(poll).toEqual({ delivered: 2, acknowledged: 1, failed: 0, ignored: 0 });
    expect(await message(a.id)).toMatchObject({ status: 'acknowledged' });
    expect(new Date((await message(a.id)).acknowledged_at!).getTime()).toBe(at(minutes(5)).getTime());
    expect((await message(b.id)).status).toBe('delivered');
    expect((await message(b.id)).delivered_at).not.toBeNull();
    // The hub acknowledged the response at MESH: its inbox is empty.
    expect(mailbox.inbox(HUB.id)).toEqual([]);

    const audit = await auditOf(a.id);
    expect(audit.map((e) => e.action)).toEqual(['gp_message.sent', 'gp_message.delivered', 'gp_message.acknowledged']);
    expect(audit.every((e) => e.username === 'system' && e.participant_id === a.participantId)).toBe(true);

    // Nothing new: the next poll changes nothing.
    expect(await pollGpMessageUpdates(db(), hub, { now: at(minutes(10)) })).toEqual({
      delivered: 0,
      acknowledged: 0,
      failed: 0,
      ignored: 0,
    });
    expect(await auditOf(a.id)).toHaveLength(3);
  });

  it('sends an assessment outcome from the current (not a replaced) outcome of the episode', async () => {
    clock += minutes(60);
    const exam = await screenedExam(db());
    const first = await db()
      .insertInto('assessment_outcome')
      .values({ episode_id: exam.episodeId, outcome: 'benign', decided_on: '2026-12-01', superseded_at: at() })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db()
      .insertInto('assessment_outcome')
      .values({
        episode_id: exam.episodeId,
        outcome: 'malignant_invasive',
        side: 'right',
        size_mm: 12.5,
        grade: 2,
        referred_to_treatment: true,
        treatment_provider: 'Leeds Teaching Hospitals',
        decided_on: '2026-12-03',
        replaces_id: first.id,
      })
      .execute();
    const row = await db()
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        recipient: 'gp',
        kind: 'assessment_outcome',
        channel: 'mesh',
        gp_practice_code: 'Y00001',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    expect(await sendQueuedGpMessages(db(), hub, { now: at() })).toMatchObject({ sent: 1 });
    const bundle = (await message(row.id)).content as MessageBundle;
    const report = bundle.entry.find((e) => e.resource.resourceType === 'DiagnosticReport')!.resource;
    expect(report).toMatchObject({ effectiveDateTime: '2026-12-03', status: 'final' });
    expect(report.conclusion).toBe(
      'Assessment outcome: Malignant: invasive, right breast, invasive size 12.5 mm, grade 2 (decided 3 December ' +
        '2026). Referred for treatment at Leeds Teaching Hospitals.',
    );
    await pollGpInbox(riverside);
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(1)) });
    expect((await message(row.id)).status).toBe('acknowledged');
  });

  it('ignores a repeated acknowledgement, one from the wrong mailbox and one for no message of ours', async () => {
    clock += minutes(60);
    const a = await queuedResult();
    const c = await queuedResult();
    await sendQueuedGpMessages(db(), hub, { now: at() });
    await pollGpInbox(riverside);
    const response = (id: string, from: string) =>
      JSON.stringify(
        buildGpResponseMessage({
          originalMessageId: id,
          code: 'ok',
          from: { mailbox: from, name: from },
          to: HUB.id,
          at: at(),
        }),
      );
    await riverside.send({ to: HUB.id, workflowId: 'X_ACK', body: response(a.id, RIVERSIDE.id) });
    await riverside.send({
      to: HUB.id,
      workflowId: 'X_ACK',
      body: response('00000000-0000-4000-8000-000000000000', RIVERSIDE.id),
    });
    await riverside.send({ to: HUB.id, workflowId: 'X_ACK', body: '{"not":"fhir"}' });
    const poll = await pollGpMessageUpdates(db(), hub, { now: at(minutes(1)) });
    expect(poll).toMatchObject({ acknowledged: 2, ignored: 3 });
    expect((await message(a.id)).status).toBe('acknowledged');

    // c is not acknowledged by its practice's stand-in: Moorside cannot answer for Riverside.
    const d = await queuedResult();
    await sendQueuedGpMessages(db(), hub, { now: at(minutes(2)) });
    await pollGpInbox(riverside, { respond: () => null });
    await moorside.send({ to: HUB.id, workflowId: 'X_ACK', body: response(d.id, MOORSIDE.id) });
    expect(await pollGpMessageUpdates(db(), hub, { now: at(minutes(3)) })).toMatchObject({
      delivered: 1,
      acknowledged: 0,
      ignored: 1,
    });
    expect((await message(d.id)).status).toBe('delivered');
    expect((await message(c.id)).status).toBe('acknowledged');
    const ignored = await db()
      .selectFrom('audit_event')
      .select('detail')
      .where('action', '=', 'gp_message.response_ignored')
      .execute();
    const reasons = ignored.map((e) => (e.detail as { reason: string }).reason).join('\n');
    expect(reasons).toMatch(/repeated or late acknowledgement/);
    expect(reasons).toMatch(/no message of ours/);
    expect(reasons).toMatch(/Not a response message/);
    expect(reasons).toMatch(/from Y00009MB, not the practice/);
    expect(mailbox.inbox(HUB.id)).toEqual([]);
  });

  it('retries transient failures with backoff, and never gives the practice the same result twice', async () => {
    clock += minutes(60);
    const a = await queuedResult();
    mailbox.failNext(2, { match: sends });
    expect(await sendQueuedGpMessages(db(), hub, { now: at() })).toEqual({ sent: 0, retrying: 1, failed: 0 });
    let row = await message(a.id);
    expect(row).toMatchObject({ status: 'queued', attempts: 1 });
    expect(row.last_error).toMatch(/HTTP 503/);
    expect(new Date(row.next_attempt_at!).getTime()).toBe(at(minutes(2)).getTime());
    // Not due yet: nothing happens.
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(1)) })).toEqual({ sent: 0, retrying: 0, failed: 0 });
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(2)) })).toEqual({ sent: 0, retrying: 1, failed: 0 });
    row = await message(a.id);
    expect(row.attempts).toBe(2);
    expect(new Date(row.next_attempt_at!).getTime()).toBe(at(minutes(2 + 4)).getTime());

    // The third try reaches MESH but the answer is lost on the way back.
    mailbox.dropNext(1, { afterProcessing: true, match: sends });
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(6)) })).toEqual({ sent: 0, retrying: 1, failed: 0 });
    expect(atPractice(a.id)).toHaveLength(1);
    const posts = mailbox.requests.filter((r) => r.endsWith('/outbox')).length;
    // The fourth finds it by its local id instead of sending it again.
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(14)) })).toEqual({
      sent: 1,
      retrying: 0,
      failed: 0,
    });
    expect(mailbox.requests.filter((r) => r.endsWith('/outbox')).length).toBe(posts);
    expect(atPractice(a.id)).toHaveLength(1);
    row = await message(a.id);
    expect(row).toMatchObject({
      status: 'sent',
      attempts: 4,
      mesh_message_id: atPractice(a.id)[0]!.messageId,
      last_error: null,
    });
    const audit = await auditOf(a.id);
    expect(audit.map((e) => e.action)).toEqual([
      'gp_message.retry_scheduled',
      'gp_message.retry_scheduled',
      'gp_message.retry_scheduled',
      'gp_message.sent',
    ]);
    expect(audit.at(-1)!.detail).toMatchObject({ foundByLocalId: true, attempts: 4 });
    await pollGpInbox(riverside);
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(15)) });
    expect((await message(a.id)).status).toBe('acknowledged');
  });

  it('fails a message after the last attempt, with the reason', async () => {
    clock += minutes(60);
    const a = await queuedResult();
    mailbox.dropNext(2, { match: sends });
    await sendQueuedGpMessages(db(), hub, { now: at(), maxAttempts: 2 });
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(2)), maxAttempts: 2 })).toEqual({
      sent: 0,
      retrying: 0,
      failed: 1,
    });
    const row = await message(a.id);
    expect(row).toMatchObject({ status: 'failed', attempts: 2, next_attempt_at: null });
    expect(row.last_error).toMatch(/^Not sent after 2 attempts: Could not reach MESH/);
    expect(atPractice(a.id)).toHaveLength(0);
  });

  it('fails at once when the practice mailbox is unknown to MESH or not recorded, and retries once it is fixed', async () => {
    clock += minutes(60);
    const unknown = await queuedResult({ practice: 'Y00002' });
    const none = await queuedResult({ practice: 'Y00003' });
    expect(await sendQueuedGpMessages(db(), hub, { now: at() })).toEqual({ sent: 0, retrying: 0, failed: 2 });
    const u = await message(unknown.id);
    expect(u).toMatchObject({ status: 'failed', attempts: 1, mesh_message_id: null });
    expect(u.last_error).toBe(
      "MESH will not deliver it to the mailbox Y00002MB: check the practice's mailbox ID, then retry " +
        '(Sending failed: HTTP 417: Unregistered to address (MESH error 12))',
    );
    const n = await message(none.id);
    expect(n.last_error).toBe(
      "Lakeside Practice (Y00003) has no MESH mailbox recorded: add the practice's mailbox, then retry, or send the result another way",
    );
    expect(n.content).toBeNull();
    expect((await auditOf(none.id)).map((e) => e.action)).toEqual(['gp_message.failed']);

    // Staff record Lakeside's mailbox (it uses Moorside's, for the test) and retry.
    await db().updateTable('gp_practice').set({ mesh_mailbox: MOORSIDE.id }).where('ods_code', '=', 'Y00003').execute();
    expect(await retryGpMessage(db(), none.id, office.actor)).toEqual({ resend: false });
    expect(await message(none.id)).toMatchObject({ status: 'queued', attempts: 0, next_attempt_at: null });
    await expect(retryGpMessage(db(), none.id, office.actor)).rejects.toThrow(
      /cannot be retried: it is waiting to be sent/,
    );
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(1)) })).toMatchObject({ sent: 1 });
    expect((await message(none.id)).status).toBe('sent');
    expect(mailbox.messagesTo(MOORSIDE.id).filter((m) => m.localId === none.id)).toHaveLength(1);
    await pollGpInbox(moorside);
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(2)) });
    expect((await message(none.id)).status).toBe('acknowledged');
    // The unknown mailbox stays failed until someone corrects it; the retry then makes it for the new mailbox.
    expect((await message(unknown.id)).status).toBe('failed');
    await db()
      .updateTable('gp_practice')
      .set({ mesh_mailbox: RIVERSIDE.id })
      .where('ods_code', '=', 'Y00002')
      .execute();
    await retryGpMessage(db(), unknown.id, office.actor);
    expect(await message(unknown.id)).toMatchObject({ status: 'queued', content: null });
    expect(await sendQueuedGpMessages(db(), hub, { now: at(minutes(3)) })).toMatchObject({ sent: 1 });
    expect(atPractice(unknown.id)).toHaveLength(1);
    await pollGpInbox(riverside);
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(4)) });
    expect((await message(unknown.id)).status).toBe('acknowledged');
    await db().updateTable('gp_practice').set({ mesh_mailbox: 'Y00002MB' }).where('ods_code', '=', 'Y00002').execute();
  });

  it("fails a message the practice's system refuses, and a retry sends it again as a new message", async () => {
    clock += minutes(60);
    const a = await queuedResult({ result: 'technical_recall' });
    await sendQueuedGpMessages(db(), hub, { now: at() });
    await pollGpInbox(riverside, { respond: () => 'fatal-error', details: 'Patient not registered at this practice' });
    expect(await pollGpMessageUpdates(db(), hub, { now: at(minutes(1)) })).toMatchObject({ delivered: 1, failed: 1 });
    const failed = await message(a.id);
    expect(failed).toMatchObject({ status: 'failed' });
    expect(failed.last_error).toBe(
      "The practice's system could not accept it: Patient not registered at this practice",
    );

    expect(await retryGpMessage(db(), a.id, office.actor)).toEqual({ resend: true });
    expect(await message(a.id)).toMatchObject({
      status: 'queued',
      content: null,
      mesh_message_id: null,
      sent_at: null,
    });
    await sendQueuedGpMessages(db(), hub, { now: at(minutes(2)) });
    const again = await message(a.id);
    const headerId = (again.content as MessageBundle).entry[0]!.resource.id;
    expect(headerId).not.toBe(a.id);
    expect(again.status).toBe('sent');
    expect(atPractice(headerId)).toHaveLength(1);
    await pollGpInbox(riverside);
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(3)) });
    expect((await message(a.id)).status).toBe('acknowledged');
    const retry = (await auditOf(a.id)).find((e) => e.action === 'gp_message.retry')!;
    expect(retry).toMatchObject({ username: 'admin', detail: { resend: true, previousStatus: 'failed' } });
  });

  it("fails a message MESH reports as never collected, from MESH's error report", async () => {
    clock += minutes(60);
    const a = await queuedResult();
    await sendQueuedGpMessages(db(), hub, { now: at() });
    const meshId = (await message(a.id)).mesh_message_id!;
    // The practice's system downloads it but never acknowledges it at MESH.
    expect((await riverside.download(meshId))?.localId).toBe(a.id);
    expect(await pollGpMessageUpdates(db(), hub, { now: at(minutes(1)) })).toMatchObject({ delivered: 1 });
    mailbox.expire(meshId);
    expect(await riverside.listInbox()).not.toContain(meshId);
    expect(await pollGpMessageUpdates(db(), hub, { now: at(minutes(2)) })).toMatchObject({ failed: 1, ignored: 0 });
    const row = await message(a.id);
    expect(row).toMatchObject({
      status: 'failed',
      last_error: 'MESH could not deliver it: Message not collected by the recipient within 5 days',
    });
    expect(mailbox.inbox(HUB.id)).toEqual([]);
  });

  it('alerts on a message not acknowledged within the limit', async () => {
    clock += minutes(60);
    const a = await queuedResult();
    await sendQueuedGpMessages(db(), hub, { now: at() });
    await pollGpInbox(riverside, { respond: () => null });
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(1)) });
    expect((await message(a.id)).status).toBe('delivered');
    const ids = async (now: Date, hours?: number) => (await unacknowledgedAlerts(db(), now, hours)).map((r) => r.id);
    expect(await ids(at(minutes(47 * 60)))).not.toContain(a.id);
    const alerts = await unacknowledgedAlerts(db(), at(minutes(49 * 60)));
    expect(alerts.map((r) => r.id)).toContain(a.id);
    expect(alerts.find((r) => r.id === a.id)).toMatchObject({
      hoursWaiting: 49,
      nhs_number: a.nhsNumber,
      practice_name: 'Riverside Surgery',
    });
    expect(await ids(at(minutes(49 * 60)), 72)).not.toContain(a.id);
  });

  it('sends each message once when two workers run at the same time', async () => {
    clock += minutes(60);
    const messages = await Promise.all(Array.from({ length: 6 }, () => queuedResult()));
    const other = new MeshClient(settings);
    const [one, two] = await Promise.all([
      sendQueuedGpMessages(db(), hub, { now: at() }),
      sendQueuedGpMessages(db(), other, { now: at() }),
    ]);
    expect(one.sent + two.sent).toBe(6);
    for (const m of messages) {
      expect(atPractice(m.id)).toHaveLength(1);
      expect((await message(m.id)).attempts).toBe(1);
    }
    await pollGpInbox(riverside);
    await pollGpMessageUpdates(db(), hub, { now: at(minutes(1)) });
  });

  describe('the GP messages page', () => {
    let withMesh: FastifyInstance;
    let withoutMesh: FastifyInstance;
    const hubApp = (mesh?: MeshSettings) =>
      buildHub({
        db: db(),
        secureCookies: false,
        today: () => TODAY,
        cookieSecret: 'test-cookie-secret-test-cookie-secret',
        ...(mesh ? { mesh } : {}),
      });
    beforeAll(async () => {
      withMesh = await hubApp({ ...settings, pollIntervalSeconds: 3600, acknowledgementLimitHours: 1 });
      withoutMesh = await hubApp();
    });
    afterAll(async () => {
      await withMesh?.close();
      await withoutMesh?.close();
    });
    const signedIn = async (app: FastifyInstance, username: string) => {
      const client = new PageClient(app);
      await client.signIn(username);
      return client;
    };

    it('shows counts, what needs attention with reasons, and retries a failed message', async () => {
      clock += minutes(60);
      const failed = await queuedResult({ practice: 'Y00002' });
      // Sent two hours ago and never acknowledged.
      const late = await queuedResult();
      await sendQueuedGpMessages(db(), hub, { now: new Date(Date.now() - minutes(120)) });
      await pollGpInbox(riverside, { respond: () => null });
      const admin = await signedIn(withMesh, 'admin');
      const page = await admin.get('/communications/gp-messages');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('Messages by status');
      expect(page.body).toContain("Sent from the hub's mailbox HUBMBX01");
      expect(page.body).toContain('Not acknowledged within 1 hour (');
      expect(page.body).toContain('Unregistered to address');
      expect(page.body).toContain(`/communications/gp-messages/${failed.id}/retry`);
      expect(page.body).not.toContain('No MESH mailbox configured');
      const lateRow = page.body.slice(page.body.indexOf('Not acknowledged within'), page.body.indexOf('<h3>Failed'));
      expect(lateRow).toContain(late.nhsNumber.slice(0, 3));
      const viewed = await db()
        .selectFrom('audit_event')
        .select(['username', 'detail'])
        .where('action', '=', 'gp_messages.view')
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow();
      expect(viewed.username).toBe('admin');
      // Who was on the page, by id.
      const shown = viewed.detail as { communicationIds: string[]; participantIds: string[] };
      expect(shown.communicationIds).toEqual(expect.arrayContaining([failed.id, late.id]));
      expect(shown.participantIds).toEqual(expect.arrayContaining([failed.participantId, late.participantId]));
      expect(new Set(shown.communicationIds).size).toBe(shown.communicationIds.length);

      const retried = await admin.post(`/communications/gp-messages/${failed.id}/retry`, {});
      expect(retried.statusCode).toBe(303);
      expect((await auditOf(failed.id)).find((e) => e.action === 'gp_message.retry')).toMatchObject({
        username: 'admin',
      });
      // The worker tries it at once, and MESH still does not know the mailbox.
      await expect
        .poll(async () => (await auditOf(failed.id)).map((e) => e.action).slice(-2), { timeout: 10_000, interval: 100 })
        .toEqual(['gp_message.retry', 'gp_message.failed']);
      expect((await message(failed.id)).status).toBe('failed');

      // Without MESH the retry queues it; asked twice, the second is refused with the reason.
      const other = await signedIn(withoutMesh, 'admin');
      await other.get('/communications/gp-messages');
      expect((await other.post(`/communications/gp-messages/${failed.id}/retry`, {})).statusCode).toBe(303);
      expect((await message(failed.id)).status).toBe('queued');
      await other.get('/communications/gp-messages');
      const again = await other.post(`/communications/gp-messages/${failed.id}/retry`, {});
      expect(again.statusCode).toBe(422);
      expect(again.body).toContain('cannot be retried');
      expect((await other.post('/communications/gp-messages/not-a-uuid/retry', {})).statusCode).toBe(404);
      // Put it back out of the way of later sends.
      await db().updateTable('communication').set({ status: 'failed' }).where('id', '=', failed.id).execute();
    });

    it('refuses to retry a message another hub process is sending now, and it reaches the practice once', async () => {
      clock += minutes(60);
      const a = await queuedResult();
      // A MESH that holds the first worker's send until the test lets it go (then answers 503).
      let release = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      let held = 0;
      const slow = http.createServer((req, res) => {
        held += 1;
        req.resume();
        void released.then(() => {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end('{"errorDescription":"Service unavailable"}');
        });
      });
      await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
      try {
        const port = (slow.address() as AddressInfo).port;
        const first = sendQueuedGpMessages(db(), new MeshClient({ ...settings, url: `http://127.0.0.1:${port}` }), {
          now: at(),
        });
        await expect.poll(() => held, { timeout: 10_000, interval: 20 }).toBe(1);
        expect(await message(a.id)).toMatchObject({ status: 'queued', attempts: 1, last_error: null });

        // Mid-send: no retry, from the store or the page (which says why), and no second worker takes it.
        await expect(retryGpMessage(db(), a.id, office.actor, at())).rejects.toThrow(
          'This message is being sent now: try again in a few minutes',
        );
        const admin = await signedIn(withoutMesh, 'admin');
        await admin.get('/communications/gp-messages');
        const refused = await admin.post(`/communications/gp-messages/${a.id}/retry`, {});
        expect(refused.statusCode).toBe(422);
        expect(refused.body).toContain('There is a problem');
        expect(refused.body).toContain('This message is being sent now: try again in a few minutes');
        expect(refused.body).toContain('href="#attention"');
        expect(new Date((await message(a.id)).next_attempt_at!).getTime()).toBe(at(minutes(5)).getTime());
        await sendQueuedGpMessages(db(), hub, { now: at(minutes(1)) });
        expect(atPractice(a.id)).toHaveLength(0);
        expect((await message(a.id)).attempts).toBe(1);

        // The held send fails; now it waits for its next try, and staff may send it at once.
        release();
        expect(await first).toEqual({ sent: 0, retrying: 1, failed: 0 });
        expect((await message(a.id)).last_error).toMatch(/HTTP 503/);
        expect(await retryGpMessage(db(), a.id, office.actor, at(minutes(1)))).toEqual({ resend: false });
        // Its second try asks MESH about the local id (unknown: 403) and sends it.
        const summary = await sendQueuedGpMessages(db(), hub, { now: at(minutes(1)) });
        expect(summary.sent).toBeGreaterThanOrEqual(1);
        expect(atPractice(a.id)).toHaveLength(1);
        expect(await message(a.id)).toMatchObject({ status: 'sent', attempts: 2 });
        expect((await auditOf(a.id)).map((e) => e.action)).toEqual([
          'gp_message.retry_scheduled',
          'gp_message.retry',
          'gp_message.sent',
        ]);
        await pollGpInbox(riverside);
        await pollGpMessageUpdates(db(), hub, { now: at(minutes(2)) });
        expect((await message(a.id)).status).toBe('acknowledged');
      } finally {
        release();
        slow.closeAllConnections();
        await new Promise((resolve) => slow.close(resolve));
      }
    });

    it('says so when no MESH mailbox is configured, checks its filter, and is only for staff who send letters', async () => {
      const admin = await signedIn(withoutMesh, 'admin');
      const page = await admin.get('/communications/gp-messages');
      expect(page.body).toContain('No MESH mailbox configured: GP messages are queued');
      const filtered = await admin.get('/communications/gp-messages?status=acknowledged');
      expect(filtered.statusCode).toBe(200);
      expect(filtered.body).toMatch(/<option value="acknowledged" selected/);
      const bad = await admin.get('/communications/gp-messages?status=lost');
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('There is a problem');
      expect(bad.body).toContain('href="#status"');
      const reader = await signedIn(withoutMesh, 'reader');
      expect((await reader.get('/communications/gp-messages')).statusCode).toBe(403);
    });

    it('runs the worker by itself when MESH is configured', async () => {
      const a = await queuedResult();
      const app = await hubApp({ ...settings, pollIntervalSeconds: 0.2 });
      try {
        await expect.poll(async () => (await message(a.id)).status, { timeout: 10_000, interval: 100 }).toBe('sent');
        await pollGpInbox(riverside);
        await expect
          .poll(async () => (await message(a.id)).status, { timeout: 10_000, interval: 100 })
          .toBe('acknowledged');
      } finally {
        await app.close();
      }
    });
  });
});
