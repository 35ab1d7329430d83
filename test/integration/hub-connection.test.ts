import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubConnection } from '../../src/gateway/hub-connection.js';
import { freshDatabase } from '../support/database.js';
import { smallOffice } from '../support/fixtures.js';
import { enrolledGateway, gatewayListener } from '../support/gateway-hub.js';

describe('the gateway’s push stream', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let listener: Awaited<ReturnType<typeof gatewayListener>>;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    listener = await gatewayListener(database); // heartbeat every second
  });
  afterAll(async () => {
    await listener?.close();
    await database?.drop();
  });

  it('stays up when the hub’s heartbeat comes as seldom as the request idle limit (they raced and cut it)', async () => {
    const office = await smallOffice(database.db);
    const hubUrl = `https://127.0.0.1:${listener.port}`;
    const { identity } = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
    const connection = new HubConnection(hubUrl, identity, 1000); // idle limit = the heartbeat period
    const events: string[] = [];
    let ended: Error | undefined;
    const stream = connection.events(
      '/gateway/v1/events',
      (name) => events.push(name),
      (error) => (ended = error),
      5000,
    );
    await new Promise((r) => setTimeout(r, 4500));
    expect(ended?.message).toBeUndefined();
    expect(events).toContain('hello');
    stream.close();
    connection.close();
  });
});
