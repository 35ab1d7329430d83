/** Errors the store raises for the hub to turn into a page message or an HTTP status. */

/** The thing asked for does not exist (404). */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** Someone else changed the record since it was read (409): the second writer is told, not overwritten. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** A pathway rule refused the change (422), with the field it concerns so the page can show it there. */
export class RuleError extends Error {
  override readonly name = 'RuleError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The pathway rules refused a form's change: every problem at once, each in words staff can act on. */
export class RulesRefusedError extends RuleError {
  constructor(readonly problems: string[]) {
    super('form', problems.join('. '));
  }
}

/** PostgreSQL's unique_violation, seen the same way on PGlite and on a server. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
