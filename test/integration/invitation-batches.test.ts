import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHl7Listener } from '../../src/hl7/listener.js';
import { mllpFrame } from '../../src/hl7/mllp.js';
import { previewBatch } from '../../src/store/invitation-batches.js';
import { freshDatabase } from '../support/database.js';
import { freePort } from '../support/dcmtk.js';
import { addParticipant, smallOffice, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

/** A batch for 12 January 2027 drawn by outcode LS6, with one woman for each way in or out of it. */
describe('invitation batches: who is in, who is left out and why', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let app: FastifyInstance;
  const batchDate = '2027-01-12';
  const who: Record<string, string> = {};

  /** Sends one message to an HL7 listener on this database and returns its ACK's MSA-1. */
  const sendHl7 = async (text: string) => {
    const listener = await startHl7Listener({
      database,
      port: await freePort(),
      host: '127.0.0.1',
      log: () => undefined,
    });
    try {
      const ack = await new Promise<string>((resolve, reject) => {
        const socket = connect(listener.port, '127.0.0.1', () => socket.write(mllpFrame(text)));
        let received = '';
        socket.on('data', (chunk) => {
          received += chunk.toString('utf8');
          if (received.includes('\x1c\r')) {
            socket.end();
            resolve(received);
          }
        });
        socket.on('error', reject);
      });
      expect(/MSA\|([A-Z]{2})/.exec(ack)?.[1], ack).toBe('AA');
    } finally {
      await listener.close();
    }
  };

  const screened = async (participantId: string, on: string) =>
    database.db
      .insertInto('episode')
      .values({ participant_id: participantId, bso_code: 'TST', episode_type: 'R', opened_on: on, screened_on: on })
      .execute();

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    await database.db.insertInto('screening_office').values({ code: 'OTH', name: 'Other Screening Office' }).execute();
    await database.db
      .insertInto('gp_practice')
      .values({ ods_code: 'Y00099', name: 'Far Away Surgery', postcode: 'YO1 7HH', bso_code: 'OTH' })
      .execute();
    const add = async (name: string, more: Parameters<typeof addParticipant>[1] = {}) => {
      const p = await addParticipant(database.db, { family_name: name, postcode: 'LS6 2AB', ...more });
      who[name] = p.id;
      return p.id;
    };
    await add('Firstcall', { date_of_birth: '1977-05-12' }); // 49 years 8 months on the batch date
    await screened(await add('Recall', { date_of_birth: '1960-03-01' }), '2024-07-01');
    await screened(await add('Recent', { date_of_birth: '1960-03-02' }), '2025-07-13');
    await add('Ceased', { date_of_birth: '1960-03-03', ceased_reason: 'Mental capacity', ceased_on: '2024-01-01' });
    await add('Died', { date_of_birth: '1960-03-04', date_of_death: '2026-10-01' });
    await add('Young', { date_of_birth: '1977-05-13' }); // a day short of 49 years 8 months
    await add('Elsewhere', { date_of_birth: '1960-03-05' });
    await database.db
      .updateTable('participant')
      .set({ gp_practice_code: 'Y00099', bso_code: 'OTH' })
      .where('id', '=', who.Elsewhere!)
      .execute();
    await add('Otheroutcode', { date_of_birth: '1960-03-06', postcode: 'LS1 4AP' });
    // In treatment: her Trust's EPR sends a breast cancer diagnosis over the symptomatic link (HL7 v2, MLLP).
    const treated = await addParticipant(database.db, {
      family_name: 'Treated',
      date_of_birth: '1960-03-07',
      postcode: 'LS6 2AB',
    });
    await sendHl7(
      [
        'MSH|^~\\&|EPR|RX1|SCREENING-HUB|NHSBSP|20261103101500||ADT^A08^ADT_A01|BATCH1|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8',
        'EVN|A08|20261103101500',
        `PID|1||${treated.nhs_number}^^^NHS^NH||Treated^Jane||19600307|F`,
        'DG1|1||C50.9^Malignant neoplasm of breast, unspecified^I10||20261020|F',
      ].join('\r'),
    );
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  it('selects and excludes each woman by the pathway rules', async () => {
    const preview = await previewBatch(database.db, {
      bsoCode: 'TST',
      criterion: { kind: 'outcode', outcode: 'ls6' },
      batchDate,
    });
    const outcome = Object.fromEntries(
      [...preview.selected, ...preview.excluded].map((c) => [
        c.familyName,
        c.selection.selected ? c.selection.basis : c.selection.code,
      ]),
    );
    expect(outcome).toEqual({
      Firstcall: 'first_call',
      Recall: 'routine_recall',
      Recent: 'safety_period',
      Ceased: 'ceased',
      Died: 'died',
      Young: 'under_age',
      Elsewhere: 'moved_out',
      Treated: 'suspended',
    });
    expect(preview.excludedBy).toEqual({
      safety_period: 1,
      ceased: 1,
      died: 1,
      under_age: 1,
      moved_out: 1,
      suspended: 1,
    });
    const treated = preview.excluded.find((c) => c.familyName === 'Treated')!;
    expect(treated.selection.explanation).toMatch(/^Invitations suspended since 20 October 2026: /);
    const recall = preview.selected.find((c) => c.familyName === 'Recall')!;
    expect(recall.lastScreenedOn).toBe('2024-07-01');
  });

  it('draws by GP practice or month of birth too, month of birth keeping to the office', async () => {
    const byPractice = await previewBatch(database.db, {
      bsoCode: 'TST',
      criterion: { kind: 'gp_practice', odsCode: 'Y00001' },
      batchDate,
    });
    expect([...byPractice.selected, ...byPractice.excluded].map((c) => c.familyName)).not.toContain('Elsewhere');
    const byMonth = await previewBatch(database.db, {
      bsoCode: 'TST',
      criterion: { kind: 'birth_month', month: 3 },
      batchDate,
    });
    expect([...byMonth.selected, ...byMonth.excluded].map((c) => c.familyName).sort()).toEqual(
      ['Ceased', 'Died', 'Otheroutcode', 'Recall', 'Recent', 'Treated'].sort(),
    );
  });

  it('shows the batch to an admin with counts and reasons, audited; says what is wrong with the form', async () => {
    const client = new PageClient(app);
    await client.signIn('admin');
    const form = await client.get('/invitations/batch');
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('Draw the batch by');

    const query = new URLSearchParams({
      bsoCode: 'TST',
      by: 'outcode',
      outcode: 'LS6',
      'batchDate[day]': '12',
      'batchDate[month]': '1',
      'batchDate[year]': '2027',
    });
    const shown = await client.get(`/invitations/batch?${query.toString()}`);
    expect(shown.statusCode).toBe(200);
    expect(shown.body).toContain('2 to invite, 6 left out');
    expect(shown.body).toContain('Ceased on 1 January 2024: Best interests (Mental Capacity Act 2005)');
    expect(shown.body).toContain('Moved to another office');
    expect(shown.body).toContain('Invitable from 13 January 2027 (49 years 8 months)');
    const audit = await database.db
      .selectFrom('audit_event')
      .select(['username', 'detail'])
      .where('action', '=', 'invitations.preview')
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ username: 'admin', detail: { selected: 2, excluded: 6 } });

    const wrong = new URLSearchParams({ bsoCode: 'TST', by: 'outcode', outcode: 'LS', 'batchDate[day]': '31' });
    const refused = await client.get(`/invitations/batch?${wrong.toString()}`);
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('There is a problem');
    expect(refused.body).toContain('Enter the first half of a postcode, like LS1 or SW1A');
    expect(refused.body).toContain('The first appointment date must include a month and year');
    const otherOffice = new URLSearchParams({ bsoCode: 'TST', by: 'gp_practice', odsCode: 'Y00099' });
    expect((await client.get(`/invitations/batch?${otherOffice.toString()}`)).body).toContain(
      'That GP practice is in another office&#39;s area',
    );
  });

  it('shows the suspension on her record; staff lift it with a reason, audited, and the next batch takes her', async () => {
    const treatedId = (
      await database.db
        .selectFrom('participant')
        .select('id')
        .where('family_name', '=', 'Treated')
        .executeTakeFirstOrThrow()
    ).id;
    const client = new PageClient(app);
    await client.signIn('admin');
    const record = await client.get(`/participants/${treatedId}`);
    expect(record.body).toContain('Routine invitations suspended');
    expect(record.body).toContain('Since 20 October 2026');
    const noReason = await client.post(`/participants/${treatedId}/suspension/lift`, { liftReason: ' ' });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.body).toContain('Give the reason for lifting the suspension');
    const lifted = await client.post(`/participants/${treatedId}/suspension/lift`, {
      liftReason: 'Treatment finished; the breast surgeon says routine screening can resume',
    });
    expect(lifted.statusCode).toBe(303);
    expect((await client.get(`/participants/${treatedId}`)).body).not.toContain('Routine invitations suspended');
    const audit = await database.db
      .selectFrom('audit_event')
      .select(['username', 'action'])
      .where('participant_id', '=', treatedId)
      .where('username', '=', 'admin')
      .execute();
    expect(audit.map((a) => a.action)).toContain('invitations.suspension_lift');
    const preview = await previewBatch(database.db, {
      bsoCode: 'TST',
      criterion: { kind: 'outcode', outcode: 'LS6' },
      batchDate,
    });
    expect(preview.selected.map((c) => c.familyName)).toContain('Treated');
  });

  it('is for staff who plan rounds: a mammographer may not', async () => {
    const client = new PageClient(app);
    await client.signIn('mammographer');
    expect((await client.get('/invitations/batch')).statusCode).toBe(403);
    expect(office.users.mammographer).toBeDefined();
  });
});
