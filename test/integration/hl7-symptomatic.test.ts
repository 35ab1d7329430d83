import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHl7Listener } from '../../src/hl7/listener.js';
import { firstSegment, parseMessage, value, type Hl7Message } from '../../src/hl7/message.js';
import { MllpDecoder, mllpFrame } from '../../src/hl7/mllp.js';
import { RuleError, NotFoundError } from '../../src/store/errors.js';
import { activeSuspension, liftSuspension, suspensionHistory } from '../../src/store/symptomatic.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { freePort } from '../support/dcmtk.js';
import { addParticipant, nextNhsNumber, smallOffice, type Office } from '../support/fixtures.js';

const NOW = new Date('2026-11-23T10:00:00Z');

/** A real MLLP client: one TCP connection, the writes as given (frames split or joined), the ACKs read back. */
async function exchange(port: number, writes: Buffer[], replies: number): Promise<Hl7Message[]> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const decoder = new MllpDecoder(1024 * 1024);
  const acks: Hl7Message[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${acks.length} of ${replies} ACKs`)), 20_000);
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk))
        if (event.kind === 'frame') acks.push(parseMessage(event.payload.toString('utf8')));
      if (acks.length >= replies) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.once('error', reject);
  });
  for (const bytes of writes) {
    socket.write(bytes);
    await new Promise((r) => setTimeout(r, 2));
  }
  await done;
  socket.end();
  return acks;
}

const send = async (port: number, ...messages: string[]) =>
  exchange(port, [Buffer.concat(messages.map((m) => mllpFrame(m)))], messages.length);

const msa = (ack: Hl7Message | undefined) => ({
  code: value(firstSegment(ack!, 'MSA'), 1),
  controlId: value(firstSegment(ack!, 'MSA'), 2),
  text: value(firstSegment(ack!, 'MSA'), 3),
  error: value(firstSegment(ack!, 'ERR'), 3),
});

let controlIds = 0;
function message(
  nhsNumber: string,
  segments: string[],
  options: { type?: string; controlId?: string; facility?: string } = {},
) {
  const controlId = options.controlId ?? `MSG${++controlIds}`;
  const text = [
    `MSH|^~\\&|EPR|${options.facility ?? 'RX1'}|SCREENING-HUB|NHSBSP|20261103101500||${options.type ?? 'ADT^A08^ADT_A01'}|${controlId}|P|2.5.1|||AL|NE|GBR|UNICODE UTF-8`,
    'EVN|A08|20261103101500',
    `PID|1||RX1-${controlIds}^^^RX1^MR~${nhsNumber}^^^NHS^NH||Testwoman^Jane^^^Mrs||19660514|F`,
    ...segments,
  ].join('\r');
  return { text, controlId };
}
const diagnosis = (date: string) => `DG1|1||C50.9^Malignant neoplasm of breast, unspecified^I10||${date}|F`;

describe.each(BACKENDS)('HL7 symptomatic link over MLLP on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: { port: number; close(): Promise<void> };
  const logged: string[] = [];
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    listener = await startHl7Listener({
      database,
      port: await freePort(),
      host: '127.0.0.1',
      maxMessageBytes: 64 * 1024,
      log: (level, text) => logged.push(`${level} ${text}`),
      now: () => NOW,
    });
  });
  afterAll(async () => {
    await listener?.close();
    await database?.drop();
  });
  const db = () => database.db;
  const count = async (table: 'record_item' | 'invitation_suspension' | 'audit_event' | 'hl7_message') =>
    (
      await db()
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n;
  const items = (participantId: string) =>
    db()
      .selectFrom('record_item')
      .select(['kind', 'side', 'value', 'source', 'source_date', 'removed_at', 'removed_reason'])
      .where('participant_id', '=', participantId)
      .orderBy('recorded_at')
      .orderBy('kind')
      .execute();

  it('suspends invitations on a breast cancer diagnosis, records it, and answers AA', async () => {
    const person = await addParticipant(db());
    const { text, controlId } = message(person.nhs_number, [diagnosis('20261101')]);
    const [ack] = await send(listener.port, text);
    expect(msa(ack)).toMatchObject({ code: 'AA', controlId });
    expect(msa(ack).text).toMatch(/invitations suspended from 2026-11-01/);
    expect(value(firstSegment(ack!, 'MSH'), 9, 2)).toBe('A08');

    const suspension = await activeSuspension(db(), person.id);
    expect(suspension).toMatchObject({ since: '2026-11-01', source: 'hl7', sourceReference: `RX1/${controlId}` });
    expect(suspension?.reason).toMatch(/breast cancer diagnosed \(ICD-10 C50\.9\) on 1 November 2026/);
    expect(await items(person.id)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'previous_breast_cancer', value: 'C50.9', source: 'epr' }),
        expect.objectContaining({ kind: 'symptomatic_treatment', source: 'epr', source_date: '2026-11-01' }),
      ]),
    );
    const audit = await db()
      .selectFrom('audit_event')
      .select(['action', 'username'])
      .where('participant_id', '=', person.id)
      .execute();
    expect(audit).toEqual(
      expect.arrayContaining([
        { action: 'invitations.suspend', username: 'hl7 RX1' },
        { action: 'record_item.add', username: 'hl7 RX1' },
      ]),
    );
    const log = await db().selectFrom('hl7_message').selectAll().where('control_id', '=', controlId).execute();
    expect(log).toMatchObject([
      {
        ack_code: 'AA',
        outcome: 'applied',
        sending_facility: 'RX1',
        participant_id: person.id,
        event_date: '2026-11-03',
      },
    ]);
  });

  it('applies a copy of a message (same facility and control id) once, answering AA again', async () => {
    const person = await addParticipant(db());
    const { text, controlId } = message(person.nhs_number, [diagnosis('20261102')]);
    await send(listener.port, text);
    const before = await Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')]);
    // The copy comes twice more: once joined with another frame in one write, once a byte at a time.
    const other = message(person.nhs_number, []);
    const joined = await send(listener.port, text, other.text);
    expect(joined.map(msa)).toMatchObject([
      { code: 'AA', controlId, text: expect.stringMatching(/this copy changes nothing/) as string },
      { code: 'AA', controlId: other.controlId, text: expect.stringMatching(/Nothing in the message/) as string },
    ]);
    const bytes = mllpFrame(text);
    const trickle = await exchange(
      listener.port,
      [...bytes].map((b) => Buffer.of(b)),
      1,
    );
    expect(msa(trickle[0])).toMatchObject({ code: 'AA', controlId });
    expect(await Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')])).toEqual(
      before,
    );
    const log = await db()
      .selectFrom('hl7_message')
      .select('outcome')
      .where('control_id', '=', controlId)
      .orderBy('id')
      .execute();
    expect(log.map((r) => r.outcome)).toEqual(['applied', 'duplicate', 'duplicate']);
  });

  it('applies one of two copies sent at once on two connections', async () => {
    const person = await addParticipant(db());
    const { text } = message(person.nhs_number, [diagnosis('20261102')]);
    const acks = await Promise.all([send(listener.port, text), send(listener.port, text)]);
    expect(acks.map(([ack]) => msa(ack).code)).toEqual(['AA', 'AA']);
    expect(await suspensionHistory(db(), person.id)).toHaveLength(1);
  });

  it('takes the same control id from another facility as another message', async () => {
    const person = await addParticipant(db());
    const first = message(person.nhs_number, [diagnosis('20261101')], { controlId: 'SHARED1', facility: 'RX1' });
    const second = message(person.nhs_number, [diagnosis('20261101')], { controlId: 'SHARED1', facility: 'RYJ' });
    const acks = await send(listener.port, first.text, second.text);
    expect(acks.map((a) => msa(a).text)).toEqual([
      expect.stringMatching(/^Applied: .*suspended/),
      expect.stringMatching(/^Applied: nothing new for her record; invitations already suspended/),
    ]);
  });

  it('answers AE for an NHS number the hub does not know, keeping nothing but the log; a resend later applies', async () => {
    const stranger = nextNhsNumber();
    const before = await Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')]);
    const { text, controlId } = message(stranger, [diagnosis('20261101')]);
    const [ack] = await send(listener.port, text);
    expect(msa(ack)).toMatchObject({ code: 'AE', controlId, error: '204' });
    expect(msa(ack).text).toMatch(new RegExp(`NHS number ${stranger} is not known`));
    expect(value(firstSegment(ack!, 'ERR'), 2, 1)).toBe('PID');
    expect(await Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')])).toEqual(
      before,
    );
    expect(
      await db()
        .selectFrom('hl7_message')
        .select(['ack_code', 'outcome'])
        .where('control_id', '=', controlId)
        .execute(),
    ).toEqual([{ ack_code: 'AE', outcome: 'error' }]);

    // She joins the register (cohort feed); the Trust sends the same message again.
    const person = await addParticipant(db(), {});
    await db().updateTable('participant').set({ nhs_number: stranger }).where('id', '=', person.id).execute();
    const [again] = await send(listener.port, text);
    expect(msa(again).code).toBe('AA');
    expect(await activeSuspension(db(), person.id)).toBeDefined();
  });

  it('answers AR for malformed and unsupported messages, garbage between frames skipped', async () => {
    const person = await addParticipant(db());
    const noPid = message(person.nhs_number, []).text.replace(/\rPID[^\r]*/, '');
    const unsupported = message(person.nhs_number, [], { type: 'SIU^S12' });
    const badNhs = message('9990000010', [diagnosis('20261101')]);
    const big = message(person.nhs_number, [`NTE|1||${'x'.repeat(70 * 1024)}`]);
    const acks = await exchange(
      listener.port,
      [
        Buffer.from('GET / HTTP/1.1\r\n\r\n'),
        mllpFrame('this is not HL7'),
        mllpFrame(noPid),
        Buffer.from('\n'),
        mllpFrame(unsupported.text),
        mllpFrame(badNhs.text),
        mllpFrame(big.text),
      ],
      5,
    );
    expect(acks.map(msa)).toMatchObject([
      { code: 'AR', controlId: '', text: 'The message does not begin with an MSH segment', error: '100' },
      { code: 'AR', text: 'The message must have one PID segment, not 0', error: '100' },
      { code: 'AR', controlId: unsupported.controlId, error: '200' },
      { code: 'AR', controlId: badNhs.controlId, error: '102' },
      { code: 'AR', controlId: big.controlId, text: expect.stringMatching(/over the 65536-byte limit/) as string },
    ]);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
    expect(logged.some((line) => /byte\(s\) outside an MLLP frame skipped/.test(line))).toBe(true);
    const log = await db()
      .selectFrom('hl7_message')
      .select(['outcome', 'control_id'])
      .where('control_id', 'in', [unsupported.controlId, badNhs.controlId, big.controlId])
      .execute();
    expect(log.every((r) => r.outcome === 'rejected')).toBe(true);
    expect(log).toHaveLength(3);
  });

  it('records surgery with its side and implants; implants alone do not suspend', async () => {
    const person = await addParticipant(db());
    const implants = message(
      person.nhs_number,
      ['PR1|1||B30.1^Insertion of prosthesis for breast^OPCS4||20261001|||||||||||BIL'],
      { type: 'ADT^A03' },
    );
    const surgery = message(
      person.nhs_number,
      ['PR1|1||B27.4^Total mastectomy NEC^OPCS4||20261109|||||||||||Z94.3^Left^OPCS4'],
      { type: 'ADT^A03' },
    );
    const [first] = await send(listener.port, implants.text);
    expect(msa(first).text).toMatch(/not suspended: .*implants only/);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
    await send(listener.port, surgery.text);
    expect((await activeSuspension(db(), person.id))?.reason).toMatch(/left mastectomy \(OPCS-4 B27\.4\)/);
    expect(await items(person.id)).toEqual([
      expect.objectContaining({ kind: 'implants', side: 'bilateral', value: 'B30.1', source_date: '2026-10-01' }),
      expect.objectContaining({ kind: 'mastectomy', side: 'left', value: 'B27.4', source_date: '2026-11-09' }),
      expect.objectContaining({ kind: 'symptomatic_treatment', source_date: '2026-11-09' }),
    ]);
  });

  it('lets staff lift a suspension with a reason, audited; an older message does not suspend again, a newer one does', async () => {
    const person = await addParticipant(db());
    await send(listener.port, message(person.nhs_number, [diagnosis('20261101')]).text);
    await expect(liftSuspension(db(), person.id, '  ', office.actor)).rejects.toThrow(RuleError);
    await liftSuspension(
      db(),
      person.id,
      'Treatment finished; oncologist asks for routine screening',
      office.actor,
      new Date('2026-11-20T12:00:00Z'),
    );
    await expect(liftSuspension(db(), person.id, 'again', office.actor)).rejects.toThrow(NotFoundError);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
    const [lifted] = await suspensionHistory(db(), person.id);
    expect(lifted).toMatchObject({
      lifted_on: '2026-11-20',
      lifted_by: office.users.admin.id,
      lifted_by_name: 'admin',
      lift_reason: 'Treatment finished; oncologist asks for routine screening',
    });
    const audit = await db()
      .selectFrom('audit_event')
      .select(['action', 'username', 'detail'])
      .where('participant_id', '=', person.id)
      .where('action', '=', 'invitations.suspension_lift')
      .execute();
    expect(audit).toMatchObject([
      { username: 'admin', detail: { reason: 'Treatment finished; oncologist asks for routine screening' } },
    ]);
    expect((await items(person.id)).find((i) => i.kind === 'symptomatic_treatment')).toMatchObject({
      removed_reason: 'Invitations suspension lifted: Treatment finished; oncologist asks for routine screening',
    });

    // A delayed message about surgery before the lift: recorded, not suspended again.
    const older = message(person.nhs_number, ['PR1|1||B28.2^Partial excision of breast^OPCS4||20261105|||||||||||R']);
    const [olderAck] = await send(listener.port, older.text);
    expect(msa(olderAck)).toMatchObject({ code: 'AA' });
    expect(msa(olderAck).text).toMatch(/not suspended: the event \(5 November 2026\) is not after staff lifted/);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
    expect(await items(person.id)).toContainEqual(
      expect.objectContaining({ kind: 'lumpectomy', side: 'right', value: 'B28.2' }),
    );

    // A new diagnosis after the lift suspends her again.
    await send(listener.port, message(person.nhs_number, [diagnosis('20261121')]).text);
    expect(await activeSuspension(db(), person.id)).toMatchObject({ since: '2026-11-21' });
    expect(await suspensionHistory(db(), person.id)).toHaveLength(2);
  });

  it('answers AR for a sending facility not on the allow-list, logged, nothing applied', async () => {
    const guarded = await startHl7Listener({
      database,
      port: await freePort(),
      host: '127.0.0.1',
      allowedFacilities: ['rx1', 'RYJ'],
      log: (level, text) => logged.push(`${level} ${text}`),
      now: () => NOW,
    });
    try {
      const person = await addParticipant(db());
      const stranger = message(person.nhs_number, [diagnosis('20261101')], { facility: 'RZZ' });
      const before = await Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')]);
      const [refused] = await send(guarded.port, stranger.text);
      expect(msa(refused)).toMatchObject({ code: 'AR', controlId: stranger.controlId, error: '103' });
      expect(msa(refused).text).toMatch(/Sending facility "RZZ" \(MSH-4\) is not on the hub's allow-list/);
      expect(value(firstSegment(refused!, 'ERR'), 2, 1)).toBe('MSH');
      expect(value(firstSegment(refused!, 'ERR'), 2, 3)).toBe('4');
      expect(await Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')])).toEqual(
        before,
      );
      expect(
        await db()
          .selectFrom('hl7_message')
          .select(['sending_facility', 'ack_code', 'outcome'])
          .where('control_id', '=', stranger.controlId)
          .execute(),
      ).toEqual([{ sending_facility: 'RZZ', ack_code: 'AR', outcome: 'rejected' }]);
      expect(logged.some((line) => /RZZ\/.*not on the allow-list/.test(line))).toBe(true);

      // A facility on the list (any case) is taken.
      const known = message(person.nhs_number, [diagnosis('20261101')], { facility: 'RX1' });
      const [accepted] = await send(guarded.port, known.text);
      expect(msa(accepted).code).toBe('AA');
      expect(await activeSuspension(db(), person.id)).toBeDefined();
    } finally {
      await guarded.close();
    }
  });

  it('drops a frame cut off by the sender closing or resetting mid-frame, and keeps serving', async () => {
    const person = await addParticipant(db());
    const cut = async (how: 'end' | 'reset') => {
      const { text, controlId } = message(person.nhs_number, [diagnosis('20261101')]);
      const frame = mllpFrame(text);
      const socket = connect(listener.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) =>
        socket.write(frame.subarray(0, Math.floor(frame.length / 2)), () => resolve()),
      );
      await new Promise((r) => setTimeout(r, 50));
      if (how === 'end') socket.end();
      else socket.resetAndDestroy();
      await closed;
      return controlId;
    };
    const marks = logged.length;
    const ended = await cut('end');
    const reset = await cut('reset');
    for (let i = 0; i < 100 && logged.slice(marks).filter((l) => /unfinished frame: dropped/.test(l)).length < 2; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(logged.slice(marks).filter((l) => /unfinished frame: dropped, nothing applied/.test(l))).toHaveLength(2);
    expect(
      await db().selectFrom('hl7_message').select('id').where('control_id', 'in', [ended, reset]).execute(),
    ).toEqual([]);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();

    // The next connection is served as usual.
    const next = message(person.nhs_number, [diagnosis('20261101')]);
    const [ack] = await send(listener.port, next.text);
    expect(msa(ack)).toMatchObject({ code: 'AA', controlId: next.controlId });
    expect(await activeSuspension(db(), person.id)).toBeDefined();
  });

  it('refuses to change a suspension other than by lifting it once, and keeps the message log append-only', async () => {
    await expect(db().updateTable('invitation_suspension').set({ reason: 'edited' }).execute()).rejects.toThrow(
      /only changes by being lifted/,
    );
    await expect(db().deleteFrom('hl7_message').execute()).rejects.toThrow(/append-only/);
  });
});
