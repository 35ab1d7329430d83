import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

/** The three boxes of an NHS date input for `name`, on TODAY (2026-11-23). */
const todayParts = (name: string) => ({ [`${name}[day]`]: '23', [`${name}[month]`]: '11', [`${name}[year]`]: '2026' });

/** Text of a page without its tags, for checking what staff read. */
const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ');

describe.each(BACKENDS)('ceasing and reinstating from the record pages (%s)', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let admin: PageClient;
  let office: Office;

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    app = await testHub(database.db);
    admin = new PageClient(app);
    await admin.signIn('admin');
  });
  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const participant = (id: string) =>
    database.db
      .selectFrom('participant')
      .select(['ceased_reason', 'ceased_on', 'version'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('refuses a ceasing without its evidence, ceases with it, shows it, reinstates her, and audits both', async () => {
    const p = await addParticipant(database.db, { given_name: 'Cecily', family_name: 'Ceased' });
    const record = await admin.get(`/participants/${p.id}`);
    expect(record.body).toContain(`href="/participants/${p.id}/cease"`);
    expect(record.body).not.toContain(`/participants/${p.id}/reinstate`);

    const form = await admin.get(`/participants/${p.id}/cease`);
    expect(form.statusCode).toBe(200);
    expect(text(form.body)).toContain('Needs her signed request, after being told what screening offers.');
    // A very high risk withdrawal is only offered to a woman on very high risk screening.
    expect(form.body).not.toContain('value="very_high_risk_withdrawal"');

    const refused = await admin.post(`/participants/${p.id}/cease`, {
      reason: 'informed_choice',
      ...todayParts('ceasedOn'),
      evidence: '  ',
      version: String(p.version),
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('There is a problem');
    expect(refused.body).toContain('href="#evidence"');
    expect(refused.body).toContain('Record her signed request, after being told what screening offers');
    expect((await participant(p.id)).ceased_reason).toBeNull();

    const noReasonNoDate = await admin.post(`/participants/${p.id}/cease`, {
      'ceasedOn[day]': '31',
      'ceasedOn[month]': '2',
      'ceasedOn[year]': '2026',
      evidence: 'Letter',
      version: String(p.version),
    });
    expect(noReasonNoDate.statusCode).toBe(400);
    expect(noReasonNoDate.body).toContain('href="#reason"');
    expect(noReasonNoDate.body).toContain('Choose a reason for ceasing');
    expect(noReasonNoDate.body).toContain('href="#ceasedOn-day"');
    expect(noReasonNoDate.body).toContain('Date of ceasing must be a real date');

    const ceased = await admin.post(`/participants/${p.id}/cease`, {
      reason: 'informed_choice',
      ...todayParts('ceasedOn'),
      evidence: 'Signed letter of 20 November 2026, ref CC/123',
      version: String(p.version),
    });
    expect(ceased.statusCode).toBe(303);
    expect(ceased.headers.location).toBe(`/participants/${p.id}`);
    expect(await participant(p.id)).toEqual({ ceased_reason: 'informed_choice', ceased_on: TODAY, version: 2 });

    const after = await admin.get(`/participants/${p.id}`);
    const page = text(after.body);
    expect(page).toContain('Ceased from screening: Informed choice. She will not be invited.');
    expect(after.body).toMatch(/nhsuk-tag--grey[^>]*>\s*Ceased\s*</);
    expect(page).toContain(
      'Ceased from screening on 23 November 2026: Informed choice. She is not invited. To reinstate her: her own request, at any time.',
    );
    expect(page).toContain('Evidence: Signed letter of 20 November 2026, ref CC/123');
    expect(page).toContain('By Alex Admin');
    expect(after.body).toContain(`href="/participants/${p.id}/reinstate"`);
    expect(after.body).not.toContain(`href="/participants/${p.id}/cease"`);

    // Ceasing her again is refused until she is reinstated.
    expect(text((await admin.get(`/participants/${p.id}/cease`)).body)).toContain(
      'She is already ceased from screening (Informed choice',
    );

    // A form opened before the ceasing is stale: nothing is saved.
    const stale = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: 'Her own request',
      reason: 'Changed her mind',
      version: '1',
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.body).toContain('changed by someone else after you opened it');

    const reinstateForm = await admin.get(`/participants/${p.id}/reinstate`);
    expect(text(reinstateForm.body)).toContain('Her own request, at any time');
    const missing = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: '',
      reason: '',
      version: '2',
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('href="#decidedBy"');
    expect(missing.body).toContain('Say who decided: her own request, at any time');
    expect(missing.body).toContain('href="#reason"');

    const reinstated = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: 'Her own request, by phone',
      reason: 'She would like to be invited again',
      version: '2',
    });
    expect(reinstated.statusCode).toBe(303);
    expect(await participant(p.id)).toEqual({ ceased_reason: null, ceased_on: null, version: 3 });
    const back = text((await admin.get(`/participants/${p.id}`)).body);
    expect(back).toContain(
      'Reinstated on 23 November 2026, after being ceased (Informed choice). Who decided: Her own request, by phone. Why: She would like to be invited again.',
    );
    expect(back).toMatch(/Overdue Was due on 14 May 2019/); // born 1966-05-14, never screened: due by 53
    expect(back).toContain('Who decided: Her own request, by phone');
    expect(back).toContain('Had been ceased on 23 November 2026: Informed choice');

    const audit = await database.db
      .selectFrom('audit_event')
      .select(['action', 'username', 'entity_id', 'detail'])
      .where('participant_id', '=', p.id)
      .where('action', 'in', ['participant.cease', 'participant.reinstate'])
      .orderBy('id')
      .execute();
    expect(audit.map((a) => [a.action, a.username, a.entity_id])).toEqual([
      ['participant.cease', 'admin', p.id],
      ['participant.reinstate', 'admin', p.id],
    ]);
    expect(audit[0]?.detail).toMatchObject({ reason: 'informed_choice', on: TODAY });
    expect(audit[1]?.detail).toMatchObject({ ceasedFor: 'informed_choice', decidedBy: 'Her own request, by phone' });

    const history = await database.db
      .selectFrom('ceasing_event')
      .select(['id', 'kind', 'reinstates_id'])
      .where('participant_id', '=', p.id)
      .orderBy('recorded_at')
      .execute();
    expect(history.map((e) => e.kind)).toEqual(['cease', 'reinstate']);
    expect(history[1]?.reinstates_id).toBe(history[0]?.id);
    // The history is append-only.
    await expect(
      sql`update ceasing_event set evidence = 'changed' where participant_id = ${p.id}`.execute(database.db),
    ).rejects.toThrow(/append-only/);
    await expect(sql`delete from ceasing_event where participant_id = ${p.id}`.execute(database.db)).rejects.toThrow(
      /append-only/,
    );
  });

  it('keeps a woman who withdrew from very high risk screening in routine screening, under a later ceasing too', async () => {
    const p = await addParticipant(database.db, {
      given_name: 'Vera',
      family_name: 'Highrisk',
      date_of_birth: '1970-03-02',
    });
    await database.db
      .updateTable('participant')
      .set({ very_high_risk: true, vhr_risk_group: 'brca_palb2', vhr_since: '2020-01-06' })
      .where('id', '=', p.id)
      .execute();
    const vhr = text((await admin.get(`/participants/${p.id}`)).body);
    expect(vhr).toContain('Very high risk (BRCA1, BRCA2 or PALB2 carrier): screened every 12 months');
    expect(vhr).toContain('Mammography (and MRI if her breasts are dense), due 6 January 2020');

    expect((await admin.get(`/participants/${p.id}/cease`)).body).toContain('value="very_high_risk_withdrawal"');
    const withdrawn = await admin.post(`/participants/${p.id}/cease`, {
      reason: 'very_high_risk_withdrawal',
      ...todayParts('ceasedOn'),
      evidence: 'Her letter of 21 November 2026',
      version: '1',
    });
    expect(withdrawn.statusCode).toBe(303);
    const routine = await admin.get(`/participants/${p.id}`);
    expect(text(routine.body)).toContain(
      'Withdrew from very high risk screening on 23 November 2026: she is screened routinely instead. Was due on 2 March 2023',
    );
    expect(text(routine.body)).not.toContain('Do not invite or book');
    // She can still be ceased from screening altogether, and returned to surveillance.
    expect(routine.body).toContain(`href="/participants/${p.id}/cease"`);
    expect(text(routine.body)).toContain('Return to very high risk screening');
    // And, being in routine screening, she can be booked.
    expect(routine.body).toContain(`href="/participants/${p.id}/book"`);
    const { tomorrowClinic } = await newClinics(database.db);
    await bookAppointment(database.db, { clinicId: tomorrowClinic, participantId: p.id }, office.actor, TODAY);

    const ceased = await admin.post(`/participants/${p.id}/cease`, {
      reason: 'bilateral_mastectomy',
      ...todayParts('ceasedOn'),
      evidence: 'Mr A Surgeon, consultant breast surgeon, clinic letter 22 November 2026',
      version: '2',
    });
    expect(ceased.statusCode).toBe(303);
    expect((await participant(p.id)).ceased_reason).toBe('bilateral_mastectomy');

    // Reinstating the mastectomy ceasing leaves the withdrawal in force; reinstating that returns her to surveillance.
    const first = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: 'Ms B Radiologist, consultant radiologist',
      reason: 'Breast tissue remains on the left side',
      version: '3',
    });
    expect(first.statusCode).toBe(303);
    expect(await participant(p.id)).toEqual({
      ceased_reason: 'very_high_risk_withdrawal',
      ceased_on: TODAY,
      version: 4,
    });
    const second = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: 'Her own request',
      reason: 'Wants annual screening again',
      version: '4',
    });
    expect(second.statusCode).toBe(303);
    expect((await participant(p.id)).ceased_reason).toBeNull();
    expect(text((await admin.get(`/participants/${p.id}`)).body)).toContain(
      'Very high risk (BRCA1, BRCA2 or PALB2 carrier)',
    );
  });

  it('refers a woman for very high risk screening, checks the radiotherapy age, and takes her off it again', async () => {
    const p = await addParticipant(database.db, {
      given_name: 'Rita',
      family_name: 'Referral',
      date_of_birth: '1985-06-15',
    });
    const before = await admin.get(`/participants/${p.id}`);
    expect(before.body).toContain(`href="/participants/${p.id}/very-high-risk"`);
    expect(text(before.body)).toContain('Refer for very high risk screening');

    const form = await admin.get(`/participants/${p.id}/very-high-risk`);
    expect(text(form.body)).toContain('MRI from 25; MRI and mammography from 40');
    // Radiotherapy at 22 does not fit the 10 to 19 group; no referrer; both said at once.
    const refused = await admin.post(`/participants/${p.id}/very-high-risk`, {
      version: '1',
      riskGroup: 'radiotherapy_aged_10_to_19',
      ...todayParts('since'),
      'radiotherapyOn[day]': '1',
      'radiotherapyOn[month]': '9',
      'radiotherapyOn[year]': '2007',
      referredBy: ' ',
    });
    expect(refused.statusCode).toBe(400);
    expect(text(refused.body)).toContain(
      'The date of radiotherapy makes her 22 then: this group is for radiotherapy at 10 to 19',
    );
    expect(text(refused.body)).toContain('Say who referred her');
    expect((await participant(p.id)).version).toBe(1);

    const referred = await admin.post(`/participants/${p.id}/very-high-risk`, {
      version: '1',
      riskGroup: 'radiotherapy_aged_20_to_35',
      ...todayParts('since'),
      'radiotherapyOn[day]': '1',
      'radiotherapyOn[month]': '9',
      'radiotherapyOn[year]': '2007',
      referredBy: 'Dr C Oncologist, late effects clinic, letter of 20 November 2026',
    });
    expect(referred.statusCode).toBe(303);
    const vhr = text((await admin.get(`/participants/${p.id}`)).body);
    expect(vhr).toContain('Very high risk (Radiotherapy to breast tissue when aged 20 to 35)');
    const changes = await database.db
      .selectFrom('participant_change')
      .select(['field', 'new_value', 'source', 'reason'])
      .where('participant_id', '=', p.id)
      .orderBy('field')
      .execute();
    expect(changes.map((c) => [c.field, c.new_value, c.source])).toEqual([
      ['very_high_risk', 'true', 'staff'],
      ['vhr_radiotherapy_on', '2007-09-01', 'staff'],
      ['vhr_risk_group', 'radiotherapy_aged_20_to_35', 'staff'],
      ['vhr_since', TODAY, 'staff'],
    ]);

    // A stale form is not saved over the change.
    const stale = await admin.post(`/participants/${p.id}/very-high-risk/end`, {
      version: '1',
      endReason: 'Reassessed',
    });
    expect(stale.statusCode).toBe(409);
    const noReason = await admin.post(`/participants/${p.id}/very-high-risk/end`, { version: '2', endReason: '' });
    expect(text(noReason.body)).toContain('Give the reason: who reassessed her risk');
    const ended = await admin.post(`/participants/${p.id}/very-high-risk/end`, {
      version: '2',
      endReason: 'Genetics service reassessment, letter of 21 November 2026',
    });
    expect(ended.statusCode).toBe(303);
    const after = await database.db
      .selectFrom('participant')
      .select(['very_high_risk', 'vhr_risk_group', 'vhr_since', 'vhr_radiotherapy_on', 'version'])
      .where('id', '=', p.id)
      .executeTakeFirstOrThrow();
    expect(after).toEqual({
      very_high_risk: false,
      vhr_risk_group: null,
      vhr_since: null,
      vhr_radiotherapy_on: null,
      version: 3,
    });
    const audit = await database.db
      .selectFrom('audit_event')
      .select('detail')
      .where('action', '=', 'participant.very_high_risk')
      .where('participant_id', '=', p.id)
      .execute();
    expect(audit).toHaveLength(2);
  });

  it("reinstates a woman ceased by an older system (the cohort feed's text), and keeps the other roles out", async () => {
    const p = await addParticipant(database.db, { ceased_reason: 'Mental capacity', ceased_on: '2024-02-01' });
    const record = text((await admin.get(`/participants/${p.id}`)).body);
    expect(record).toContain('Ceased from screening on 1 February 2024: Best interests (Mental Capacity Act 2005)');
    const done = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: 'Best-interests review with her GP, Dr C',
      reason: 'She has regained capacity and asks to be screened',
      version: '1',
    });
    expect(done.statusCode).toBe(303);
    const row = await database.db
      .selectFrom('ceasing_event')
      .select(['ceasing_reason', 'ceased_on', 'reinstates_id'])
      .where('participant_id', '=', p.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ ceasing_reason: 'Mental capacity', ceased_on: '2024-02-01', reinstates_id: null });

    const notCeased = await admin.post(`/participants/${p.id}/reinstate`, {
      ...todayParts('reinstatedOn'),
      decidedBy: 'x',
      reason: 'y',
      version: '2',
    });
    expect(notCeased.statusCode).toBe(400);
    expect(notCeased.body).toContain('nothing to reinstate');

    const reader = new PageClient(app);
    await reader.signIn('reader');
    expect((await reader.get(`/participants/${p.id}/cease`)).statusCode).toBe(403);
    expect((await reader.get(`/participants/${p.id}`)).body).not.toContain(`/participants/${p.id}/cease`);
    const mammographer = new PageClient(app);
    await mammographer.signIn('mammographer');
    expect((await mammographer.get(`/participants/${p.id}/cease`)).statusCode).toBe(200);
  });
});
