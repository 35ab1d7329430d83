import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  arbitrationPairs,
  DEFAULT_PACS_VIEWER_URL,
  describeOpinion,
  needsArbitration,
  nextRead,
  opinionFromForm,
  opinionProblems,
  pacsViewerUrl,
  priorImagesStatus,
  rate,
  readingOutcome,
  statisticsPeriods,
  visibleReads,
  type ArbitrationPolicy,
  type ReadSummary,
} from '../../../src/pathway/reading.js';
import { OPINIONS, type Opinion, type ReadNumber } from '../../../src/pathway/screening-outcomes.js';

const POLICIES: ArbitrationPolicy[] = ['discordant', 'all_recalls', 'all_non_normal'];
const read = (readNumber: ReadNumber, readerId: string, opinion: Opinion): ReadSummary => ({
  readNumber,
  readerId,
  opinion,
});

describe('needsArbitration: the policy matrix', () => {
  // Rows: read 1 × read 2; columns: discordant, all recalls, all non-normal.
  const N = 'normal',
    T = 'technical_recall',
    R = 'recall_assessment';
  const matrix: [Opinion, Opinion, boolean, boolean, boolean][] = [
    [N, N, false, false, false],
    [N, T, true, true, true],
    [N, R, true, true, true],
    [T, N, true, true, true],
    [T, T, false, false, true],
    [T, R, true, true, true],
    [R, N, true, true, true],
    [R, T, true, true, true],
    [R, R, false, true, true],
  ];
  it.each(matrix)('%s then %s: discordant %s, all recalls %s, all non-normal %s', (a, b, d, r, n) => {
    expect(needsArbitration(a, b, 'discordant')).toBe(d);
    expect(needsArbitration(a, b, 'all_recalls')).toBe(r);
    expect(needsArbitration(a, b, 'all_non_normal')).toBe(n);
  });

  it('arbitrationPairs lists exactly the pairs needsArbitration sends to an arbiter (the store queries these)', () => {
    for (const policy of POLICIES) {
      const pairs = arbitrationPairs(policy).map(([a, b]) => `${a}|${b}`);
      const expected = OPINIONS.flatMap((a) =>
        OPINIONS.filter((b) => needsArbitration(a, b, policy)).map((b) => `${a}|${b}`),
      );
      expect(pairs.sort()).toEqual(expected.sort());
    }
    expect(arbitrationPairs('discordant')).toHaveLength(6);
    expect(arbitrationPairs('all_non_normal')).toHaveLength(8);
  });
});

describe('readingOutcome and nextRead', () => {
  it('waits for read 1, then read 2, then decides on agreement or waits for the arbiter', () => {
    expect(readingOutcome([], 'discordant')).toEqual({ stage: 'first_read', opinion: null });
    const one = [read(1, 'a', 'normal')];
    expect(readingOutcome(one, 'discordant').stage).toBe('second_read');
    const agreed = [...one, read(2, 'b', 'normal')];
    expect(readingOutcome(agreed, 'discordant')).toEqual({ stage: 'decided', opinion: 'normal' });
    const disagree = [read(2, 'b', 'recall_assessment'), ...one];
    expect(readingOutcome(disagree, 'discordant')).toEqual({ stage: 'arbitration', opinion: null });
    expect(readingOutcome([...disagree, read(3, 'c', 'recall_assessment')], 'discordant')).toEqual({
      stage: 'decided',
      opinion: 'recall_assessment',
    });
  });

  it('gives read 1, 2, then 3 only when arbitration is needed, and never to a reader who read it', () => {
    expect(nextRead([], 'a', 'discordant')).toEqual({ readNumber: 1 });
    const one = [read(1, 'a', 'recall_assessment')];
    expect(nextRead(one, 'a', 'discordant')).toEqual({ refused: 'already_read' });
    expect(nextRead(one, 'b', 'discordant')).toEqual({ readNumber: 2 });
    const two = [...one, read(2, 'b', 'recall_assessment')];
    // Agreed recalls: decided under discordant, to arbitration under all recalls.
    expect(nextRead(two, 'c', 'discordant')).toEqual({ refused: 'decided' });
    expect(nextRead(two, 'c', 'all_recalls')).toEqual({ readNumber: 3 });
    expect(nextRead(two, 'a', 'all_recalls')).toEqual({ refused: 'already_read' });
    expect(nextRead(two, 'b', 'all_recalls')).toEqual({ refused: 'already_read' });
    const three = [...two, read(3, 'c', 'normal')];
    expect(nextRead(three, 'd', 'all_recalls')).toEqual({ refused: 'decided' });
    expect(nextRead(three, 'c', 'all_recalls')).toEqual({ refused: 'already_read' });
  });
});

describe('visibleReads: blind double reading', () => {
  const disagree = [read(1, 'a', 'normal'), read(2, 'b', 'recall_assessment')];

  it('read 1 and read 2 see only their own opinion, before and after the other read', () => {
    expect(visibleReads([read(1, 'a', 'normal')], 'a', 'discordant')).toEqual([read(1, 'a', 'normal')]);
    expect(visibleReads([read(1, 'a', 'normal')], 'b', 'discordant')).toEqual([]);
    expect(visibleReads(disagree, 'a', 'discordant')).toEqual([disagree[0]]);
    expect(visibleReads(disagree, 'b', 'discordant')).toEqual([disagree[1]]);
    const arbitrated = [...disagree, read(3, 'c', 'normal')];
    expect(visibleReads(arbitrated, 'a', 'discordant')).toEqual([disagree[0]]);
    expect(visibleReads(arbitrated, 'b', 'discordant')).toEqual([disagree[1]]);
  });

  it('the arbiter sees both blind reads when the exam waits for them, and all three after', () => {
    expect(visibleReads(disagree, 'c', 'discordant')).toEqual(disagree);
    const arbitrated = [read(3, 'c', 'normal'), ...disagree];
    expect(visibleReads(arbitrated, 'c', 'discordant').map((r) => r.readNumber)).toEqual([1, 2, 3]);
    // Anyone else, once decided: nothing.
    expect(visibleReads(arbitrated, 'd', 'discordant')).toEqual([]);
  });

  it('an exam not waiting for arbitration shows no one else anything', () => {
    const agreed = [read(1, 'a', 'normal'), read(2, 'b', 'normal')];
    expect(visibleReads(agreed, 'c', 'discordant')).toEqual([]);
    expect(visibleReads(agreed, 'c', 'all_non_normal')).toEqual([]);
  });

  it('property: a first or second reader never sees another reader’s opinion, whatever the reads', () => {
    const opinion = fc.constantFrom(...OPINIONS);
    fc.assert(
      fc.property(
        fc.tuple(opinion, opinion, opinion),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(...POLICIES),
        ([o1, o2, o3], count, policy) => {
          const reads = [read(1, 'r1', o1), read(2, 'r2', o2), read(3, 'r3', o3)].slice(0, count);
          for (const reader of ['r1', 'r2']) {
            expect(visibleReads(reads, reader, policy).every((r) => r.readerId === reader)).toBe(true);
          }
          // Nobody but the arbiter ever sees two reads.
          for (const reader of ['r1', 'r2', 'r4']) {
            const seen = visibleReads(reads, reader, policy);
            const arbiterToBe = reader === 'r4' && readingOutcome(reads, policy).stage === 'arbitration';
            expect(seen.length <= 1 || arbiterToBe).toBe(true);
          }
        },
      ),
    );
  });
});

describe('pacsViewerUrl', () => {
  const study = { studyInstanceUid: '2.25.123456789', accessionNumber: 'EX000001AB' };

  it('fills the default Orthanc-style DICOMweb study URL', () => {
    expect(pacsViewerUrl(DEFAULT_PACS_VIEWER_URL, study)).toBe('/dicom-web/studies/2.25.123456789');
  });

  it('fills both placeholders, URL-encoded, in a PACS viewer template', () => {
    expect(
      pacsViewerUrl('https://pacs.example.nhs.uk/viewer?study={studyInstanceUid}&acc={accessionNumber}', {
        studyInstanceUid: '1.2.3',
        accessionNumber: 'A B&C',
      }),
    ).toBe('https://pacs.example.nhs.uk/viewer?study=1.2.3&acc=A%20B%26C');
  });

  it('gives no link when the template needs what the exam lacks, or is not an http(s) URL or a path', () => {
    expect(pacsViewerUrl(DEFAULT_PACS_VIEWER_URL, { studyInstanceUid: null, accessionNumber: 'X' })).toBeNull();
    expect(pacsViewerUrl('/viewer?acc={accessionNumber}', { studyInstanceUid: null, accessionNumber: 'X1' })).toBe(
      '/viewer?acc=X1',
    );
    expect(pacsViewerUrl('javascript:alert({studyInstanceUid})', study)).toBeNull();
  });
});

describe('priorImagesStatus', () => {
  it('shows an unrecorded status as not needed at a first call, else not requested', () => {
    expect(priorImagesStatus(null, 'C')).toBe('not_needed');
    expect(priorImagesStatus(null, 'R')).toBe('not_requested');
    expect(priorImagesStatus('received', 'C')).toBe('received');
  });
});

describe('opinionFromForm and opinionProblems', () => {
  const finding = (side: 'right' | 'left', more: Record<string, string> = {}) => ({
    [`${side}-lesion`]: 'microcalcification',
    [`${side}-location`]: 'upper outer quadrant',
    [`${side}-concern`]: '4',
    ...more,
  });

  it('takes a normal opinion with a comment', () => {
    expect(opinionFromForm({ opinion: 'normal', comment: ' dense breasts ' })).toEqual({
      input: { opinion: 'normal', details: {}, comment: 'dense breasts' },
      problems: [],
    });
  });

  it('needs an opinion', () => {
    expect(opinionFromForm({}).problems).toEqual([
      { field: 'opinion', message: 'Choose normal, technical recall or recall for assessment' },
    ]);
  });

  it('needs the views and a reason for a technical recall', () => {
    const { problems } = opinionFromForm({ opinion: 'technical_recall' });
    expect(problems.map((p) => p.field)).toEqual(['views', 'technicalReason']);
    expect(
      opinionFromForm({ opinion: 'technical_recall', views: ['RCC', 'LMLO'], technicalReason: 'blurred' }),
    ).toMatchObject({ input: { details: { views: ['RCC', 'LMLO'], reason: 'blurred' } } });
    expect(opinionFromForm({ opinion: 'technical_recall', views: 'RCC', technicalReason: 'exposure' }).input).toEqual({
      opinion: 'technical_recall',
      details: { views: ['RCC'], reason: 'exposure' },
      comment: '',
    });
    expect(
      opinionFromForm({ opinion: 'technical_recall', views: 'XCC', technicalReason: 'exposure' }).problems,
    ).toEqual([{ field: 'views', message: 'Choose the views to repeat' }]);
  });

  it('needs at least one finding for a recall for assessment, each complete', () => {
    expect(opinionFromForm({ opinion: 'recall_assessment' }).problems).toEqual([
      { field: 'right-lesion', message: 'Record a finding in one or both breasts: choose the lesion type' },
    ]);
    expect(opinionFromForm({ opinion: 'recall_assessment', ...finding('left') }).input).toEqual({
      opinion: 'recall_assessment',
      details: {
        findings: [{ side: 'left', lesion: 'microcalcification', location: 'upper outer quadrant', concern: 4 }],
      },
      comment: '',
    });
    const both = opinionFromForm({ opinion: 'recall_assessment', ...finding('right'), ...finding('left') });
    expect(both.input?.details).toMatchObject({ findings: [{ side: 'right' }, { side: 'left' }] });
    const incomplete = opinionFromForm({
      opinion: 'recall_assessment',
      ...finding('right', { 'right-location': '', 'right-concern': '6' }),
    });
    expect(incomplete.problems.map((p) => p.field)).toEqual(['right-location', 'right-concern']);
    const noLesion = opinionFromForm({ opinion: 'recall_assessment', ...finding('left', { 'left-lesion': '' }) });
    expect(noLesion.problems).toEqual([{ field: 'left-lesion', message: 'Choose the lesion type in the left breast' }]);
  });

  it('never drops a finding or views entered under another opinion: it asks the reader to put it right', () => {
    const normalWithFinding = opinionFromForm({ opinion: 'normal', ...finding('right') });
    expect(normalWithFinding.input).toBeNull();
    expect(normalWithFinding.problems[0]?.field).toBe('right-lesion');
    expect(normalWithFinding.problems[0]?.message).toMatch(/your opinion is normal/);
    const recallWithViews = opinionFromForm({ opinion: 'recall_assessment', ...finding('left'), views: 'RCC' });
    expect(recallWithViews.problems.map((p) => p.field)).toEqual(['views']);
  });

  it('the store-side check refuses details of the wrong shape from any caller', () => {
    expect(opinionProblems('normal', {}, '')).toEqual([]);
    expect(opinionProblems('normal', { findings: [] }, '')).toHaveLength(1);
    expect(opinionProblems('maybe', {}, '')).toHaveLength(1);
    expect(opinionProblems('normal', {}, 'x'.repeat(2001))).toHaveLength(1);
    expect(opinionProblems('technical_recall', { views: ['RCC', 'RCC'], reason: 'blurred' }, '')[0]?.message).toBe(
      'Choose each view once',
    );
    const twoRight = {
      findings: [
        { side: 'right', lesion: 'lymph_node', location: 'axilla', concern: 2 },
        { side: 'right', lesion: 'mass_ill_defined', location: 'central', concern: 5 },
      ],
    };
    expect(opinionProblems('recall_assessment', twoRight, '')).toEqual([
      { field: 'right-lesion', message: 'Record one finding in the right breast' },
    ]);
    expect(opinionProblems('recall_assessment', { findings: [] }, '')[0]?.field).toBe('findings');
    expect(opinionProblems('recall_assessment', null, '')[0]?.field).toBe('opinion');
  });

  it('describes an opinion in words', () => {
    expect(
      describeOpinion('recall_assessment', {
        findings: [{ side: 'left', lesion: 'architectural_distortion', location: '2 o’clock', concern: 3 }],
      }),
    ).toEqual(['Recall for assessment', 'Left breast: Architectural distortion, 2 o’clock, level of concern 3']);
    expect(describeOpinion('technical_recall', { views: ['RCC'], reason: 'positioning' })).toEqual([
      'Technical recall',
      'Repeat RCC: Positioning',
    ]);
  });
});

describe('reader statistics periods', () => {
  it('covers this calendar year and the 12 months to today', () => {
    expect(statisticsPeriods('2026-11-23')).toEqual({ yearFrom: '2026-01-01', twelveMonthsFrom: '2025-11-24' });
    expect(statisticsPeriods('2028-02-29')).toEqual({ yearFrom: '2028-01-01', twelveMonthsFrom: '2027-03-01' });
    expect(rate(1, 4)).toBe(0.25);
    expect(rate(0, 0)).toBeNull();
  });
});
