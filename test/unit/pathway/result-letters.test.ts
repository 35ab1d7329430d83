import fc from 'fast-check';
import { StandardFontEmbedder, StandardFonts } from 'pdf-lib';
import { describe, expect, it } from 'vitest';
import type { LetterChoice, LetterFormat } from '../../../src/pathway/invitation-letters.js';
import {
  isWinAnsi,
  letterBlock,
  providedTranslation,
  resultLetter,
  TRANSLATED_KINDS,
  winAnsiText,
  type ResultLetter,
  type ResultLetterFacts,
} from '../../../src/pathway/result-letters.js';
import {
  ASSESSMENT_OUTCOMES,
  COMMUNICATION_KINDS,
  type AssessmentOutcome,
  type CommunicationKind,
} from '../../../src/pathway/screening-outcomes.js';

const FORMATS: LetterFormat[] = ['standard', 'large_print', 'braille', 'easy_read', 'audio', 'translated'];

const facts = (more: Partial<ResultLetterFacts> = {}): ResultLetterFacts => ({
  kind: 'result_normal',
  date: '2026-11-23',
  givenName: 'Jane',
  familyName: 'Testwoman',
  address: ['2 Test Street', 'Leeds', 'LS6 2AB'],
  nhsNumber: '9991234567',
  dateOfBirth: '1966-05-14',
  dateOfDeath: null,
  office: { name: 'Test Breast Screening Office', address: ['1 Infirmary Street', 'LS1 3EX'], phone: '0113 496 0000' },
  screenedOn: '2026-11-16',
  nextTestDue: '2029-11-16',
  appointment: {
    date: '2026-12-01',
    time: '10:30',
    location: 'Central Breast Unit',
    address: '1 Infirmary Street, LS1 3EX',
  },
  outcome: { outcome: 'normal', earlyRecallMonths: null, referredToTreatment: false, treatmentProvider: null },
  appointmentProblem: null,
  gpInformed: true,
  ...more,
});
const choice = (format: LetterFormat, language: string | null = null, interpreter = false): LetterChoice => ({
  format,
  language,
  interpreter,
});
const words = (l: ResultLetter) => [l.text.heading, ...l.text.paragraphs].join('\n');
const outcome = (o: AssessmentOutcome, more: Partial<NonNullable<ResultLetterFacts['outcome']>> = {}) =>
  facts({
    kind: 'assessment_outcome',
    outcome: { outcome: o, earlyRecallMonths: null, referredToTreatment: false, treatmentProvider: null, ...more },
  });

/** Every string in a letter. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

describe('result letters: what each kind says', () => {
  it('a normal result: no signs of cancer, next invitation in about 3 years, her GP told, breast awareness', () => {
    const l = resultLetter(facts(), choice('standard'));
    expect(l.text.heading).toBe('Your breast screening result');
    expect(l.text.salutation).toBe('Dear Jane Testwoman');
    expect(words(l)).toContain('on 16 November 2026');
    expect(words(l)).toContain('showed no signs of cancer');
    expect(words(l)).toContain('in about 3 years, around November 2029');
    expect(words(l)).toContain('We have also told your GP your result.');
    expect(words(l)).toContain('see your GP straight away');
    expect(l.nhsNumber).toBe('999 123 4567');
    expect(l.to).toEqual(['Jane Testwoman', '2 Test Street', 'Leeds', 'LS6 2AB']);
    expect(l.from).toEqual([
      'NHS Breast Screening Programme',
      'Test Breast Screening Office',
      '1 Infirmary Street',
      'LS1 3EX',
      'Phone: 0113 496 0000',
    ]);
    // No GP: no promise that one was told.
    expect(words(resultLetter(facts({ gpInformed: false }), choice('standard')))).not.toContain('GP your result');
  });

  it('a normal result for a woman who will be 71 by her next test: not invited automatically, but can ask', () => {
    const l = resultLetter(facts({ dateOfBirth: '1958-05-01' }), choice('standard'));
    expect(words(l)).toContain('we will not invite you automatically');
    expect(words(l)).not.toContain('around November 2029');
    // Annual surveillance (very high risk): about a year.
    expect(words(resultLetter(facts({ nextTestDue: '2027-11-16' }), choice('standard')))).toContain(
      'in about a year, around November 2027',
    );
  });

  it('a technical recall: taken again, not because of a problem, with the appointment and who to call', () => {
    const l = resultLetter(facts({ kind: 'result_technical_recall' }), choice('standard'));
    expect(l.text.heading).toContain('taken again');
    expect(words(l)).toContain('It is not because we found a problem.');
    expect(words(l)).toContain('on 1 December 2026 at 10:30 at Central Breast Unit, 1 Infirmary Street, LS1 3EX');
    expect(words(l)).toContain('phone Test Breast Screening Office on 0113 496 0000');
    expect(words(l)).not.toMatch(/cancer/i);
  });

  it('a recall to assessment: more tests, most do not have cancer (4 in 5), the appointment, who to call', () => {
    const l = resultLetter(facts({ kind: 'result_assessment' }), choice('standard'));
    expect(words(l)).toContain('come back to the breast assessment clinic for some more tests');
    expect(words(l)).toContain('about 4 in every 5 women');
    expect(words(l)).toContain('Your appointment is on 1 December 2026 at 10:30 at Central Breast Unit');
    expect(words(l)).toContain('phone Test Breast Screening Office on 0113 496 0000');
    expect(words(l)).toContain('you can bring someone with you');
    // No phone number known: the office's address instead.
    const noPhone = resultLetter(
      facts({ kind: 'result_assessment', office: { name: 'Test Office', address: ['1 Street'], phone: null } }),
      choice('standard'),
    );
    expect(words(noPhone)).toContain('contact Test Office at the address at the top of this letter');
    expect(noPhone.from).not.toContainEqual(expect.stringMatching(/Phone/));
  });

  it('an assessment outcome, normal or benign: back to routine screening, or early recall', () => {
    const normal = resultLetter(outcome('normal'), choice('standard'));
    expect(words(normal)).toContain('showed no signs of cancer');
    expect(words(normal)).toContain('back to routine breast screening');
    expect(words(normal)).toContain('in about 3 years, around November 2029');
    const benign = resultLetter(outcome('benign'), choice('standard'));
    expect(words(benign)).toContain('benign means it is not cancer');
    const early = resultLetter(outcome('benign', { earlyRecallMonths: 12 }), choice('standard'));
    expect(words(early)).toContain('see you again in 12 months');
    expect(words(early)).not.toContain('routine breast screening');
  });

  it('a normal or benign outcome words her next test from its due date: a year under very high risk surveillance', () => {
    for (const o of ['normal', 'benign'] as const) {
      const veryHighRisk = { ...outcome(o), nextTestDue: '2027-11-16' };
      const standard = words(resultLetter(veryHighRisk, choice('standard')));
      expect(standard).toContain('in about a year, around November 2027');
      expect(standard).not.toMatch(/3 years/);
      const easy = words(resultLetter(veryHighRisk, choice('easy_read')));
      expect(easy).toContain('We will ask you to come again in about a year.');
      expect(easy).not.toMatch(/3 years/);
    }
    // 71 or over by then: not invited automatically, as after a normal result.
    expect(words(resultLetter({ ...outcome('normal'), dateOfBirth: '1958-05-01' }, choice('standard')))).toContain(
      'we will not invite you automatically',
    );
  });

  it('a malignant outcome: only confirms what was discussed and who looks after her; never names the diagnosis', () => {
    for (const o of ASSESSMENT_OUTCOMES.filter((x) => x.startsWith('malignant'))) {
      for (const format of ['standard', 'easy_read'] as const) {
        const l = resultLetter(
          outcome(o, { referredToTreatment: true, treatmentProvider: 'Leeds Teaching Hospitals' }),
          choice(format),
        );
        expect(words(l)).not.toMatch(/cancer|malignant|invasive|tumour|grade/i);
        expect(words(l)).toMatch(/talked about/);
        expect(words(l)).toContain('breast care team at Leeds Teaching Hospitals');
        expect(words(l)).toContain('1 December 2026 at 10:30');
      }
    }
    const noAppointment = resultLetter({ ...outcome('malignant_invasive'), appointment: null }, choice('standard'));
    expect(words(noAppointment)).toContain('your breast care team');
    expect(words(noAppointment)).toContain('They will contact you about your next appointment');
  });

  it('books an interpreter when she has one on her record', () => {
    const l = resultLetter(facts({ kind: 'result_assessment' }), choice('translated', 'Polish', true));
    expect(words(l)).toContain('We will book a Polish interpreter for your appointment.');
  });
});

describe('result letters: formats', () => {
  it('easy read differs for every kind: shorter sentences and plain words', () => {
    const sentences = (l: ResultLetter) => l.text.paragraphs.flatMap((p) => p.split(/(?<=[.!?])\s+/));
    const wordCount = (s: string) => s.split(/\s+/).length;
    const kinds: ResultLetterFacts[] = [
      facts(),
      facts({ kind: 'result_technical_recall' }),
      facts({ kind: 'result_assessment' }),
      outcome('normal'),
      outcome('benign', { earlyRecallMonths: 12 }),
      outcome('malignant_invasive'),
    ];
    for (const f of kinds) {
      const standard = resultLetter(f, choice('standard'));
      const easy = resultLetter(f, choice('easy_read'));
      expect(easy.text.paragraphs).not.toEqual(standard.text.paragraphs);
      expect(easy.format).toBe('easy_read');
      expect(easy.service).toBeNull();
      const longest = Math.max(...sentences(easy).map(wordCount));
      expect(longest, JSON.stringify(easy.text.paragraphs)).toBeLessThanOrEqual(20);
      const mean = (l: ResultLetter) =>
        sentences(l).reduce((n, s) => n + wordCount(s), 0) / Math.max(1, sentences(l).length);
      expect(mean(easy)).toBeLessThan(mean(standard));
      expect(words(easy)).not.toMatch(/mammogram|assessment|benign|routine/i);
    }
  });

  it('large print, braille and audio have the standard words; braille and audio go to the transcription service', () => {
    for (const kind of COMMUNICATION_KINDS) {
      const f = kind === 'assessment_outcome' ? outcome('normal') : facts({ kind });
      const standard = resultLetter(f, choice('standard'));
      expect(standard.service).toBeNull();
      expect(standard.coverLine).toBeNull();
      for (const format of ['large_print', 'braille', 'audio'] as const) {
        const l = resultLetter(f, choice(format));
        expect(l.text).toEqual(standard.text);
        expect(l.format).toBe(format);
        expect(l.english).toBeNull();
      }
      expect(resultLetter(f, choice('large_print')).service).toBeNull();
      expect(resultLetter(f, choice('large_print')).production).toContain('16 point');
      const braille = resultLetter(f, choice('braille'));
      expect(braille.service).toBe('transcription');
      expect(braille.coverLine).toContain('transcription service: please make this letter in braille');
      expect(resultLetter(f, choice('audio')).coverLine).toContain('in audio');
    }
  });

  it('a provided translation (Portuguese, normal result) is used, with the English version after it', () => {
    expect(TRANSLATED_KINDS.Portuguese).toEqual(['result_normal']);
    const english = resultLetter(facts(), choice('standard'));
    const l = resultLetter(facts(), choice('translated', 'Portuguese'));
    expect(l.service).toBeNull();
    expect(l.coverLine).toBeNull();
    expect(l.language).toBe('Portuguese');
    expect(l.production).toBe('Print and post (Portuguese letter, with the English version)');
    expect(l.text.lang).toBe('pt-PT');
    expect(l.text.heading).toBe('O resultado do seu rastreio do cancro da mama');
    expect(l.text.dateText).toBe('23 de novembro de 2026');
    expect(words(l)).toContain('não mostrou sinais de cancro');
    expect(words(l)).toContain('no dia 16 de novembro de 2026');
    expect(words(l)).toContain('dentro de cerca de 3 anos, por volta de novembro de 2029');
    expect(words(l)).toContain('médico de família (GP)');
    expect(l.text.labels).toEqual({ date: 'Data', nhsNumber: 'Número do NHS', page: 'Página {n} de {total}' });
    // The same letter: paragraph for paragraph, with and without a GP, before and after 71.
    expect(l.english).toEqual(english.text);
    expect(l.text.paragraphs).toHaveLength(english.text.paragraphs.length);
    for (const more of [{ gpInformed: false }, { dateOfBirth: '1958-05-01' }]) {
      const pt = resultLetter(facts(more), choice('translated', 'Portuguese'));
      const en = resultLetter(facts(more), choice('standard'));
      expect(pt.text.paragraphs).toHaveLength(en.text.paragraphs.length);
    }
    expect(words(resultLetter(facts({ dateOfBirth: '1958-05-01' }), choice('translated', 'portuguese')))).toContain(
      '71 anos ou mais',
    );
  });

  it('without a provided translation, the English letter goes to the translation service with the instruction', () => {
    const polish = resultLetter(facts(), choice('translated', 'Polish'));
    expect(polish.service).toBe('translation');
    expect(polish.coverLine).toBe(
      'For the translation service: please translate this letter into Polish and post the translation to her with this English version.',
    );
    expect(polish.text).toEqual(resultLetter(facts(), choice('standard')).text);
    expect(polish.english).toBeNull();
    expect(polish.production).toBe('Send to the translation service, then post with the English version (Polish)');
    // Portuguese is provided for the normal result only.
    const recall = resultLetter(facts({ kind: 'result_technical_recall' }), choice('translated', 'Portuguese'));
    expect(recall.service).toBe('translation');
    expect(recall.text.lang).toBe('en-GB');
    expect(providedTranslation('Portuguese', 'result_assessment')).toBeNull();
    expect(providedTranslation(' Português ', 'result_normal')).toBe('Portuguese');
    expect(providedTranslation(null, 'result_normal')).toBeNull();
  });
});

describe('letterBlock', () => {
  it('fails a letter to someone who has died, with the date', () => {
    expect(letterBlock(facts({ dateOfDeath: '2026-11-20' }))).toEqual({
      status: 'failed',
      reason: 'Died on 20 November 2026',
    });
  });

  it('holds a letter whose appointment, outcome or due date is missing', () => {
    expect(letterBlock(facts())).toBeNull();
    expect(letterBlock(facts({ kind: 'result_assessment', appointment: null }))).toEqual({
      status: 'held',
      reason: 'No appointment booked yet',
    });
    expect(
      letterBlock(
        facts({ kind: 'result_technical_recall', appointment: null, appointmentProblem: 'no clinic with room' }),
      ),
    ).toEqual({ status: 'held', reason: 'No appointment booked: no clinic with room' });
    expect(letterBlock(facts({ kind: 'assessment_outcome', outcome: null }))?.status).toBe('held');
    expect(letterBlock(facts({ nextTestDue: null }))?.status).toBe('held');
    // A malignant outcome needs no appointment: the care team arranges it.
    expect(letterBlock(outcome('malignant_invasive', {}))).toBeNull();
    // A normal or benign outcome needs her next test due date, unless she has early recall.
    expect(letterBlock({ ...outcome('normal'), nextTestDue: null })).toEqual({
      status: 'held',
      reason: 'No next test due date for the outcome',
    });
    expect(letterBlock({ ...outcome('benign', { earlyRecallMonths: 6 }), nextTestDue: null })).toBeNull();
  });

  it('holds a letter whose appointment is today or has passed: she could not get it in time', () => {
    const on = (date: string) => ({ ...facts().appointment!, date });
    for (const kind of ['result_technical_recall', 'result_assessment'] as const) {
      expect(letterBlock(facts({ kind, appointment: on('2026-11-23') }))).toEqual({
        status: 'held',
        reason:
          'Her appointment is today (23 November 2026), too soon for a letter: book her a new one, or tell her by phone',
      });
      expect(letterBlock(facts({ kind, appointment: on('2026-11-20') }))).toEqual({
        status: 'held',
        reason: 'Her appointment on 20 November 2026 has passed: book her a new one',
      });
      expect(letterBlock(facts({ kind, appointment: on('2026-11-24') }))).toBeNull();
    }
    expect(letterBlock({ ...outcome('malignant_invasive'), appointment: on('2026-11-23') })?.status).toBe('held');
    // A normal result names no appointment: nothing to hold it for.
    expect(letterBlock(facts({ appointment: on('2026-11-20') }))).toBeNull();
  });
});

describe('WinAnsi text', () => {
  const helvetica = StandardFontEmbedder.for(
    StandardFonts.Helvetica as string as Parameters<typeof StandardFontEmbedder.for>[0],
  );

  it('replaces curly quotes, dashes and letters the standard fonts lack', () => {
    expect(winAnsiText('O’Brien – “quoted”… ‘x’')).toBe(`O'Brien - "quoted"... 'x'`);
    expect(winAnsiText('Łucja Wąsowska-Żak')).toBe('Lucja Wasowska-Zak');
    expect(winAnsiText('Zoë Müller, São Tomé, Ørsted')).toBe('Zoë Müller, São Tomé, Ørsted');
    expect(winAnsiText('line\nbreak\ttab')).toBe('line break tab');
    expect(winAnsiText('王芳')).toBe('??');
    expect(isWinAnsi('São Tomé €5')).toBe(true);
    expect(isWinAnsi('Łucja')).toBe(false);
    expect(isWinAnsi('“')).toBe(true);
  });

  it('any text, once made WinAnsi, can be drawn by the standard fonts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const out = winAnsiText(s);
        expect(isWinAnsi(out)).toBe(true);
        expect(() => helvetica.encodeText(out)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });

  it('every letter of every kind, format and outcome is WinAnsi, even for names and places that are not', () => {
    const awkward: Partial<ResultLetterFacts> = {
      givenName: 'Łucja “Lucy”',
      familyName: 'O’Brien–Wąs',
      address: ['Flat 1 — Tŷ Gwyn', 'Ŵrecsam'],
      office: { name: 'Test Office', address: ['1 Street'], phone: null },
      appointment: { date: '2026-12-01', time: '10:30', location: 'Unit ‘A’', address: 'Ffordd Ŷ' },
    };
    const all: ResultLetterFacts[] = [];
    for (const kind of COMMUNICATION_KINDS as readonly CommunicationKind[])
      if (kind !== 'assessment_outcome') all.push(facts({ ...awkward, kind }));
    for (const o of ASSESSMENT_OUTCOMES)
      for (const early of [null, 12])
        all.push({
          ...outcome(o, { earlyRecallMonths: early, treatmentProvider: 'St Mary’s' }),
          ...awkward,
        });
    let n = 0;
    for (const f of all)
      for (const format of FORMATS)
        for (const language of [null, 'Portuguese', 'Polish']) {
          const l = resultLetter(f, choice(format, language, language !== null));
          for (const s of strings(l)) {
            expect(isWinAnsi(s), s).toBe(true);
            helvetica.encodeText(s);
          }
          n++;
        }
    expect(n).toBe(all.length * FORMATS.length * 3);
    const l = resultLetter(facts(awkward), choice('standard'));
    expect(l.text.salutation).toBe(`Dear Lucja "Lucy" O'Brien-Was`);
    expect(l.to).toEqual(['Lucja "Lucy" O\'Brien-Was', 'Flat 1 - Ty Gwyn', 'Wrecsam']);
  });
});
