import 'reflect-metadata';
import {
  createHash,
  KeyObject,
  randomBytes,
  randomInt,
  webcrypto,
  X509Certificate as NodeCertificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

/**
 * The certificates of gateway enrolment (ADR 0006): the hub's own authority issues each gateway a client
 * certificate for the key the gateway made itself (its private key never leaves the box), and the hub's server
 * certificate for the gateway listener. ECDSA P-256 with SHA-256 throughout.
 */
// Node's Web Crypto is the standard one; the cast bridges the DOM type the library names.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * How far before its issue every certificate here is valid from. A mobile unit's clock may be well behind the hub's
 * (a box off for weeks with a flat RTC battery, no NTP until the link is up): with notBefore = now, such a gateway
 * would refuse the hub's freshly issued server certificate ("certificate is not yet valid") and send nothing. The
 * lifetime still counts from the moment of issue (notAfter = now + validity), so backdating grants no extra use
 * after expiry; it only widens the window at the front, which needs no secrecy (the key did not exist before).
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 2 * DAY_MS;

export interface KeyAndCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
}

/** A random positive 16-octet serial number (RFC 5280), as hex with no leading zero octet. */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x10 + (bytes[0]! % 0x70);
  return bytes.toString('hex');
}

/** The SHA-256 fingerprint of a certificate, as colon-separated upper-case hex (how browsers and openssl show it). */
export function fingerprint(certificatePem: string): string {
  return new NodeCertificate(certificatePem).fingerprint256;
}

/** Compares a fingerprint the user typed (any case, with or without colons) with a certificate's. */
export function fingerprintMatches(certificatePem: string, typed: string): boolean {
  const normalise = (s: string) => s.replace(/[^0-9a-f]/gi, '').toLowerCase();
  return normalise(fingerprint(certificatePem)) === normalise(typed) && normalise(typed).length === 64;
}

/** The hub's gateway certificate authority, made once and kept in the database. */
export async function createAuthority(commonName: string): Promise<KeyAndCertificate> {
  const keys = await newKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: [{ CN: [commonName] }, { O: ['Screening Hub'] }],
    notBefore: new Date(Date.now() - CLOCK_SKEW_ALLOWANCE_MS),
    notAfter: new Date(Date.now() + 20 * 365 * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: certificate.toString('pem'), privateKeyPem: privateKeyPem(keys.privateKey) };
}

export interface IssuedCertificate {
  certificatePem: string;
  /** Upper-case hex, as Node's TLS socket reports a peer certificate's serial number. */
  serial: string;
  fingerprint: string;
  notAfter: Date;
}

async function issue(
  authority: KeyAndCertificate,
  subject: string,
  publicKey: x509.PublicKey | CryptoKey,
  validDays: number,
  extensions: x509.Extension[],
): Promise<IssuedCertificate> {
  const ca = new x509.X509Certificate(authority.certificatePem);
  const notAfter = new Date(Date.now() + validDays * DAY_MS);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject,
    issuer: ca.subject,
    notBefore: new Date(Date.now() - CLOCK_SKEW_ALLOWANCE_MS),
    notAfter,
    publicKey,
    signingKey: await importPrivateKey(authority.privateKeyPem),
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
      ...extensions,
    ],
  });
  const pem = certificate.toString('pem');
  return {
    certificatePem: pem,
    serial: certificate.serialNumber.toUpperCase(),
    fingerprint: fingerprint(pem),
    notAfter,
  };
}

/** A gateway's client certificate, for the key in its certificate request; the subject names the gateway. */
export async function issueGatewayCertificate(
  authority: KeyAndCertificate,
  requestPem: string,
  gatewayId: string,
  unitId: string,
  validDays = 397,
): Promise<IssuedCertificate> {
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(requestPem);
  } catch {
    throw new Error('The certificate request is not a PEM PKCS #10 request');
  }
  if (!(await request.verify())) throw new Error('The certificate request is not signed by its own key');
  return issue(
    authority,
    `CN=${gatewayId}, OU=${unitId.replace(/[,+"\\<>;=]/g, '')}, O=Screening Hub gateway`,
    request.publicKey,
    validDays,
    [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  );
}

/** The hub's TLS certificate for the gateway listener, for the names gateways reach it by. */
export async function issueServerCertificate(
  authority: KeyAndCertificate,
  hostnames: readonly string[],
): Promise<KeyAndCertificate> {
  const keys = await newKeys();
  const issued = await issue(authority, `CN=${hostnames[0] ?? 'localhost'}`, keys.publicKey, 90, [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(
      hostnames.map((name) => ({ type: isIP(name) ? ('ip' as const) : ('dns' as const), value: name })),
    ),
  ]);
  return { certificatePem: issued.certificatePem, privateKeyPem: privateKeyPem(keys.privateKey) };
}

/** A new key for a gateway and its certificate request (the private key stays on the gateway). */
export async function createGatewayKey(): Promise<{ privateKeyPem: string; requestPem: string }> {
  const keys = await newKeys();
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=Screening Hub gateway',
    keys,
    signingAlgorithm: ALGORITHM,
  });
  return { privateKeyPem: privateKeyPem(keys.privateKey), requestPem: request.toString('pem') };
}

/** A one-time enrolment code: 12 characters (59 bits) from an alphabet without look-alikes, shown as XXXX-XXXX-XXXX. */
export function newEnrolmentCode(): string {
  const alphabet = 'ABCDEFGHJKMNPQRSTVWXYZ23456789';
  const chars = Array.from({ length: 12 }, () => alphabet[randomInt(alphabet.length)]).join('');
  return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8)}`;
}

/** Codes are kept hashed; the dashes and case do not matter when typed. */
export function enrolmentCodeHash(code: string): string {
  return createHash('sha256')
    .update(code.replace(/[^0-9a-z]/gi, '').toUpperCase())
    .digest('hex');
}
