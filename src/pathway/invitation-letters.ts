/**
 * Invitation letters in the format each woman needs (the Accessible Information Standard): her communication
 * preferences on the record (record-items.ts) choose the format, and the letter's words are data here so the
 * printed page, the transcription service and the tests read the same thing. Pure.
 *
 * One format a letter: braille, then audio, then large print, then easy read, then a translation (her preferred
 * language or an interpreter's), else standard print. An interpreter is also booked for the appointment, and a
 * letter not in English carries the English text beside the instruction to the translation service.
 */
import { formatLongDate, type IsoDate } from './dates.js';

export type LetterFormat = 'standard' | 'large_print' | 'braille' | 'easy_read' | 'audio' | 'translated';

export const LETTER_FORMAT_LABELS: Record<LetterFormat, string> = {
  standard: 'Standard print',
  large_print: 'Large print',
  braille: 'Braille',
  easy_read: 'Easy read',
  audio: 'Audio',
  translated: 'Other language',
};

/** Who makes the letter: the hub's print run, or a service it goes to first. */
export const LETTER_PRODUCTION: Record<LetterFormat, string> = {
  standard: 'Print and post',
  large_print: 'Print in large print (at least 16 point) and post',
  braille: 'Send to the transcription service for braille, then post',
  easy_read: 'Print the easy read version and post',
  audio: 'Send to the transcription service for an audio recording, then post',
  translated: 'Send to the translation service, then post with the English version',
};

export interface CommunicationItem {
  kind: string;
  value?: string | null;
  temporaryUntil?: string | null;
}

export interface LetterChoice {
  format: LetterFormat;
  /** The language for a translation, and for an interpreter at the appointment. */
  language: string | null;
  interpreter: boolean;
}

const ORDER: readonly LetterFormat[] = ['braille', 'audio', 'large_print', 'easy_read'];

/** The letter format her current communication preferences ask for. */
export function letterFormatFor(items: readonly CommunicationItem[], on: IsoDate): LetterChoice {
  const current = items.filter((i) => !i.temporaryUntil || i.temporaryUntil >= on);
  const has = (kind: string) => current.find((i) => i.kind === kind);
  const interpreter = has('interpreter');
  const preferred = has('language');
  const language = (interpreter?.value ?? preferred?.value ?? '').trim() || null;
  const english = language !== null && /^english$/i.test(language);
  const format =
    ORDER.find((f) => has(f)) ??
    (language !== null && !english && !/sign language/i.test(language) ? 'translated' : 'standard');
  return { format, language: english ? null : language, interpreter: interpreter !== undefined };
}

export interface LetterFacts {
  givenName: string;
  familyName: string;
  address: readonly string[];
  nhsNumber: string;
  appointment: { date: IsoDate; time: string; location: string; address: string; minutes: number } | null;
  code: string;
  bookingAddress: string;
  officeName: string;
  episodeType: 'C' | 'R' | null;
}

export interface Letter {
  format: LetterFormat;
  formatLabel: string;
  production: string;
  language: string | null;
  salutation: string;
  heading: string;
  paragraphs: string[];
  /** The self-booking instructions, with the code set apart so it is easy to read and type. */
  booking: { intro: string; address: string; code: string; steps: string[] };
  closing: string;
}

/** The words of her letter, in her format. */
export function invitationLetter(facts: LetterFacts, choice: LetterChoice): Letter {
  const easy = choice.format === 'easy_read';
  const a = facts.appointment;
  const when = a ? `${formatLongDate(a.date)} at ${a.time}` : '';
  const first = facts.episodeType === 'C';
  const paragraphs: string[] = [];
  if (easy) {
    paragraphs.push('This letter is about a breast screening. Breast screening is an X-ray of your breasts.');
    paragraphs.push('It can find breast cancer early, when it is easier to treat.');
    if (a) {
      paragraphs.push(`We have made an appointment for you on ${when}.`);
      paragraphs.push(`The place is ${a.location}, ${a.address}.`);
    }
    paragraphs.push('You can bring someone with you. Tell us if you need help on the day.');
  } else {
    paragraphs.push(
      first
        ? 'You are invited to your first breast screening. All women aged 50 to 71 registered with a GP are invited every 3 years.'
        : 'It is time for your next breast screening. Women aged 50 to 71 are invited every 3 years.',
    );
    if (a) {
      paragraphs.push(
        `We have booked an appointment for you on ${when} at ${a.location}, ${a.address}. It takes about ${a.minutes} minutes.`,
      );
    }
    paragraphs.push(
      'Screening is your choice. It can find cancers too small to see or feel, and it can also find cancers that would never have caused harm.',
    );
  }
  if (choice.interpreter && choice.language)
    paragraphs.push(`We will book a ${choice.language} interpreter for your appointment.`);
  return {
    format: choice.format,
    formatLabel: LETTER_FORMAT_LABELS[choice.format],
    production: LETTER_PRODUCTION[choice.format] + (choice.format === 'translated' ? ` (${choice.language})` : ''),
    language: choice.language,
    salutation: `Dear ${facts.givenName} ${facts.familyName}`,
    heading: easy ? 'Your breast screening' : 'Your breast screening appointment',
    paragraphs,
    booking: {
      intro: easy
        ? 'You can change the day or time on the internet.'
        : 'If the time does not suit you, you can choose another appointment, or cancel, online.',
      address: facts.bookingAddress,
      code: facts.code,
      steps: [
        `Go to ${facts.bookingAddress}`,
        'Enter your NHS number and date of birth',
        `Enter this code: ${facts.code}`,
      ],
    },
    closing: `${facts.officeName}`,
  };
}
