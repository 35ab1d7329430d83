import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Role } from '../pathway/staff-roles.js';
import type { Db } from './database.js';

const scrypt = promisify(scryptCallback) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

export interface ScryptCost {
  N: number;
  r: number;
  p: number;
  maxmem: number;
}
/** scrypt at one of OWASP's equal-cost settings (N=2^14, r=8, p=5: 16 MiB a hash); parameters are stored with the hash. */
const COST: ScryptCost = { N: 2 ** 14, r: 8, p: 5, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

/** A salted scrypt hash of a secret, with its parameters, as verifyPassword checks it (`cost`: a lighter one for
 * secrets hashed by the hundred, such as self-booking codes). */
export async function hashPassword(password: string, cost: ScryptCost = COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password.normalize('NFC'), salt, KEY_LENGTH, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scrypt(password.normalize('NFC'), Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: COST.maxmem,
  });
  return timingSafeEqual(actual, expected);
}

export interface StaffUser {
  id: string;
  username: string;
  displayName: string;
  role: Role;
}

export async function createUser(
  db: Db,
  user: { username: string; displayName: string; role: Role; password: string },
): Promise<StaffUser> {
  const row = await db
    .insertInto('app_user')
    .values({
      username: user.username,
      display_name: user.displayName,
      role: user.role,
      password_hash: await hashPassword(user.password),
    })
    .returning(['id', 'username', 'display_name', 'role'])
    .executeTakeFirstOrThrow();
  return { id: row.id, username: row.username, displayName: row.display_name, role: row.role };
}

/** The user for a username and password, or undefined; takes as long for an unknown name as for a wrong password. */
export async function authenticate(db: Db, username: string, password: string): Promise<StaffUser | undefined> {
  const row = await db
    .selectFrom('app_user')
    .select(['id', 'username', 'display_name', 'role', 'password_hash'])
    .where('username', '=', username.trim().toLowerCase())
    .where('active', '=', true)
    .executeTakeFirst();
  const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash()));
  return row && ok ? { id: row.id, username: row.username, displayName: row.display_name, role: row.role } : undefined;
}

let dummy: Promise<string> | undefined;
const dummyHash = () => (dummy ??= hashPassword(randomBytes(16).toString('hex')));

/** Sessions end after this long without a request, and in any case this long after sign-in. */
export const SESSION_IDLE_MS = 30 * 60 * 1000;
export const SESSION_MAX_MS = 12 * 60 * 60 * 1000;
/** Only refresh last_seen_at this often, so a page view is not a write. */
const TOUCH_EVERY_MS = 60 * 1000;

const tokenHash = (token: string) => createHash('sha256').update(token).digest('base64url');

export async function startSession(db: Db, userId: string, kind: 'web' | 'api', ip: string | null): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const now = Date.now();
  await db
    .insertInto('user_session')
    .values({ token_hash: tokenHash(token), user_id: userId, kind, ip, expires_at: new Date(now + SESSION_MAX_MS) })
    .execute();
  return token;
}

export async function sessionUser(db: Db, token: string, kind: 'web' | 'api'): Promise<StaffUser | undefined> {
  const hash = tokenHash(token);
  const row = await db
    .selectFrom('user_session as s')
    .innerJoin('app_user as u', 'u.id', 's.user_id')
    .select(['u.id', 'u.username', 'u.display_name', 'u.role', 's.last_seen_at', 's.expires_at'])
    .where('s.token_hash', '=', hash)
    .where('s.kind', '=', kind)
    .where('u.active', '=', true)
    .executeTakeFirst();
  if (!row) return undefined;
  const now = Date.now();
  if (row.expires_at.getTime() <= now || row.last_seen_at.getTime() + SESSION_IDLE_MS <= now) {
    await endSession(db, token);
    return undefined;
  }
  if (now - row.last_seen_at.getTime() > TOUCH_EVERY_MS) {
    await db
      .updateTable('user_session')
      .set({ last_seen_at: new Date(now) })
      .where('token_hash', '=', hash)
      .execute();
  }
  return { id: row.id, username: row.username, displayName: row.display_name, role: row.role };
}

export async function endSession(db: Db, token: string): Promise<void> {
  await db.deleteFrom('user_session').where('token_hash', '=', tokenHash(token)).execute();
}

export async function purgeExpiredSessions(db: Db): Promise<void> {
  await db
    .deleteFrom('user_session')
    .where((eb) =>
      eb.or([eb('expires_at', '<=', new Date()), eb('last_seen_at', '<=', new Date(Date.now() - SESSION_IDLE_MS))]),
    )
    .execute();
}
