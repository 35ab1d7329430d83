import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CohortRow } from '../../src/cohort/cohort-csv.js';
import { importCohort } from '../../src/store/cohort-import.js';
import { listDataConflicts, resolveDataConflict } from '../../src/store/data-conflicts.js';
import { correctDemographics } from '../../src/store/participants.js';
import { addItem, correctItem, recordItemAbsent, type ItemInput } from '../../src/store/record-items.js';
import { cohortCsv as csv, cohortRow } from '../support/cohort-rows.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

const row = (overrides: Partial<CohortRow> = {}): CohortRow =>
  cohortRow({
    familyName: 'Conflictwoman',
    givenName: 'Dora',
    dateOfBirth: '1968-02-03',
    addressLine1: '3 Feed Street',
    effectiveDate: '2026-10-01',
    ...overrides,
  });

describe.each(BACKENDS)('data conflicts (%s)', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let app: FastifyInstance;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });
  const db = () => database.db;
  const run = (...rows: CohortRow[]) =>
    importCohort(db(), [csv(...rows)], { actor: office.actor, today: TODAY, sourceName: 'cohort.csv' });
  const person = (nhsNumber: string) =>
    db().selectFrom('participant').selectAll().where('nhs_number', '=', nhsNumber).executeTakeFirstOrThrow();
  const openFor = async (participantId: string) =>
    (await listDataConflicts(db(), 'open')).filter((c) => c.participant_id === participantId);

  /** A woman from the feed whose address the trailer corrected on 20 November. */
  async function correctedOnTheTrailer() {
    const dora = row();
    await run(dora);
    const p = await person(dora.nhsNumber);
    await correctDemographics(
      db(),
      {
        participantId: p.id,
        expectedVersion: p.version,
        changes: { address_line1: '9 New Road', postcode: 'LS1 4AP' },
        source: 'gateway',
        sourceDate: '2026-11-20',
        reason: 'Corrected on the trailer by Morgan',
      },
      office.actor,
    );
    return { dora, id: p.id };
  }

  it('holds a BS-Select address dated after a trailer correction as a conflict, and leaves the record alone', async () => {
    const { dora, id } = await correctedOnTheTrailer();
    const before = await person(dora.nhsNumber);
    const feed = { ...dora, addressLine1: '5 Old Lane', postcode: 'LS2 9JT', effectiveDate: '2026-11-22' };
    const summary = await run(feed);
    expect(summary).toMatchObject({ conflicts: 1, amended: 0, fieldsChanged: 0 });
    const after = await person(dora.nhsNumber);
    expect(after).toMatchObject({ address_line1: '9 New Road', postcode: 'LS1 4AP', version: before.version });
    const [conflict, ...more] = await openFor(id);
    expect(more).toHaveLength(0);
    expect(conflict).toMatchObject({
      kind: 'field',
      subject: 'address',
      current_source: 'gateway',
      current_on: '2026-11-20',
      incoming_source: 'bs_select',
      incoming_on: '2026-11-22',
      incoming_value: { address_line1: '5 Old Lane', address_line2: null, town: 'Leeds', postcode: 'LS2 9JT' },
      current_value: { address_line1: '9 New Road', address_line2: null, town: 'Leeds', postcode: 'LS1 4AP' },
    });
    expect(conflict!.precedence).toMatch(/feed row dated after an in-person correction/);

    // The same file again changes nothing; a newer row updates the open conflict instead of adding one.
    expect(await run(feed)).toMatchObject({ conflicts: 1, amended: 0 });
    expect((await openFor(id)).map((c) => c.version)).toEqual([1]);
    await run({ ...feed, postcode: 'LS2 7UE', effectiveDate: '2026-11-23' });
    const [updated, ...none] = await openFor(id);
    expect(none).toHaveLength(0);
    expect(updated).toMatchObject({ id: conflict!.id, version: 2, incoming_on: '2026-11-23' });
    expect((updated!.incoming_value as Record<string, string>).postcode).toBe('LS2 7UE');
  });

  it('raises nothing when the feed agrees with the correction, or is dated before it', async () => {
    const { dora, id } = await correctedOnTheTrailer();
    const same = await run({ ...dora, addressLine1: '9 New Road', postcode: 'LS1 4AP', effectiveDate: '2026-11-22' });
    expect(same).toMatchObject({ conflicts: 0, unchanged: 1 });
    const older = await run({ ...dora, effectiveDate: '2026-11-01' });
    expect(older).toMatchObject({ conflicts: 0, olderThanRecord: 1 });
    expect(await openFor(id)).toHaveLength(0);
    expect(await person(dora.nhsNumber)).toMatchObject({ address_line1: '9 New Road', postcode: 'LS1 4AP' });
  });

  const implants = (source: 'gp' | 'participant', side: ItemInput['side'], sourceDate: string): ItemInput => ({
    kind: 'implants',
    side,
    value: null,
    details: '',
    temporaryUntil: null,
    source,
    sourceDate,
  });
  const currentImplants = (participantId: string) =>
    db()
      .selectFrom('record_item')
      .selectAll()
      .where('participant_id', '=', participantId)
      .where('kind', '=', 'implants')
      .where('superseded_at', 'is', null)
      .where('removed_at', 'is', null)
      .execute();

  it('holds the GP saying no implants against her saying she has them, and the other way round', async () => {
    await run(row());
    const her = (await db().selectFrom('participant').select('id').orderBy('created_at', 'desc').execute())[0]!.id;
    const itemId = await addItem(db(), her, implants('participant', 'bilateral', '2026-11-20'), office.actor);
    const outcome = await recordItemAbsent(
      db(),
      her,
      { kind: 'implants', source: 'gp', sourceDate: '2026-11-21', details: 'No implants coded' },
      office.actor,
    );
    expect(outcome).toBe('conflict');
    expect((await currentImplants(her)).map((i) => i.id)).toEqual([itemId]);
    const [conflict] = await openFor(her);
    expect(conflict).toMatchObject({
      kind: 'record_item',
      subject: 'implants',
      current_value: { present: true, side: 'bilateral', itemId },
      incoming_value: { present: false, side: null },
      incoming_source: 'gp',
    });
    // The GP then gives a side: the open conflict is brought up to date, not doubled.
    expect(await addItem(db(), her, implants('gp', 'left', '2026-11-22'), office.actor)).toBe(itemId);
    const open = await openFor(her);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ version: 2, incoming_value: { present: true, side: 'left' } });
    // Agreement is not a conflict; a correction by the same source is not one either.
    const other = (await run(row()),
    await db().selectFrom('participant').select('id').orderBy('created_at', 'desc').execute())[0]!.id;
    const gpItem = await addItem(db(), other, implants('gp', 'left', '2026-01-01'), office.actor);
    await addItem(db(), other, implants('participant', 'left', '2026-11-20'), office.actor);
    await correctItem(db(), gpItem, implants('gp', 'right', '2026-02-01'), office.actor);
    expect(await openFor(other)).toHaveLength(0);
    // Her saying she has none against the GP's implants: a conflict, and the GP's item stays.
    expect(
      await recordItemAbsent(
        db(),
        other,
        { kind: 'implants', source: 'participant', sourceDate: '2026-11-23', details: 'Removed in 2025' },
        office.actor,
      ),
    ).toBe('conflict');
    expect(await currentImplants(other)).not.toHaveLength(0);
    // Staff keep the GP's item: the same statement from her again is not raised again.
    const [held] = await openFor(other);
    await resolveDataConflict(
      db(),
      { conflictId: held!.id, expectedVersion: held!.version, resolution: 'kept_current', reason: 'Seen on the scan' },
      office.actor,
      TODAY,
    );
    expect(
      await recordItemAbsent(
        db(),
        other,
        { kind: 'implants', source: 'participant', sourceDate: '2026-11-23', details: 'Removed in 2025' },
        office.actor,
      ),
    ).toBe('declined');
    expect(await openFor(other)).toHaveLength(0);
    // Nothing on record agrees with "none".
    const third = (await run(row()),
    await db().selectFrom('participant').select('id').orderBy('created_at', 'desc').execute())[0]!.id;
    expect(
      await recordItemAbsent(
        db(),
        third,
        { kind: 'implants', source: 'gp', sourceDate: TODAY, details: '' },
        office.actor,
      ),
    ).toBe('agrees');
  });

  it('lets an admin resolve conflicts of each kind on the page, with a reason, both ways, audited', async () => {
    // A field conflict, kept: the declined value does not come back.
    const kept = await correctedOnTheTrailer();
    const feed = { ...kept.dora, addressLine1: '5 Old Lane', postcode: 'LS2 9JT', effectiveDate: '2026-11-22' };
    await run(feed);
    // A field conflict, applied.
    const applied = await correctedOnTheTrailer();
    const appliedFeed = {
      ...applied.dora,
      addressLine1: '7 Moved Street',
      postcode: 'LS7 3PQ',
      effectiveDate: '2026-11-22',
    };
    await run(appliedFeed);
    // An implants conflict, applied: her item is removed.
    await run(row({ familyName: 'Implantwoman' }));
    const her = (
      await db()
        .selectFrom('participant')
        .select('id')
        .where('family_name', '=', 'Implantwoman')
        .executeTakeFirstOrThrow()
    ).id;
    await addItem(db(), her, implants('participant', 'left', '2026-11-01'), office.actor);
    await recordItemAbsent(
      db(),
      her,
      { kind: 'implants', source: 'gp', sourceDate: '2026-11-10', details: '' },
      office.actor,
    );

    const admin = new PageClient(app);
    await admin.signIn('admin');
    const record = await admin.get(`/participants/${kept.id}`);
    expect(record.body).toContain('1 data conflict to resolve');
    const queue = await admin.get('/conflicts');
    expect(queue.statusCode).toBe(200);
    expect(queue.body).toContain('Personal details: Address');
    expect(queue.body).toContain('Clinical history: Breast implants');
    expect(queue.body).toContain('5 Old Lane');
    expect(queue.body).toContain('No breast implants');
    const versionOf = async (participantId: string) => String((await openFor(participantId))[0]!.version);
    const idOf = async (participantId: string) => (await openFor(participantId))[0]!.id;

    // No reason, no choice: the error summary, and nothing saved.
    const keptId = await idOf(kept.id);
    const missing = await admin.post(`/conflicts/${keptId}`, { version: await versionOf(kept.id) });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('There is a problem');
    expect(missing.body).toContain(`href="#reason-${keptId}"`);
    expect(missing.body).toContain('Give a reason for your decision');
    expect(missing.body).toContain('Choose which value stands');
    expect(await openFor(kept.id)).toHaveLength(1);

    const keep = await admin.post(`/conflicts/${keptId}`, {
      version: await versionOf(kept.id),
      resolution: 'kept_current',
      reason: 'She showed her new tenancy agreement on the trailer',
    });
    expect(keep.statusCode).toBe(303);
    expect(await person(kept.dora.nhsNumber)).toMatchObject({ address_line1: '9 New Road', postcode: 'LS1 4AP' });
    expect(await run({ ...feed, effectiveDate: '2026-11-23' })).toMatchObject({ conflicts: 0 });
    expect(await openFor(kept.id)).toHaveLength(0);

    const appliedId = await idOf(applied.id);
    const apply = await admin.post(`/conflicts/${appliedId}`, {
      version: await versionOf(applied.id),
      resolution: 'applied_incoming',
      reason: 'She rang to say she moved again on 21 November',
    });
    expect(apply.statusCode).toBe(303);
    const moved = await person(applied.dora.nhsNumber);
    expect(moved).toMatchObject({ address_line1: '7 Moved Street', postcode: 'LS7 3PQ' });
    expect(moved.provenance.postcode).toMatchObject({ source: 'bs_select', on: '2026-11-22' });
    const changes = await db()
      .selectFrom('participant_change')
      .selectAll()
      .where('participant_id', '=', applied.id)
      .where('source', '=', 'bs_select')
      .where('source_date', '=', '2026-11-22')
      .orderBy('id')
      .execute();
    expect(changes.map((c) => [c.field, c.new_value])).toEqual([
      ['address_line1', '7 Moved Street'],
      ['postcode', 'LS7 3PQ'],
    ]);
    expect(changes[0]!.reason).toBe('Data conflict resolved: She rang to say she moved again on 21 November');
    expect(changes[0]!.changed_by).toBe(office.users.admin.id);

    const itemConflict = await idOf(her);
    await admin.post(`/conflicts/${itemConflict}`, {
      version: await versionOf(her),
      resolution: 'applied_incoming',
      reason: 'Her GP confirmed the implant was removed',
    });
    expect(await currentImplants(her)).toHaveLength(0);

    const page = await admin.get('/conflicts');
    for (const id of [kept.id, applied.id, her]) expect(await openFor(id)).toHaveLength(0);
    expect(page.body).toMatch(/Record(&#39;|')s value kept by Alex Admin/);
    expect(page.body).toContain('She showed her new tenancy agreement on the trailer');
    expect(page.body).toContain('Value from BS-Select used by Alex Admin');
    const audits = await db()
      .selectFrom('audit_event')
      .selectAll()
      .where('action', '=', 'conflict.resolve')
      .orderBy('id')
      .execute();
    expect(audits.slice(-3).map((a) => [a.participant_id, a.detail.resolution, a.user_id])).toEqual([
      [kept.id, 'kept_current', office.users.admin.id],
      [applied.id, 'applied_incoming', office.users.admin.id],
      [her, 'applied_incoming', office.users.admin.id],
    ]);
    expect(audits.at(-1)!.detail.reason).toBe('Her GP confirmed the implant was removed');
    // A decision made on a conflict already resolved is refused.
    await expect(
      resolveDataConflict(
        db(),
        { conflictId: keptId, expectedVersion: 1, resolution: 'applied_incoming', reason: 'Second thoughts' },
        office.actor,
        TODAY,
      ),
    ).rejects.toThrow(/Someone else resolved this conflict/);
    // Readers cannot open the queue.
    const reader = new PageClient(app);
    await reader.signIn('reader');
    expect((await reader.get('/conflicts')).statusCode).toBe(403);
  });
});
