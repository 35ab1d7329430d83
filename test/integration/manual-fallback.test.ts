import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { startGateway } from '../../src/gateway/gateway.js';
import { HubLiveness } from '../../src/gateway/liveness.js';
import { renderStatus } from '../../src/gateway/status-page.js';
import { changeAppointmentStatus, bookAppointment } from '../../src/store/clinics.js';
import type { Db } from '../../src/store/database.js';
import { failsafeReport, loadFailsafeThresholds } from '../../src/store/failsafes.js';
import { setSiteImageMode, siteImageMode, siteImageModeHistory } from '../../src/store/gateway-health.js';
import { BACKENDS, freshDatabase } from '../support/database.js';

import { addParticipant, newClinics, smallOffice, TODAY, type Clinics, type Office } from '../support/fixtures.js';
import { gatewayListener, startTestGateway, until } from '../support/gateway-hub.js';
import { PageClient, testHub } from '../support/hub-client.js';

const { thresholds } = loadFailsafeThresholds({});

describe.each(BACKENDS)('manual images mode on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let clinics: Clinics;
  let hub: FastifyInstance;
  const db = (): Db => database.db;

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    hub = await testHub(database.db);
  });
  afterAll(async () => {
    await hub?.close();
    await database?.drop();
  });

  /** Books her into the clinic and takes her through check-in to screened, as the mammographer would. */
  async function screen(clinicId: string) {
    const participant = await addParticipant(db());
    const appointmentId = await bookAppointment(db(), { clinicId, participantId: participant.id }, office.actor, TODAY);
    await changeAppointmentStatus(db(), { appointmentId, expectedVersion: 1, to: 'checked_in' }, office.actor, TODAY);
    await changeAppointmentStatus(db(), { appointmentId, expectedVersion: 2, to: 'screened' }, office.actor, TODAY);
    return { participantId: participant.id, appointmentId };
  }
  const held = (appointmentId: string) =>
    db()
      .selectFrom('appointment_images_held')
      .selectAll()
      .where('appointment_id', '=', appointmentId)
      .executeTakeFirst();
  const noImages = async (participantId: string) => {
    const [report] = await failsafeReport(db(), 'TST', TODAY, { checks: ['screened_no_images'], thresholds });
    return report!.items.filter((i) => i.participantId === participantId);
  };

  it('refuses a switch without a reason, or to the mode the site is already in', async () => {
    await expect(setSiteImageMode(db(), 'mobile-1', 'manual_images', '  ', office.actor)).rejects.toThrow(
      'Give a reason for switching to manual images mode',
    );
    await expect(setSiteImageMode(db(), 'mobile-1', 'normal', 'just in case', office.actor)).rejects.toThrow(
      'already in normal mode',
    );
    await expect(setSiteImageMode(db(), 'nowhere', 'manual_images', 'link down', office.actor)).rejects.toThrow(
      'does not exist',
    );
    expect(await siteImageModeHistory(db(), 'mobile-1')).toEqual([]);
  });

  it('marks women screened at the unit meanwhile as images held locally, and switching back keeps every record', async () => {
    const before = await screen(clinics.inaccessibleClinic);
    await setSiteImageMode(db(), 'mobile-1', 'manual_images', 'Gateway link down in the car park', office.actor);
    expect(await siteImageMode(db(), 'mobile-1')).toMatchObject({
      mode: 'manual_images',
      reason: 'Gateway link down in the car park',
      by: 'admin',
    });
    const during = await screen(clinics.inaccessibleClinic);
    // The static site is not in manual mode: its women are not marked.
    const elsewhere = await screen(clinics.accessibleClinic);

    expect(await held(before.appointmentId)).toBeUndefined();
    expect(await held(during.appointmentId)).toMatchObject({ site_id: 'mobile-1' });
    expect(await held(elsewhere.appointmentId)).toBeUndefined();

    // The failsafe still lists her, but as held locally rather than lost; the others as having no images yet.
    expect((await noImages(during.participantId))[0]?.detail).toBe(
      'Screened at Mobile Unit 1 in manual images mode: images held locally, to be sent from the machine',
    );
    expect((await noImages(before.participantId))[0]?.detail).toBe(
      'Screened at Mobile Unit 1: no images at the hub yet',
    );

    await setSiteImageMode(db(), 'mobile-1', 'normal', 'Link back after the router was restarted', office.actor);
    const after = await screen(clinics.inaccessibleClinic);
    expect(await held(after.appointmentId)).toBeUndefined();
    // Switching back deleted nothing: the mark stays, and the history has both switches with who and why.
    expect(await held(during.appointmentId)).toMatchObject({ site_id: 'mobile-1' });
    expect((await siteImageModeHistory(db(), 'mobile-1')).map((h) => [h.mode, h.changed_by_name, h.reason])).toEqual([
      ['normal', 'admin', 'Link back after the router was restarted'],
      ['manual_images', 'admin', 'Gateway link down in the car park'],
    ]);
    const audit = await db()
      .selectFrom('audit_event')
      .select(['action', 'detail'])
      .where('entity_type', '=', 'site')
      .where('entity_id', '=', 'mobile-1')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual(['site.manual_images.on', 'site.manual_images.off']);
    // The history and the marks cannot be edited away.
    await expect(db().deleteFrom('site_image_mode').where('site_id', '=', 'mobile-1').execute()).rejects.toThrow(
      /append-only/,
    );
    await expect(
      db().deleteFrom('appointment_images_held').where('appointment_id', '=', during.appointmentId).execute(),
    ).rejects.toThrow(/append-only/);

    // The clinic day page shows who has images held locally.
    const client = new PageClient(hub);
    await client.signIn('admin');
    const page = await client.get(`/clinics/${clinics.inaccessibleClinic}`);
    expect(page.statusCode).toBe(200);
    expect(page.body.match(/Images held locally/g)).toHaveLength(1);

    // Once her images arrive she leaves the failsafe; the clinic page says they were received.
    await db()
      .updateTable('appointment')
      .set({ images_available_at: new Date() })
      .where('id', '=', during.appointmentId)
      .execute();
    expect(await noImages(during.participantId)).toEqual([]);
    const later = await client.get(`/clinics/${clinics.inaccessibleClinic}`);
    expect(later.body).not.toContain('Images held locally');
    expect(later.body).toContain('Images received');
  });

  it('is switched on the support page by support staff only, with a reason', async () => {
    const mammographer = new PageClient(hub);
    await mammographer.signIn('mammographer');
    expect((await mammographer.get('/support')).statusCode).toBe(403);

    const support = new PageClient(hub);
    await support.signIn('support');
    const page = await support.get('/support');
    expect(page.statusCode).toBe(200);
    // No gateway is enrolled in this database yet.
    expect(page.body).toContain('No gateways are enrolled');
    expect(
      (await mammographer.post('/support/units/static-1/mode', { mode: 'manual_images', reason: 'x' })).statusCode,
    ).toBe(403);
    expect(await siteImageMode(db(), 'static-1')).toMatchObject({ mode: 'normal' });
  });
});

describe('the gateway hears of manual images mode', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: Awaited<ReturnType<typeof gatewayListener>>;
  let hub: FastifyInstance;
  let gateway: ReturnType<typeof startGateway> | undefined;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    listener = await gatewayListener(database); // pings every second
    hub = await testHub(database.db);
  });
  afterAll(async () => {
    await gateway?.close();
    await listener?.close();
    await hub?.close();
    await database?.drop();
  });

  it('shows a banner on the trailer page while it is on, keeps it across a restart, and drops it when switched back', async () => {
    const started = await startTestGateway(database, listener, office.actor);
    gateway = started.gateway;
    const g = gateway;
    const banner = () => renderStatus(g.desk, 'csrf').includes('Manual images mode is on');
    expect(await until(() => g.liveness.answered > 0, 10_000)).toBe(true);
    expect(banner()).toBe(false);

    // Switched on the support page, as support staff do.
    const support = new PageClient(hub);
    await support.signIn('support');
    const shown = await support.get('/support');
    expect(shown.body).toContain('Mobile Unit 1');
    const refused = await support.post('/support/units/mobile-1/mode', { mode: 'manual_images', reason: '' });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('Give a reason for switching to manual images mode');
    const switched = await support.post('/support/units/mobile-1/mode', {
      mode: 'manual_images',
      reason: 'Link keeps dropping',
    });
    expect(switched.statusCode).toBe(303);

    expect(await until(() => g.liveness.mode.mode === 'manual_images', 10_000)).toBe(true);
    const html = renderStatus(g.desk, 'csrf');
    expect(html).toContain('Manual images mode is on');
    expect(html).toContain('Keep every image on the mammography machine');
    expect(html).toContain('Link keeps dropping');
    expect(html).toContain('by support');
    // Kept on disk: a gateway restarted with the link down still shows it.
    expect(HubLiveness.readMode(started.dataDir)).toMatchObject({
      mode: 'manual_images',
      reason: 'Link keeps dropping',
    });
    // The gateway reports the mode it has heard of.
    expect(
      await until(async () => {
        const row = await database.db
          .selectFrom('gateway_health')
          .select('report')
          .where('gateway_id', '=', started.gatewayId)
          .executeTakeFirst();
        return row?.report?.mode === 'manual_images';
      }, 10_000),
    ).toBe(true);

    await support.get('/support');
    expect(
      (await support.post('/support/units/mobile-1/mode', { mode: 'normal', reason: 'Router replaced' })).statusCode,
    ).toBe(303);
    expect(await until(() => g.liveness.mode.mode === 'normal', 10_000)).toBe(true);
    expect(banner()).toBe(false);
    const page = await support.get('/support');
    expect(page.body).toContain('Router replaced');
  });
});
