import { describe, expect, it } from 'vitest';
import { escapeXml, lineChart, percent, rankedBarChart } from '../../../src/hub/svg-charts.js';

describe('rankedBarChart', () => {
  const svg = rankedBarChart({
    id: 'practice uptake',
    title: 'Uptake by <practice>',
    bars: [
      { label: 'Riverside & Co', value: 0.75, lower: 0.3, upper: 0.95 },
      { label: 'Hillside', value: 0.5 },
      { label: 'Nobody', value: null },
    ],
    max: 1,
    references: [{ value: 0.7, label: 'Standard' }],
  });
  it('is an image with an accessible name and description', () => {
    expect(svg).toMatch(/^<svg role="img" aria-labelledby="practice-uptake-title practice-uptake-desc"/);
    expect(svg).toContain('<title id="practice-uptake-title">Uptake by &lt;practice&gt;</title>');
    expect(svg).toContain(
      '<desc id="practice-uptake-desc">Riverside &amp; Co: 75.0% (95% confidence interval 30.0% to 95.0%); Hillside: 50.0%; Nobody: no value. The same numbers are in the table with this chart.</desc>',
    );
  });
  it('draws a bar per value, scaled to the maximum, and a whisker where there is an interval', () => {
    // Plot width 720 − 260 − 150 = 310: 0.75 → 232.5, 0.5 → 155.
    expect(svg).toContain('width="232.5"');
    expect(svg).toContain('width="155"');
    expect(svg.match(/<rect /g)).toHaveLength(2);
    // Whisker from 260 + 0.3 × 310 = 353 to 260 + 0.95 × 310 = 554.5, at the first row's middle (8 + 14 = 22).
    // (twice: a white halo, then the dark whisker).
    expect(svg.match(/<path d="M353 22H554.5/g)).toHaveLength(2);
    // Reference line at 260 + 0.7 × 310 = 477.
    expect(svg).toContain('x1="477"');
    expect(svg).toContain('Standard 70.0%');
    expect(svg).toContain('>No value<');
  });
  it('escapes every label', () => {
    expect(svg).not.toContain('Riverside & Co');
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
  it('copes with no bars', () => {
    const empty = rankedBarChart({ id: 'e', title: 'Empty', bars: [] });
    expect(empty).toContain('No values to show.');
    expect(empty).not.toContain('NaN');
  });
});

describe('lineChart', () => {
  const svg = lineChart({
    id: 'trend',
    title: 'Uptake by year',
    xLabels: ['2023-24', '2024-25', '2025-26'],
    series: [
      { name: 'Uptake', values: [0.6, null, 0.8] },
      { name: 'Coverage', values: [0.7, 0.75, 0.72] },
    ],
    min: 0,
    max: 1,
  });
  it('is an image with the values in its description', () => {
    expect(svg).toContain('<title id="trend-title">Uptake by year</title>');
    expect(svg).toContain(
      'Uptake: 2023-24 60.0%, 2024-25 no value, 2025-26 80.0%; Coverage: 2023-24 70.0%, 2024-25 75.0%, 2025-26 72.0%.',
    );
  });
  it('breaks a line at a missing value and marks each known point', () => {
    // x: 70, 70 + 605/2 = 372.5, 675; y = 16 + 220 × (1 − v): 0.6 → 104, 0.8 → 60.
    expect(svg).toContain('<path d="M70 104M675 60"');
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg).toContain('>Coverage</text>');
  });
  it('formats with the given function', () => {
    const counts = lineChart({
      id: 'n',
      title: 'Counts',
      xLabels: ['a'],
      series: [{ name: 'n', values: [3] }],
      format: String,
    });
    expect(counts).toContain('n: a 3.');
    expect(counts).not.toContain('NaN');
    expect(percent(0.706)).toBe('70.6%');
  });
  it('labels the axis with axisFormat, and keeps format for the description and reference lines', () => {
    const rates = lineChart({
      id: 'r',
      title: 'Detection',
      xLabels: ['2024-25', '2025-26'],
      series: [{ name: 'This office', values: [8, 12] }],
      min: 0,
      max: 20,
      format: (v) => `${v.toFixed(1)} per 1,000`,
      axisFormat: (v) => v.toFixed(1),
      references: [{ label: 'National', value: 9 }],
    });
    expect(rates).toContain('dominant-baseline="middle" fill="#212b32">20.0</text>');
    expect(rates).toContain('>0.0</text>');
    expect(rates).toContain('>National 9.0 per 1,000</text>');
    expect(rates).toContain('This office: 2024-25 8.0 per 1,000, 2025-26 12.0 per 1,000.');
  });
});
