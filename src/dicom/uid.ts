import { randomUUID } from 'node:crypto';

/** A UID as PS3.5 9.1 allows it: digits and dots, no leading zeros in a component, at most 64 characters. */
export function isValidUid(uid: string): boolean {
  return uid.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(uid);
}

/** A new UID under the 2.25 root from a random UUID (PS3.5 B.2), for instances the gateway creates. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString()}`;
}
