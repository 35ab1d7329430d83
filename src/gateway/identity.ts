import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { createGatewayKey, fingerprint, fingerprintMatches } from '../tls/certificates.js';
import { hubMessage } from './hub-connection.js';
import { writeDurably } from './worklist-copy.js';

/** Who this gateway is to the hub: its key (made here, never sent), the certificate the hub issued for it. */
export interface GatewayIdentity {
  gatewayId: string;
  unitId: string;
  privateKeyPem: string;
  certificatePem: string;
  /** The hub's gateway authority: the only issuer the gateway trusts for the hub's listener. */
  authorityPem: string;
}

const FILE = 'identity.json';

export function loadIdentity(dataDir: string): GatewayIdentity | undefined {
  const path = join(dataDir, FILE);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as GatewayIdentity) : undefined;
}

function call(
  url: URL,
  method: 'GET' | 'POST',
  tls: { ca?: string; rejectUnauthorized: boolean },
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      url,
      {
        method,
        ...tls,
        timeout: 15_000,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} in 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Enrols this gateway with the hub, once: checks the hub is the one whose authority fingerprint the support
 * page showed (so a code cannot be phished by a look-alike), makes a key, sends a certificate request with the
 * one-time code, and keeps what the hub issues in the data folder (mode 0600).
 */
export async function enrol(options: {
  hubUrl: string;
  code: string;
  authorityFingerprint: string;
  dataDir: string;
}): Promise<GatewayIdentity> {
  // The first request cannot verify the hub yet: the fingerprint check below is what makes it safe.
  const authority = await call(new URL('/gateway/v1/authority', options.hubUrl), 'GET', { rejectUnauthorized: false });
  if (authority.status !== 200 || !authority.text.includes('BEGIN CERTIFICATE'))
    throw new Error(`${options.hubUrl} did not give its gateway authority (HTTP ${authority.status})`);
  if (!fingerprintMatches(authority.text, options.authorityFingerprint))
    throw new Error(
      `The hub at ${options.hubUrl} has authority fingerprint ${fingerprint(authority.text)}, not the one given: check the hub address and the fingerprint on the hub's support page`,
    );
  const key = await createGatewayKey();
  const answer = await call(
    new URL('/gateway/v1/enrol', options.hubUrl),
    'POST',
    { ca: authority.text, rejectUnauthorized: true },
    { code: options.code, certificateRequest: key.requestPem },
  );
  if (answer.status !== 201) {
    throw new Error(`Enrolment refused: ${hubMessage(answer.text)}`);
  }
  const issued = JSON.parse(answer.text) as {
    gatewayId: string;
    unitId: string;
    certificatePem: string;
    authorityPem: string;
  };
  const identity: GatewayIdentity = {
    gatewayId: issued.gatewayId,
    unitId: issued.unitId,
    privateKeyPem: key.privateKeyPem,
    certificatePem: issued.certificatePem,
    authorityPem: issued.authorityPem,
  };
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  writeDurably(join(options.dataDir, FILE), JSON.stringify(identity, null, 2));
  return identity;
}
