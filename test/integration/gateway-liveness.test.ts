import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { startGateway } from '../../src/gateway/gateway.js';
import { HubConnection } from '../../src/gateway/hub-connection.js';
import { GATEWAY_VERSION } from '../../src/gateway/liveness.js';
import { PingSigner } from '../../src/hub/gateway-liveness.js';
import { startGatewayListener } from '../../src/hub/gateway-listener.js';
import { FileArchive } from '../../src/pacs/pacs.js';
import { pingSchema } from '../../src/protocol/liveness.js';
import { lastRoundTrip } from '../../src/store/gateway-health.js';
import { freshDatabase } from '../support/database.js';

import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { enrolledGateway, startTestGateway, until } from '../support/gateway-hub.js';
import { startLink, type Link } from '../support/link-simulator.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shortened timings: pings every 300 ms, the hub gives up on a stream after 1.5 s without an answer. */
const HEARTBEAT_MS = 300;
const PONG_TIMEOUT_MS = 1500;

describe('ping signatures', () => {
  const signer = new PingSigner('a secret every hub process shares');

  it('accepts its own ping for the gateway it was made for, and nothing else', () => {
    const stream = PingSigner.streamId();
    const ping = signer.make('gateway-a', stream, 1_000_000);
    expect(pingSchema.parse(ping)).toEqual(ping);
    expect(signer.verify('gateway-a', ping.id, 1_000_250)).toEqual({ sentAtMs: 1_000_000, stream });
    // Another gateway cannot answer it, a changed time or stream breaks the MAC, another hub's key does not fit.
    expect(signer.verify('gateway-b', ping.id, 1_000_250)).toBeNull();
    const [, , mac] = ping.id.split('.');
    expect(signer.verify('gateway-a', `1000200.${stream}.${mac}`, 1_000_250)).toBeNull();
    expect(signer.verify('gateway-a', `1000000.${PingSigner.streamId()}.${mac}`, 1_000_250)).toBeNull();
    expect(new PingSigner('another secret').verify('gateway-a', ping.id, 1_000_250)).toBeNull();
    expect(signer.verify('gateway-a', 'not-a-ping', 1_000_250)).toBeNull();
    // An answer long after the ping proves nothing about the link now.
    expect(signer.verify('gateway-a', ping.id, 1_000_000 + 10 * 60_000)).toBeNull();
  });
});

describe('liveness by round trip', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: Awaited<ReturnType<typeof startGatewayListener>>;
  let hubUrl: string;
  const hubLog: string[] = [];

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    const dir = mkdtempSync(join(tmpdir(), 'hub-liveness-'));
    listener = await startGatewayListener({
      database,
      port: 0,
      host: '127.0.0.1',
      today: () => TODAY,
      heartbeatMs: HEARTBEAT_MS,
      pongTimeoutMs: PONG_TIMEOUT_MS,
      transfers: { dir, pacs: new FileArchive(join(dir, 'archive')), retryMs: 500 },
      log: (level, message) => void hubLog.push(`${level}: ${message}`),
    });
    hubUrl = `https://127.0.0.1:${listener.port}`;
  });
  afterAll(async () => {
    await listener?.close();
    await database?.drop();
  });

  it('closes a push stream whose pings go unanswered, and keeps one whose pings are answered', async () => {
    const silent = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
    const answering = await enrolledGateway(database, hubUrl, listener.authorityPem, 'static-1', office.actor);
    const silentConnection = new HubConnection(hubUrl, silent.identity);
    const answeringConnection = new HubConnection(hubUrl, answering.identity);
    const ended: Record<string, Error | undefined> = {};
    const roundTrips: (number | null)[] = [];
    // Both clients' own silence watchdogs are long (60 s): whatever ends a stream here is the hub.
    const silentStream = silentConnection.events(
      '/gateway/v1/events',
      () => undefined,
      (error) => (ended.silent = error),
      60_000,
    );
    const answeringStream = answeringConnection.events(
      '/gateway/v1/events',
      (name, data) => {
        if (name !== 'ping') return;
        const ping = pingSchema.parse(JSON.parse(data));
        void answeringConnection
          .post<{ roundTripMs: number | null }>('/gateway/v1/heartbeat', {
            pingId: ping.id,
            report: { online: true, outbox: { awaiting: 2, sending: 1 }, version: 'test', mode: 'normal' },
          })
          .then((answer) => roundTrips.push(answer.roundTripMs))
          // One in flight when the test closes the connection is cut: not a failure of the hub.
          .catch(() => undefined);
      },
      (error) => (ended.answering = error),
      60_000,
    );
    try {
      expect(await until(() => ended.silent !== undefined, 10_000)).toBe(true);
      expect(hubLog.some((l) => /no ping answered .* closing its push stream/.test(l))).toBe(true);
      // As long again as the hub gave the silent one: the answering stream is still open.
      await sleep(PONG_TIMEOUT_MS);
      expect(ended.answering?.message).toBeUndefined();
      expect(roundTrips.length).toBeGreaterThan(3);
      expect(roundTrips.every((ms) => typeof ms === 'number' && ms >= 0)).toBe(true);
      const health = await database.db
        .selectFrom('gateway_health')
        .selectAll()
        .where('gateway_id', '=', answering.gatewayId)
        .executeTakeFirstOrThrow();
      expect(health.report).toMatchObject({ outbox: { awaiting: 2, sending: 1 }, version: 'test' });
      expect(health.last_round_trip_ms).toBeGreaterThanOrEqual(0);
      expect(await lastRoundTrip(database.db, silent.gatewayId)).toBeNull();
    } finally {
      silentStream.close();
      answeringStream.close();
      silentConnection.close();
      answeringConnection.close();
    }
  });

  it('a forged or foreign ping id is kept as a report but not as a round trip', async () => {
    const { identity, gatewayId } = await enrolledGateway(
      database,
      hubUrl,
      listener.authorityPem,
      'mobile-1',
      office.actor,
    );
    const connection = new HubConnection(hubUrl, identity);
    try {
      const answer = await connection.post<{ roundTripMs: number | null; mode: { mode: string } }>(
        '/gateway/v1/heartbeat',
        {
          pingId: `${Date.now()}.bm9uY2U.AAAAAAAAAAAAAAAAAAAAAA`,
          report: { online: true, outbox: { awaiting: 0, sending: 0 }, version: 'x', mode: 'normal' },
        },
      );
      expect(answer).toEqual({ roundTripMs: null, mode: { mode: 'normal', reason: null, since: null, by: null } });
      expect(await lastRoundTrip(database.db, gatewayId)).toBeNull();
    } finally {
      connection.close();
    }
  });

  describe('a gateway behind a link that black-holes', () => {
    let link: Link;
    let gateway: ReturnType<typeof startGateway>;
    let gatewayId: string;
    const gatewayLog: string[] = [];
    const roundTrip = () => lastRoundTrip(database.db, gatewayId);

    beforeAll(async () => {
      link = await startLink({ target: { host: '127.0.0.1', port: listener.port }, cutMode: 'blackhole' });
      ({ gateway, gatewayId } = await startTestGateway(database, listener, office.actor, {
        hubUrl: `https://127.0.0.1:${link.port}`,
        // Five missed pings (the default is three: 45 s against 15 s pings).
        silenceMs: 1500,
        log: (level, message) => void gatewayLog.push(`${level}: ${message}`),
      }));
    });
    afterAll(async () => {
      await gateway?.close();
      await link?.close();
    });

    it('is noticed at both ends, stops the round trips while black-holed, and is re-established', async () => {
      // Round trips are recorded and keep advancing while the link is good.
      expect(await until(async () => (await roundTrip()) !== null, 10_000)).toBe(true);
      const first = (await roundTrip())!;
      expect(await until(async () => (await roundTrip())!.at > first.at, 10_000)).toBe(true);
      const report = await database.db
        .selectFrom('gateway_health')
        .select('report')
        .where('gateway_id', '=', gatewayId)
        .executeTakeFirstOrThrow();
      expect(report.report).toMatchObject({
        online: true,
        outbox: { awaiting: 0, sending: 0 },
        version: GATEWAY_VERSION,
        mode: 'normal',
      });
      expect(gateway.liveness.lastRoundTrip).not.toBeNull();

      const connectionsBefore = link.stats.connections;
      hubLog.length = 0;
      link.cut('blackhole');
      // An answer already on its way when the link died may still land: let it, then hold the hub's record.
      await sleep(200);
      const frozen = (await roundTrip())!;
      expect(await until(() => !gateway.feed.state.online, 10_000)).toBe(true);
      expect(gateway.feed.state.lastError).toMatch(/nothing from the hub/);
      // Several pings' worth of time passed black-holed: the last round trip did not move.
      expect((await roundTrip())!.at).toEqual(frozen.at);

      // The gateway connects again by itself and the round trips advance again.
      expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
      expect(await until(async () => (await roundTrip())!.at > frozen.at, 10_000)).toBe(true);
      expect(link.stats.connections).toBeGreaterThan(connectionsBefore);
      // The hub closed its end of the dead stream too, though the gateway answers on its new one meanwhile.
      expect(await until(() => hubLog.some((l) => /mobile-1: no ping answered/.test(l)), 10_000)).toBe(true);
    });
  });
});
