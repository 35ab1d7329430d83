import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isTransientStatus,
  MeshClient,
  meshAuthorization,
  meshAuthorizationProblem,
  MeshError,
  meshTimestamp,
  parseMeshAuthorization,
  parseMeshTime,
} from '../../../src/mesh/mesh-client.js';
import { parseMailboxArgument, sends, startTestMailbox, type TestMailbox } from '../../../src/mesh/test-mailbox.js';

const KEY = 'UnitTestSharedKey';

describe('the NHSMESH Authorization token', () => {
  const at = new Date('2026-11-23T13:05:42Z');

  it('is "NHSMESH mailbox:nonce:count:timestamp:hmac", the HMAC-SHA256 of mailbox:nonce:count:password:timestamp', () => {
    const token = meshAuthorization('hubmbx01', 'secret', KEY, { nonce: 'n-1', nonceCount: 3, at });
    const hmac = createHmac('sha256', KEY).update('HUBMBX01:n-1:3:secret:202611231305').digest('hex');
    expect(token).toBe(`NHSMESH HUBMBX01:n-1:3:202611231305:${hmac}`);
    expect(meshTimestamp(at)).toBe('202611231305');
  });

  it('checks out with the right password, key and time, and not otherwise', () => {
    const parts = parseMeshAuthorization(meshAuthorization('HUBMBX01', 'secret', KEY, { at }))!;
    expect(parts).toMatchObject({ mailbox: 'HUBMBX01', nonceCount: 0, timestamp: '202611231305' });
    expect(meshAuthorizationProblem(parts, 'secret', KEY, at)).toBeNull();
    expect(meshAuthorizationProblem(parts, 'wrong', KEY, at)).toBe('hash does not match');
    expect(meshAuthorizationProblem(parts, 'secret', 'OtherKey', at)).toBe('hash does not match');
    const later = new Date(at.getTime() + 2 * 60 * 60 * 1000 + 60_000);
    expect(meshAuthorizationProblem(parts, 'secret', KEY, later)).toMatch(/2 hours/);
  });

  it('a new nonce each time, so no two requests share a token', () => {
    expect(meshAuthorization('HUBMBX01', 'secret', KEY)).not.toBe(meshAuthorization('HUBMBX01', 'secret', KEY));
  });

  it('refuses what is not a token', () => {
    for (const bad of [
      undefined,
      '',
      'Bearer abc',
      'NHSMESH a:b:c',
      'NHSMESH HUB:n:x:202611231305:' + 'a'.repeat(64),
    ]) {
      expect(parseMeshAuthorization(bad)).toBeNull();
    }
  });
});

describe('MESH errors and times', () => {
  it('network trouble, 5xx, 429, 408 and credentials can pass; other 4xx will not', () => {
    for (const s of [500, 502, 503, 504, 429, 408, 401, 403]) expect(isTransientStatus(s), String(s)).toBe(true);
    for (const s of [400, 404, 410, 417, 422]) expect(isTransientStatus(s), String(s)).toBe(false);
  });

  it('reads MESH yyyyMMddHHmmss times as UTC', () => {
    expect(parseMeshTime('20261123130542')?.toISOString()).toBe('2026-11-23T13:05:42.000Z');
    expect(parseMeshTime(null)).toBeNull();
    expect(parseMeshTime('2026')).toBeNull();
  });

  it('reads a mailbox argument for the command line', () => {
    expect(parseMailboxArgument('y00001mb:pw:with:colons')).toEqual({ id: 'Y00001MB', password: 'pw:with:colons' });
    expect(() => parseMailboxArgument('AB:pw')).toThrow(/6 to 20/);
    expect(() => parseMailboxArgument('Y00001MB')).toThrow(/password/);
  });
});

describe('the client against the test mailbox', () => {
  let mailbox: TestMailbox;
  const hub = () => new MeshClient({ url: mailbox.url, mailbox: 'HUBMBX01', password: 'hub-pw', sharedKey: KEY });
  const gp = () => new MeshClient({ url: mailbox.url, mailbox: 'Y00001MB', password: 'gp-pw', sharedKey: KEY });

  beforeAll(async () => {
    mailbox = await startTestMailbox({
      sharedKey: KEY,
      mailboxes: [
        { id: 'HUBMBX01', password: 'hub-pw' },
        { id: 'Y00001MB', password: 'gp-pw' },
      ],
    });
  });
  afterAll(() => mailbox.close());
  /** The status of a raw request to the test mailbox. */
  const status = (method: string, path: string, authorization: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(`${mailbox.url}${path}`, { method, headers: { authorization } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.setTimeout(5000, () => req.destroy(new Error(`No answer to ${method} ${path}`)));
      req.on('error', reject);
      req.end();
    });

  it('sends, tracks, lists, downloads and acknowledges', async () => {
    await hub().handshake();
    const id = await hub().send({
      to: 'y00001mb',
      workflowId: 'WF',
      body: '{"a":1}',
      localId: 'local-1',
      subject: 'Result',
    });
    expect(await hub().trackMessage(id)).toMatchObject({
      messageId: id,
      localId: 'local-1',
      status: 'Accepted',
      downloadTimestamp: null,
    });
    expect(await hub().trackLocalId('local-1')).toMatchObject({ messageId: id });
    expect(await hub().trackLocalId('nobody')).toBeNull();
    expect(await gp().listInbox()).toEqual([id]);
    const message = await gp().download(id);
    expect(message).toMatchObject({
      messageId: id,
      from: 'HUBMBX01',
      to: 'Y00001MB',
      workflowId: 'WF',
      localId: 'local-1',
      messageType: 'DATA',
    });
    expect(message!.body.toString()).toBe('{"a":1}');
    // Someone else's message is not the hub's to read.
    expect(await hub().download(id)).toBeNull();
    await gp().acknowledge(id);
    await gp().acknowledge(id);
    expect(await gp().listInbox()).toEqual([]);
    expect(await gp().download(id)).toBeNull();
    const tracked = await hub().trackMessage(id);
    expect(tracked).toMatchObject({ status: 'Acknowledged' });
    expect(parseMeshTime(tracked!.downloadTimestamp)).not.toBeNull();
  });

  it('refuses a wrong password, and a token for another mailbox, as authentication failures', async () => {
    const wrong = new MeshClient({ url: mailbox.url, mailbox: 'HUBMBX01', password: 'nope', sharedKey: KEY });
    await expect(wrong.listInbox()).rejects.toMatchObject({ status: 403, kind: 'transient' });
    const badKey = new MeshClient({ url: mailbox.url, mailbox: 'HUBMBX01', password: 'hub-pw', sharedKey: 'x' });
    await expect(badKey.handshake()).rejects.toBeInstanceOf(MeshError);
  });

  it('refuses a token used twice, and one for another mailbox than the path names', async () => {
    const get = (path: string, authorization: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${mailbox.url}${path}`, { headers: { authorization } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    const token = meshAuthorization('HUBMBX01', 'hub-pw', KEY);
    expect(await get('/messageexchange/HUBMBX01/inbox', token)).toBe(200);
    expect(await get('/messageexchange/HUBMBX01/inbox', token)).toBe(403);
    expect(await get('/messageexchange/Y00001MB/inbox', meshAuthorization('HUBMBX01', 'hub-pw', KEY))).toBe(403);
    expect(await get('/messageexchange/HUBMBX01/inbox', 'NHSMESH nonsense')).toBe(403);
  });

  it('says an unknown recipient mailbox is permanent, and a 503 or a dropped connection is transient', async () => {
    await expect(hub().send({ to: 'NOSUCHMB1', workflowId: 'WF', body: 'x' })).rejects.toMatchObject({
      kind: 'permanent',
      status: 417,
      message: expect.stringContaining('Unregistered to address'),
    });
    mailbox.failNext(1, { match: sends });
    await expect(hub().send({ to: 'Y00001MB', workflowId: 'WF', body: 'x' })).rejects.toMatchObject({
      kind: 'transient',
      status: 503,
    });
    mailbox.dropNext(1);
    await expect(hub().listInbox()).rejects.toMatchObject({ kind: 'transient' });
    // A send whose answer is lost did arrive: the local id finds it.
    const before = mailbox.messagesTo('Y00001MB').length;
    mailbox.dropNext(1, { afterProcessing: true, match: sends });
    await expect(
      hub().send({ to: 'Y00001MB', workflowId: 'WF', body: 'y', localId: 'lost-answer' }),
    ).rejects.toMatchObject({
      kind: 'transient',
    });
    expect(mailbox.messagesTo('Y00001MB')).toHaveLength(before + 1);
    expect(await hub().trackLocalId('lost-answer')).not.toBeNull();
  });

  it('finds nothing for a local id MESH does not know, whether MESH says 403 or 404', async () => {
    // The MESH API specification answers 403 "Message does not exist" here; the test mailbox does the same.
    const token = meshAuthorization('HUBMBX01', 'hub-pw', KEY);
    expect(await status('GET', '/messageexchange/HUBMBX01/outbox/tracking/never-sent', token)).toBe(403);
    expect(await hub().trackLocalId('never-sent')).toBeNull();
    expect(await hub().trackMessage('20261123000000000000_NOSUCH')).toBeNull();
    // Bad credentials are still an error everywhere else (the send after a tracking miss fails, and is retried).
    const wrong = new MeshClient({ url: mailbox.url, mailbox: 'HUBMBX01', password: 'nope', sharedKey: KEY });
    await expect(wrong.send({ to: 'Y00001MB', workflowId: 'WF', body: 'x' })).rejects.toMatchObject({
      status: 403,
      kind: 'transient',
    });
  });

  it('answers a malformed address 400 and carries on, never throwing out of the server', async () => {
    const token = () => meshAuthorization('HUBMBX01', 'hub-pw', KEY);
    for (const path of [
      '/messageexchange/%E0%A4%A/inbox',
      '/messageexchange/HUBMBX01/inbox/%E0%A4%A',
      '/messageexchange/HUBMBX01/inbox/%ZZ/status/acknowledged',
      '/messageexchange/HUBMBX01/outbox/tracking/%',
    ]) {
      expect(await status(path.endsWith('acknowledged') ? 'PUT' : 'GET', path, token()), path).toBe(400);
    }
    expect(await status('GET', '//[', token())).toBe(400);
    // Still up, and still answering properly.
    expect(await hub().listInbox()).toEqual(expect.any(Array));
  });

  it('gives up on a server that does not answer in time', async () => {
    const http = await import('node:http');
    const silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const client = new MeshClient({
      url: `http://127.0.0.1:${port}`,
      mailbox: 'HUBMBX01',
      password: 'p',
      sharedKey: KEY,
      timeoutMs: 200,
    });
    await expect(client.listInbox()).rejects.toMatchObject({
      kind: 'transient',
      message: expect.stringContaining('did not answer'),
    });
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });
});
