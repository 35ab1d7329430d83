import { z } from 'zod';
import { isIsoDate } from '../pathway/dates.js';
import { nhsNumberProblem, normaliseNhsNumber } from '../pathway/nhs-number.js';

/** Form problems as the NHS design system shows them: a summary at the top linking to each field's message. */
export type FieldErrors = Record<string, string>;

export function errorList(errors: FieldErrors) {
  return Object.entries(errors).map(([field, text]) => ({ text, href: `#${field}` }));
}

/** zod's issues, first one per field, keyed by the field's name (nested paths joined with '-'). */
export function fieldErrors(error: z.ZodError): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.join('-') || 'form';
    errors[key] ??= issue.message;
  }
  return errors;
}

export const nhsNumberField = z
  .string({ error: 'Enter the NHS number' })
  .transform((v) => normaliseNhsNumber(v))
  .superRefine((v, ctx) => {
    const problem = nhsNumberProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const isoDateField = (label: string) =>
  z
    .string({ error: `Enter ${label}` })
    .trim()
    .refine((v) => isIsoDate(v), `${label[0]?.toUpperCase()}${label.slice(1)} must be a real date, like 2026-03-27`);

/**
 * A date from the NHS date input's three boxes (name[day], name[month], name[year]), with the design system's
 * messages: "Date of birth must include a month", "must be a real date", "must be in the past".
 */
export function dateFromParts(
  body: Record<string, unknown>,
  name: string,
  label: string,
  options: { required: boolean; past?: boolean; today: string },
): { value: string | null; error?: string } {
  const part = (p: string) => {
    const value = body[`${name}[${p}]`];
    return typeof value === 'string' ? value.trim() : '';
  };
  const [day, month, year] = [part('day'), part('month'), part('year')];
  if (!day && !month && !year)
    return options.required ? { value: null, error: `Enter ${label.toLowerCase()}` } : { value: null };
  const missing = [!day && 'day', !month && 'month', !year && 'year'].filter(Boolean);
  if (missing.length > 0) return { value: null, error: `${label} must include a ${missing.join(' and ')}` };
  if (!/^\d{1,2}$/.test(day) || !/^\d{1,2}$/.test(month) || !/^\d{4}$/.test(year)) {
    return { value: null, error: `${label} must be a real date` };
  }
  const iso = `${year}-${month.padStart(2, '0')}-${day.padStart(2, '0')}`;
  if (!isIsoDate(iso)) return { value: null, error: `${label} must be a real date` };
  if (options.past && iso > options.today) return { value: null, error: `${label} must be today or in the past` };
  return { value: iso };
}

/** The three boxes' form values for showing a stored date in a date input named `name`. */
export function dateParts(name: string, iso: string | null | undefined): Record<string, string> {
  const [year, month, day] = (iso ?? '').split('-');
  return { [`${name}[day]`]: day ?? '', [`${name}[month]`]: month ?? '', [`${name}[year]`]: year ?? '' };
}

/** Puts each problem from the rules next to the field it is about (the first pattern it matches); the rest are about
 * the whole form. */
export function problemsByField(problems: string[], fields: [RegExp, string][]): FieldErrors {
  const errors: FieldErrors = {};
  for (const problem of problems) {
    const field = fields.find(([pattern]) => pattern.test(problem))?.[1] ?? 'form';
    errors[field] = errors[field] ? `${errors[field]}. ${problem}` : problem;
  }
  return errors;
}
