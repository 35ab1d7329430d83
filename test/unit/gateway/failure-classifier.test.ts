/**
 * Each failure phase from a real failing connection (a closed port, an unresolvable name, a TLS server with the
 * wrong certificate, a server that accepts and says nothing...), through the gateway's own HubConnection, so the
 * stage it records and the error Node gives are the real ones.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyLinkError, PhaseError } from '../../../src/gateway/failure-classifier.js';
import { HubConnection, HubError } from '../../../src/gateway/hub-connection.js';
import type { GatewayIdentity } from '../../../src/gateway/identity.js';
import { classifyPacsError, PacsRefused } from '../../../src/pacs/errors.js';
import { DicomWebPacs } from '../../../src/pacs/dicomweb.js';
import { FAILURE_PHASES, PHASE_DESCRIPTIONS, phaseLine } from '../../../src/protocol/failure-phase.js';
import {
  createAuthority,
  createGatewayKey,
  issueGatewayCertificate,
  issueServerCertificate,
  type KeyAndCertificate,
} from '../../../src/tls/certificates.js';

type Listening = net.Server | tls.Server | HttpServer;
const servers: Listening[] = [];
const sockets = new Set<net.Socket>();
const listen = async <S extends Listening>(server: S): Promise<number> => {
  servers.push(server);
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
};

/** The error a GET through the gateway's connection fails with. */
const failure = async (connection: HubConnection, path = '/gateway/v1/worklist'): Promise<unknown> => {
  try {
    await connection.get(path);
  } catch (error) {
    return error;
  } finally {
    connection.close();
  }
  throw new Error('the request succeeded');
};

describe('naming the phase of a failed request to the hub', () => {
  let hubAuthority: KeyAndCertificate;
  let otherAuthority: KeyAndCertificate;
  let identity: GatewayIdentity;
  /** A hub-like TLS server: its certificate for localhost and 127.0.0.1, from hubAuthority. */
  let hubTls: tls.TlsOptions;

  beforeAll(async () => {
    hubAuthority = await createAuthority('Test hub authority');
    otherAuthority = await createAuthority('Some other authority');
    const key = await createGatewayKey();
    const issued = await issueGatewayCertificate(hubAuthority, key.requestPem, 'gw-1', 'mobile-1');
    identity = {
      gatewayId: 'gw-1',
      unitId: 'mobile-1',
      privateKeyPem: key.privateKeyPem,
      certificatePem: issued.certificatePem,
      authorityPem: hubAuthority.certificatePem,
    };
    const server = await issueServerCertificate(hubAuthority, ['localhost', '127.0.0.1']);
    hubTls = { key: server.privateKeyPem, cert: server.certificatePem };
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    for (const s of servers) if (s.listening) await new Promise((resolve) => s.close(resolve));
  });

  it('an unresolvable name is DNS', async () => {
    const error = await failure(new HubConnection('https://hub.invalid:8443', identity, 5000));
    expect(error).toBeInstanceOf(PhaseError);
    const named = classifyLinkError(error);
    expect(named.phase).toBe('dns');
    expect(named.message).toMatch(/hub\.invalid could not be looked up.*ENOTFOUND/);
    expect(phaseLine(named)).toMatch(/^Finding the hub \(DNS\): /);
  });

  it('a closed port is TCP connect', async () => {
    const closed = net.createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const named = classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${port}`, identity, 5000)));
    expect(named.phase).toBe('tcp_connect');
    expect(named.message).toMatch(/ECONNREFUSED/);
  });

  it('a hub certificate for another name is the gateway not trusting the hub', async () => {
    const elsewhere = await issueServerCertificate(hubAuthority, ['hub.elsewhere.example']);
    const port = await listen(tls.createServer({ key: elsewhere.privateKeyPem, cert: elsewhere.certificatePem }));
    const named = classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${port}`, identity, 5000)));
    expect(named).toMatchObject({ phase: 'certificate_rejected' });
    expect(named.message).toMatch(/gateway does not trust the hub’s certificate.*ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('a hub certificate from another authority is the gateway not trusting the hub', async () => {
    const stranger = await issueServerCertificate(otherAuthority, ['127.0.0.1']);
    const port = await listen(tls.createServer({ key: stranger.privateKeyPem, cert: stranger.certificatePem }));
    const named = classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${port}`, identity, 5000)));
    expect(named.phase).toBe('certificate_rejected');
    expect(named.message).toMatch(
      /gateway does not trust the hub’s certificate.*(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/,
    );
  });

  it('a TLS alert from the hub about the gateway’s certificate is the hub not trusting the gateway', async () => {
    // OpenSSL itself sends "certificate required" when a client offers none (Node's own check, for a certificate
    // from an unknown authority, just closes: that is the next test's handshake failure).
    const port = await listen(tls.createServer({ ...hubTls, requestCert: true, rejectUnauthorized: true }));
    const error = await new Promise<Error>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: hubAuthority.certificatePem });
      socket.on('error', resolve);
    });
    expect((error as NodeJS.ErrnoException).code).toMatch(/^ERR_SSL_.*ALERT_CERTIFICATE_REQUIRED$/);
    const named = classifyLinkError(error, 'secured');
    expect(named.phase).toBe('certificate_rejected');
    expect(named.message).toMatch(/^The hub refused this gateway’s certificate: .*alert certificate required/);
  });

  it('a hub closing the handshake on the gateway’s certificate is the TLS handshake, saying it may be that', async () => {
    const port = await listen(
      tls.createServer({ ...hubTls, ca: [otherAuthority.certificatePem], requestCert: true, rejectUnauthorized: true }),
    );
    const named = classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${port}`, identity, 5000)));
    expect(['tls_handshake', 'link_dropped']).toContain(named.phase);
    expect(named.message).toMatch(/this gateway’s certificate/);
  });

  it('the hub refusing the gateway’s certificate by answering 401/403 is the hub not trusting the gateway', () => {
    const revoked = new HubError(403, 'hub answered HTTP 403: This gateway has been revoked by the support team');
    expect(classifyLinkError(revoked)).toMatchObject({ phase: 'certificate_rejected' });
    expect(classifyLinkError(revoked).message).toMatch(/^The hub refused this gateway’s certificate: .*revoked/);
    expect(classifyLinkError(new HubError(503, 'hub answered HTTP 503: busy')).phase).toBe('http_status');
    expect(classifyLinkError(new HubError(507, 'upload refused: no room')).phase).toBe('disk_full');
  });

  it('an address that accepts and then says nothing is the TLS handshake', async () => {
    const port = await listen(net.createServer(() => undefined));
    const error = await failure(new HubConnection(`https://127.0.0.1:${port}`, identity, 300));
    expect((error as Error).message).toBe('the link to the hub carried nothing for 0.3 s');
    const named = classifyLinkError(error);
    expect(named.phase).toBe('tls_handshake');
    expect(named.message).toMatch(/secure handshake never finished/);
  });

  it('an address that accepts and closes at once, or is not TLS, is the TLS handshake', async () => {
    const closing = await listen(net.createServer((socket) => socket.destroy()));
    expect(
      classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${closing}`, identity, 5000))).phase,
    ).toBe('tls_handshake');
    const plain = await listen(net.createServer((socket) => socket.end('HTTP/1.1 200 OK\r\n\r\n')));
    expect(
      classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${plain}`, identity, 5000))).phase,
    ).toBe('tls_handshake');
  });

  it('a secured connection that then carries nothing is a silent link; one then cut is a dropped link', async () => {
    const silent = await listen(tls.createServer(hubTls, () => undefined));
    const quiet = classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${silent}`, identity, 300)));
    expect(quiet.phase).toBe('silent_link');
    const cutting = await listen(tls.createServer(hubTls, (socket) => socket.once('data', () => socket.destroy())));
    const cut = classifyLinkError(await failure(new HubConnection(`https://127.0.0.1:${cutting}`, identity, 5000)));
    expect(cut.phase).toBe('link_dropped');
  });

  it('a push stream that goes quiet after opening is a silent link', async () => {
    const port = await listen(
      tls.createServer(hubTls, (socket) =>
        socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n')),
      ),
    );
    const connection = new HubConnection(`https://127.0.0.1:${port}`, identity, 5000);
    const ended = await new Promise<Error>((resolve) =>
      connection.events('/gateway/v1/events', () => undefined, resolve, 300),
    );
    connection.close();
    expect(ended.message).toBe('nothing from the hub for 0.3 s');
    expect(classifyLinkError(ended)).toMatchObject({ phase: 'silent_link' });
  });

  it('a full disk is disk full', () => {
    let error: unknown;
    try {
      writeFileSync('/dev/full', 'x');
    } catch (e) {
      error = e;
    }
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(classifyLinkError(error)).toMatchObject({ phase: 'disk_full' });
  });

  it('every phase has a label and an action', () => {
    for (const phase of FAILURE_PHASES) {
      expect(PHASE_DESCRIPTIONS[phase].label.length, phase).toBeGreaterThan(3);
      expect(PHASE_DESCRIPTIONS[phase].action, phase).toMatch(/\.$/);
    }
  });
});

describe('naming why the PACS did not store an image', () => {
  let file: string;
  const instance = { sopInstanceUid: '2.25.1', studyInstanceUid: '2.25.2' };
  let answering: HttpServer;

  beforeAll(async () => {
    file = join(mkdtempSync(join(tmpdir(), 'pacs-failure-')), 'image.dcm');
    writeFileSync(file, Buffer.alloc(1024));
  });

  const storeError = async (url: string) => {
    try {
      await new DicomWebPacs({ url, connectTimeoutMs: 2000 }).store(file, instance);
    } catch (error) {
      return error;
    }
    throw new Error('stored');
  };

  it('a PACS nobody answers for is unreachable', async () => {
    const closed = net.createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const named = classifyPacsError(await storeError(`http://127.0.0.1:${port}/dicom-web`));
    expect(named.phase).toBe('pacs_unreachable');
    expect(named.message).toMatch(/ECONNREFUSED/);
  });

  it('a PACS that answers with an error status, or refuses the image, refused it', async () => {
    answering = createHttpServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable'));
    });
    const port = await listen(answering);
    const named = classifyPacsError(await storeError(`http://127.0.0.1:${port}/dicom-web`));
    expect(named.phase).toBe('pacs_refused');
    expect(named.message).toMatch(/HTTP 503/);
    expect(classifyPacsError(new PacsRefused('the PACS refused the file')).phase).toBe('pacs_refused');
  });
});
