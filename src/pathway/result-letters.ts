/**
 * Result letters to the woman herself: a normal result, a technical recall, a recall to assessment, and the outcome
 * of assessment, each in the format she needs (invitation-letters.ts chooses it from her communication
 * preferences). The words are data, so the printed page, the transcription and translation services and the tests
 * read the same thing, and the communication row keeps exactly what was sent. Pure.
 *
 * Formats: standard; easy read (short sentences, plain words); large print, braille and audio have the standard
 * words (large print is printed at 16 point or more; braille and audio go to the transcription service, which the
 * letter's cover line tells); translated: a translated letter where one is provided here (TRANSLATED_KINDS), printed
 * with the English version after it, otherwise the English letter goes to the translation service with the
 * instruction on its cover line.
 *
 * Malignant assessment outcomes are always given in person at the assessment clinic: that letter only confirms what
 * was discussed and who looks after her now. It never gives the diagnosis.
 *
 * Every string in a letter is WinAnsi text (the PDF's standard fonts): winAnsiText replaces anything else.
 */
import { ageOn, compareIsoDate, daysBetween, formatLongDate, MONTH_NAMES, type IsoDate } from './dates.js';
import { LETTER_FORMAT_LABELS, LETTER_PRODUCTION, type LetterChoice, type LetterFormat } from './invitation-letters.js';
import { formatNhsNumber } from './nhs-number.js';
import { isMalignant, type AssessmentOutcome, type CommunicationKind } from './screening-outcomes.js';

export interface LetterAppointment {
  date: IsoDate;
  /** 'HH:MM'. */
  time: string;
  location: string;
  address: string;
}

export interface LetterOutcome {
  outcome: AssessmentOutcome;
  earlyRecallMonths: number | null;
  referredToTreatment: boolean;
  treatmentProvider: string | null;
}

/** What a result letter says, gathered by the store. */
export interface ResultLetterFacts {
  kind: CommunicationKind;
  /** The letter's date: the day it is sent. */
  date: IsoDate;
  givenName: string;
  familyName: string;
  address: readonly string[];
  nhsNumber: string;
  dateOfBirth: IsoDate;
  dateOfDeath: IsoDate | null;
  office: { name: string; address: readonly string[]; phone: string | null };
  /** The day of the exam the result is for. */
  screenedOn: IsoDate | null;
  /**
   * Normal result, or a normal or benign assessment outcome without early recall: when her next screening is due
   * (36 months after screening, 12 under very high risk surveillance). The letter words the interval from it.
   */
  nextTestDue: IsoDate | null;
  /** Technical recall or assessment: the appointment booked; a malignant outcome: her next appointment, if booked. */
  appointment: LetterAppointment | null;
  /** Assessment outcome letters: the multidisciplinary outcome. */
  outcome: LetterOutcome | null;
  /** Why a technical recall or assessment appointment could not be booked (exam_result.follow_up_problem). */
  appointmentProblem: string | null;
  /** She has a registered GP, who is sent the result too. */
  gpInformed: boolean;
}

/** The words of one letter in one language. */
export interface LetterText {
  /** BCP 47 tag for the PDF: en-GB, pt-PT. */
  lang: string;
  heading: string;
  salutation: string;
  paragraphs: string[];
  closing: string[];
  dateText: string;
  labels: { date: string; nhsNumber: string; page: string };
}

/** A result letter, ready for the PDF: stored as JSON on the communication row, so it can be rendered again. */
export interface ResultLetter {
  kind: CommunicationKind;
  format: LetterFormat;
  formatLabel: string;
  /** What happens to it after printing (LETTER_PRODUCTION). */
  production: string;
  /** The language she asked for (translated letters), else null. */
  language: string | null;
  /** A transcription or translation service makes her letter from this one; the cover line tells them what to do. */
  service: 'transcription' | 'translation' | null;
  coverLine: string | null;
  date: IsoDate;
  nhsNumber: string;
  from: string[];
  to: string[];
  text: LetterText;
  /** A provided translation carries the English letter after it. */
  english: LetterText | null;
}

/** Why a queued letter cannot go: 'failed' for good (she has died), 'held' until something is done. */
export type LetterBlock = { status: 'failed' | 'held'; reason: string };

/**
 * A letter is never sent about an appointment on the letter's own day or before it: she could not get it in time.
 * It waits (held) until a later appointment is booked.
 */
function tooLate(appointment: LetterAppointment | null, date: IsoDate): LetterBlock | null {
  if (!appointment) return null;
  const order = compareIsoDate(appointment.date, date);
  if (order > 0) return null;
  return {
    status: 'held',
    reason:
      order === 0
        ? `Her appointment is today (${formatLongDate(appointment.date)}), too soon for a letter: book her a new one, or tell her by phone`
        : `Her appointment on ${formatLongDate(appointment.date)} has passed: book her a new one`,
  };
}

export function letterBlock(facts: ResultLetterFacts): LetterBlock | null {
  if (facts.dateOfDeath) return { status: 'failed', reason: `Died on ${formatLongDate(facts.dateOfDeath)}` };
  switch (facts.kind) {
    case 'result_normal':
      return facts.nextTestDue ? null : { status: 'held', reason: 'No next test due date on the result' };
    case 'result_technical_recall':
    case 'result_assessment':
      return facts.appointment
        ? tooLate(facts.appointment, facts.date)
        : {
            status: 'held',
            reason: facts.appointmentProblem
              ? `No appointment booked: ${facts.appointmentProblem}`
              : 'No appointment booked yet',
          };
    case 'assessment_outcome': {
      const o = facts.outcome;
      if (!o) return { status: 'held', reason: 'No assessment outcome recorded yet' };
      if (isMalignant(o.outcome)) return tooLate(facts.appointment, facts.date);
      if (o.earlyRecallMonths === null && !facts.nextTestDue)
        return { status: 'held', reason: 'No next test due date for the outcome' };
      return null;
    }
  }
}

// Translations -------------------------------------------------------------------------------------------------

/**
 * The result letters translated here, by language and kind. Any other language, or kind, goes to the translation
 * service as the English letter with an instruction. A translation must say the same as the English standard letter:
 * change both together (the unit tests compare their paragraph counts and facts).
 */
export const TRANSLATED_KINDS: Readonly<Record<string, readonly CommunicationKind[]>> = {
  Portuguese: ['result_normal'],
};

const LANGUAGE_NAMES: Record<string, string> = {
  portuguese: 'Portuguese',
  'portuguese (portugal)': 'Portuguese',
  'portuguese (brazil)': 'Portuguese',
  'brazilian portuguese': 'Portuguese',
  portugues: 'Portuguese',
  português: 'Portuguese',
};

/** The provided translation's language for her language and this kind of letter, or null. */
export function providedTranslation(language: string | null, kind: CommunicationKind): string | null {
  if (!language) return null;
  const name = LANGUAGE_NAMES[language.trim().toLowerCase()];
  return name && TRANSLATED_KINDS[name]?.includes(kind) ? name : null;
}

const PT_MONTHS = [
  'janeiro',
  'fevereiro',
  'março',
  'abril',
  'maio',
  'junho',
  'julho',
  'agosto',
  'setembro',
  'outubro',
  'novembro',
  'dezembro',
];
const dateParts = (date: IsoDate) => date.split('-').map(Number) as [number, number, number];
const ptLongDate = (date: IsoDate) => {
  const [y, m, d] = dateParts(date);
  return `${d} de ${PT_MONTHS[m - 1]} de ${y}`;
};
const monthYear = (date: IsoDate) => {
  const [y, m] = dateParts(date);
  return `${MONTH_NAMES[m - 1]} ${y}`;
};
const ptMonthYear = (date: IsoDate) => {
  const [y, m] = dateParts(date);
  return `${PT_MONTHS[m - 1]} de ${y}`;
};

// English words -------------------------------------------------------------------------------------------------

const ENGLISH_LABELS = { date: 'Date', nhsNumber: 'NHS number', page: 'Page {n} of {total}' };

/** In whole years, at least 1: how long until her next screening. */
function yearsUntil(from: IsoDate, due: IsoDate): number {
  return Math.max(1, Math.round(daysBetween(from, due) / 365.25));
}

/** She will be 71 or over when next due: routine invitations stop, but she can ask (self-referral). */
const pastRoutineAge = (facts: ResultLetterFacts, due: IsoDate) => ageOn(facts.dateOfBirth, due) >= 71;

function contact(facts: ResultLetterFacts): string {
  return facts.office.phone
    ? `phone ${facts.office.name} on ${facts.office.phone}`
    : `contact ${facts.office.name} at the address at the top of this letter`;
}

const when = (a: LetterAppointment) => `${formatLongDate(a.date)} at ${a.time}`;

const BREAST_AWARENESS =
  'Screening does not find every breast cancer. If you notice any change in your breasts before your next screening, such as a lump, a change in size or shape, or a change to the skin or nipple, see your GP straight away. Do not wait for your next screening.';
const BREAST_AWARENESS_EASY = [
  'If your breasts change before then, see your GP. For example, a lump, or a change to the skin or nipple.',
  'Do not wait for your next screening.',
];

function interpreterLine(choice: LetterChoice, easy: boolean): string[] {
  if (!choice.interpreter || !choice.language) return [];
  return [
    easy
      ? `We will ask a ${choice.language} interpreter to come too.`
      : `We will book a ${choice.language} interpreter for your appointment.`,
  ];
}

function nextScreening(facts: ResultLetterFacts, from: IsoDate, due: IsoDate, easy: boolean): string[] {
  if (pastRoutineAge(facts, due))
    return easy
      ? [
          'You will be 71 or over by your next screening. We will not write to you again.',
          'You can still ask for screening every 3 years. Contact us to ask.',
        ]
      : [
          'By the time your next screening is due you will be 71 or over, so we will not invite you automatically. You can still have screening every 3 years if you ask: contact us to book.',
        ];
  const years = yearsUntil(from, due);
  const inAbout = years === 1 ? 'about a year' : `about ${years} years`;
  return easy
    ? [`We will ask you to come again in ${inAbout}.`]
    : [`We will invite you for your next breast screening in ${inAbout}, around ${monthYear(due)}.`];
}

function englishWords(facts: ResultLetterFacts, choice: LetterChoice, easy: boolean): LetterText {
  const p: string[] = [];
  let heading = 'Your breast screening result';
  const screened = facts.screenedOn ? ` on ${formatLongDate(facts.screenedOn)}` : '';
  const gp = facts.gpInformed ? ['We have also told your GP your result.'] : [];
  const a = facts.appointment;
  switch (facts.kind) {
    case 'result_normal': {
      const due = facts.nextTestDue ?? facts.date;
      if (easy) {
        p.push(`Thank you for coming for breast screening${screened}.`);
        p.push('We looked at your breast X-rays.');
        p.push('We did not find any signs of cancer.');
        p.push(...nextScreening(facts, facts.screenedOn ?? facts.date, due, true));
        p.push(...BREAST_AWARENESS_EASY);
      } else {
        p.push(`Thank you for coming for breast screening${screened}.`);
        p.push('We are pleased to tell you that your mammogram (breast X-ray) showed no signs of cancer.');
        p.push(...gp);
        p.push(...nextScreening(facts, facts.screenedOn ?? facts.date, due, false));
        p.push(BREAST_AWARENESS);
      }
      break;
    }
    case 'result_technical_recall': {
      heading = easy
        ? 'We need to take your breast X-rays again'
        : 'Your breast screening: some X-rays need to be taken again';
      if (easy) {
        p.push(`Thank you for coming for breast screening${screened}.`);
        p.push('Some of your X-rays were not clear enough.');
        p.push('We need to take them again.');
        p.push('This is not because we found a problem.');
        if (a) {
          p.push(`Your new appointment is on ${when(a)}.`);
          p.push(`The place is ${a.location}, ${a.address}.`);
        }
        p.push(...interpreterLine(choice, true));
        p.push('If you cannot come, please tell us. We will find another time.');
      } else {
        p.push(`Thank you for coming for breast screening${screened}.`);
        p.push(
          'We need to take some of your X-rays again because they were not clear enough for us to read. This is for a technical reason, such as the position of the breast or a blurred picture. It is not because we found a problem.',
        );
        if (a)
          p.push(
            `We have booked an appointment for you on ${when(a)} at ${a.location}, ${a.address}. It will only take a few minutes.`,
          );
        p.push(...interpreterLine(choice, false));
        p.push(`If you cannot come at this time, please ${contact(facts)} so that we can offer you another.`);
        p.push('We are sorry for the inconvenience.');
      }
      break;
    }
    case 'result_assessment': {
      heading = easy
        ? 'Please come back for more tests'
        : 'Your breast screening result: we would like you to come back for more tests';
      if (easy) {
        p.push(`Thank you for coming for breast screening${screened}.`);
        p.push('We need to look more closely at your breast X-rays.');
        p.push('Please come back to the clinic for more tests.');
        p.push('Most women who come back do not have cancer. About 4 out of 5 women who come back do not have cancer.');
        if (a) {
          p.push(`Your appointment is on ${when(a)}.`);
          p.push(`The place is ${a.location}, ${a.address}.`);
        }
        p.push('You may be at the clinic for a few hours.');
        p.push('You can bring someone with you.');
        p.push(...interpreterLine(choice, true));
        p.push(`If you cannot come, or you have a question, please ${contact(facts)}.`);
      } else {
        p.push(`Thank you for coming for breast screening${screened}.`);
        p.push(
          'We would like you to come back to the breast assessment clinic for some more tests, because we need to look more closely at part of your mammogram (breast X-ray).',
        );
        p.push(
          'Most women who are asked to come back do not have breast cancer: about 4 in every 5 women who have more tests are found not to have cancer.',
        );
        if (a) p.push(`Your appointment is on ${when(a)} at ${a.location}, ${a.address}.`);
        p.push(
          'At the clinic you may have more X-rays, an ultrasound scan and a breast examination. Sometimes a small sample of breast tissue (a biopsy) is taken with a needle. The staff will explain each test and answer your questions. You may be at the clinic for a few hours, and you can bring someone with you.',
        );
        p.push(...interpreterLine(choice, false));
        p.push(
          `If you cannot come at this time, or you would like to talk to someone before your appointment, please ${contact(facts)}. A breast care nurse can talk to you.`,
        );
        p.push(...gp.map(() => 'We have also told your GP that we have asked you to come back.'));
      }
      break;
    }
    case 'assessment_outcome': {
      const o = facts.outcome;
      heading = easy ? 'Your breast test results' : 'Your breast assessment result';
      if (o && isMalignant(o.outcome)) {
        heading = easy ? 'Your next appointment' : 'Your care after the breast assessment clinic';
        const team = o.treatmentProvider ? `the breast care team at ${o.treatmentProvider}` : 'your breast care team';
        if (easy) {
          p.push('Thank you for coming to the breast clinic.');
          p.push('This letter is about what we talked about at the clinic.');
          p.push(`From now on, ${team} will look after you.`);
          if (a) {
            p.push(`Your next appointment is on ${when(a)}.`);
            p.push(`The place is ${a.location}, ${a.address}.`);
          } else p.push('They will tell you when your next appointment is.');
          p.push('If you have questions or you are worried, please call your breast care nurse.');
        } else {
          p.push('Thank you for coming to the breast assessment clinic.');
          p.push(`This letter confirms what we talked about with you at the clinic. Your care is now with ${team}.`);
          p.push(
            a
              ? `Your next appointment is on ${when(a)} at ${a.location}, ${a.address}.`
              : 'They will contact you about your next appointment, if they have not already done so.',
          );
          p.push(
            'If you have any questions, or anything is worrying you, please contact your breast care nurse. You can bring someone with you to your appointments.',
          );
          p.push(...gp.map(() => 'We have also written to your GP.'));
        }
        break;
      }
      const benign = o?.outcome === 'benign';
      const early = o?.earlyRecallMonths ?? null;
      if (easy) {
        p.push('Thank you for coming to the breast clinic for more tests.');
        p.push('The tests did not find cancer.');
        if (benign) p.push('The tests found a change in your breast. It is not cancer.');
        if (early) {
          p.push(`We would like to check your breasts again in ${early} months.`);
          p.push('We will write to you with an appointment.');
        } else {
          p.push('You can go back to normal breast screening.');
          p.push(...nextScreening(facts, facts.screenedOn ?? facts.date, facts.nextTestDue ?? facts.date, true));
        }
        p.push(...BREAST_AWARENESS_EASY);
      } else {
        p.push('Thank you for coming to the breast assessment clinic.');
        p.push(
          benign
            ? 'We are pleased to tell you that the tests showed no signs of cancer. They found a benign change in your breast: benign means it is not cancer. The staff at the clinic will have talked to you about it.'
            : 'We are pleased to tell you that the tests showed no signs of cancer.',
        );
        if (early)
          p.push(
            `We would like to see you again in ${early} months for another mammogram, to check that nothing has changed. We will write to you with an appointment.`,
          );
        else {
          p.push('You will go back to routine breast screening.');
          p.push(...nextScreening(facts, facts.screenedOn ?? facts.date, facts.nextTestDue ?? facts.date, false));
        }
        p.push(...gp);
        p.push(BREAST_AWARENESS);
      }
      break;
    }
  }
  return {
    lang: 'en-GB',
    heading,
    salutation: `Dear ${facts.givenName} ${facts.familyName}`,
    paragraphs: p,
    closing: ['Yours sincerely', facts.office.name],
    dateText: formatLongDate(facts.date),
    labels: ENGLISH_LABELS,
  };
}

// Portuguese words (European Portuguese) -------------------------------------------------------------------------

function portugueseWords(facts: ResultLetterFacts): LetterText {
  const p: string[] = [];
  const screened = facts.screenedOn ? ` no dia ${ptLongDate(facts.screenedOn)}` : '';
  const due = facts.nextTestDue ?? facts.date;
  p.push(`Obrigado por ter vindo ao rastreio do cancro da mama${screened}.`);
  p.push('Temos o prazer de informar que a sua mamografia (radiografia da mama) não mostrou sinais de cancro.');
  if (facts.gpInformed) p.push('Também informámos o seu médico de família (GP) do seu resultado.');
  if (pastRoutineAge(facts, due)) {
    p.push(
      'Quando chegar a altura do próximo rastreio, terá 71 anos ou mais, por isso não a convidaremos automaticamente. Pode continuar a fazer o rastreio de 3 em 3 anos se o pedir: contacte-nos para marcar.',
    );
  } else {
    const years = yearsUntil(facts.screenedOn ?? facts.date, due);
    const inAbout = years === 1 ? 'cerca de um ano' : `cerca de ${years} anos`;
    p.push(`Vamos convidá-la para o próximo rastreio dentro de ${inAbout}, por volta de ${ptMonthYear(due)}.`);
  }
  p.push(
    'O rastreio não deteta todos os cancros da mama. Se notar alguma alteração nas suas mamas antes do próximo rastreio, como um nódulo, uma alteração no tamanho ou na forma, ou uma alteração na pele ou no mamilo, consulte o seu médico de família imediatamente. Não espere pelo próximo rastreio.',
  );
  return {
    lang: 'pt-PT',
    heading: 'O resultado do seu rastreio do cancro da mama',
    salutation: `Exma. Senhora ${facts.givenName} ${facts.familyName}`,
    paragraphs: p,
    closing: ['Com os melhores cumprimentos,', facts.office.name],
    dateText: ptLongDate(facts.date),
    labels: { date: 'Data', nhsNumber: 'Número do NHS', page: 'Página {n} de {total}' },
  };
}

const TRANSLATORS: Record<string, Partial<Record<CommunicationKind, (facts: ResultLetterFacts) => LetterText>>> = {
  Portuguese: { result_normal: portugueseWords },
};

/** How her letter is made: printed here, or by a service first (LETTER_PRODUCTION), with a provided translation. */
export function letterProduction(kind: CommunicationKind, choice: Pick<LetterChoice, 'format' | 'language'>): string {
  if (choice.format !== 'translated') return LETTER_PRODUCTION[choice.format];
  const provided = providedTranslation(choice.language, kind);
  return provided
    ? `Print and post (${provided} letter, with the English version)`
    : `${LETTER_PRODUCTION.translated} (${choice.language ?? 'language not recorded'})`;
}

// The letter ----------------------------------------------------------------------------------------------------

/** The words of her result letter, in her format. */
export function resultLetter(facts: ResultLetterFacts, choice: LetterChoice): ResultLetter {
  const format = choice.format;
  const english = englishWords(facts, choice, format === 'easy_read');
  const translatedInto = format === 'translated' ? providedTranslation(choice.language, facts.kind) : null;
  const translate = translatedInto ? TRANSLATORS[translatedInto]?.[facts.kind] : undefined;
  const service =
    format === 'braille' || format === 'audio'
      ? 'transcription'
      : format === 'translated' && !translate
        ? 'translation'
        : null;
  const language = choice.language ?? null;
  const coverLine =
    service === 'transcription'
      ? `For the transcription service: please make this letter in ${format === 'braille' ? 'braille' : 'audio'} and post it to her at the address below. Do not post this printed copy.`
      : service === 'translation'
        ? `For the translation service: please translate this letter into ${language ?? 'her language'} and post the translation to her with this English version.`
        : null;
  const production = letterProduction(facts.kind, choice);
  const letter: ResultLetter = {
    kind: facts.kind,
    format,
    formatLabel: LETTER_FORMAT_LABELS[format],
    production,
    language: format === 'translated' ? language : null,
    service,
    coverLine,
    date: facts.date,
    nhsNumber: formatNhsNumber(facts.nhsNumber),
    from: ['NHS Breast Screening Programme', facts.office.name, ...facts.office.address].concat(
      facts.office.phone ? [`Phone: ${facts.office.phone}`] : [],
    ),
    to: [`${facts.givenName} ${facts.familyName}`, ...facts.address],
    text: translate ? translate(facts) : english,
    english: translate ? english : null,
  };
  return winAnsiLetter(letter);
}

// WinAnsi -------------------------------------------------------------------------------------------------------

/** WinAnsiEncoding's characters outside Latin-1 (bytes 0x80 to 0x9F). */
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');

/** Can the PDF's standard fonts show this text? */
export function isWinAnsi(text: string): boolean {
  for (const c of text) {
    const code = c.codePointAt(0)!;
    if (!((code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(c))) return false;
  }
  return true;
}

/** Typography swapped for plain equivalents, and letters outside WinAnsi for their nearest base letter. */
const REPLACEMENTS: Record<string, string> = {
  '‘': "'",
  '’': "'",
  '‚': "'",
  '‛': "'",
  '′': "'",
  '“': '"',
  '”': '"',
  '„': '"',
  '″': '"',
  '–': '-',
  '—': '-',
  '‐': '-',
  '‑': '-',
  '−': '-',
  '…': '...',
  '•': '-',
  Ł: 'L',
  ł: 'l',
  Đ: 'D',
  đ: 'd',
  Ħ: 'H',
  ħ: 'h',
  ı: 'i',
  ſ: 's',
};

/** The text as the PDF's standard fonts can show it (straight quotes, plain dashes, no characters outside WinAnsi). */
export function winAnsiText(text: string): string {
  let out = '';
  for (const c of text.normalize('NFC')) {
    const code = c.codePointAt(0)!;
    if (REPLACEMENTS[c] !== undefined) out += REPLACEMENTS[c];
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0) || /\s/u.test(c)) out += code === 0xa0 ? c : ' ';
    else if (isWinAnsi(c)) out += c;
    else {
      const base = c.normalize('NFD').replace(/\p{M}/gu, '');
      out += base !== c && isWinAnsi(base) ? base : '?';
    }
  }
  return out;
}

function winAnsiLetter<T>(value: T): T {
  if (typeof value === 'string') return winAnsiText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => winAnsiLetter(v)) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, winAnsiLetter(v)])) as T;
  return value;
}
