/**
 * Small server-rendered, accessible SVG charts for report pages (uptake, KPIs). Each function returns the SVG
 * markup as a string (every text escaped) for a template to output with `| safe`:
 *
 *   rankedBarChart({ id, title, bars: [{ label, value, lower?, upper? }], max?, format?, references? })
 *     Horizontal bars, one row per item in the order given (sort first for a ranking), with confidence interval
 *     whiskers when lower and upper are given, and optional dashed reference lines (a standard, a national average).
 *   lineChart({ id, title, xLabels, series: [{ name, values }], min?, max?, format?, axisFormat?, references? })
 *     A line per series over the x labels (a trend over years); null values leave a gap. The one line plot of the
 *     hub: the uptake trend and each KPI's history use it.
 *
 * Both have role="img", an accessible name from <title> and a <desc> listing every value (`description` overrides
 * it). A chart is never the only place a number is: put the same numbers in a table next to it (the description
 * says so), and a figcaption pointing there.
 */

export interface ReferenceLine {
  value: number;
  label: string;
}

export interface Bar {
  label: string;
  value: number | null;
  lower?: number | null;
  upper?: number | null;
}

export interface RankedBarChartOptions {
  /** Unique within the page: the ids of <title> and <desc> are made from it. */
  id: string;
  title: string;
  bars: readonly Bar[];
  /** The axis maximum; by default the largest value or upper limit (1 for proportions given as fractions). */
  max?: number;
  /** Value → text (default: as a percentage of a fraction, one decimal place). */
  format?: (value: number) => string;
  references?: readonly ReferenceLine[];
  description?: string;
}

export interface Series {
  name: string;
  values: readonly (number | null)[];
}

export interface LineChartOptions {
  id: string;
  title: string;
  xLabels: readonly string[];
  series: readonly Series[];
  min?: number;
  max?: number;
  format?: (value: number) => string;
  /** The axis's top and bottom labels, where they need to be shorter than `format` (default: format). */
  axisFormat?: (value: number) => string;
  references?: readonly ReferenceLine[];
  description?: string;
}

/** Escapes text for SVG/HTML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const percent = (value: number) => `${(value * 100).toFixed(1)}%`;

const FONT = 'font-family="Frutiger W01, Arial, sans-serif" font-size="14"';
const TEXT = '#212b32';
const BAR = '#005eb8';
const AXIS = '#4c6272';
const SERIES_COLOURS = ['#005eb8', '#007f3b', '#330072', '#ffb81c', '#d5281b'];
const SERIES_DASH = ['', '6 3', '2 3', '8 3 2 3', '1 2'];
/** Rounds coordinates to one decimal place, so the markup is short and stable. */
const r = (n: number) => String(Math.round(n * 10) / 10);
const idOf = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '-');

function open(id: string, title: string, description: string, width: number, height: number) {
  const safe = idOf(id);
  return (
    `<svg role="img" aria-labelledby="${safe}-title ${safe}-desc" viewBox="0 0 ${width} ${r(height)}" width="100%" ` +
    `preserveAspectRatio="xMinYMin meet" ${FONT} xmlns="http://www.w3.org/2000/svg">` +
    `<title id="${safe}-title">${escapeXml(title)}</title><desc id="${safe}-desc">${escapeXml(description)}</desc>`
  );
}

function defaultBarDescription(bars: readonly Bar[], format: (v: number) => string) {
  if (bars.length === 0) return 'No values to show.';
  const item = (b: Bar) =>
    b.value === null
      ? `${b.label}: no value`
      : `${b.label}: ${format(b.value)}` +
        (b.lower != null && b.upper != null
          ? ` (95% confidence interval ${format(b.lower)} to ${format(b.upper)})`
          : '');
  return `${bars.map(item).join('; ')}. The same numbers are in the table with this chart.`;
}

/** Horizontal bars in the order given, with confidence interval whiskers and reference lines. */
export function rankedBarChart(options: RankedBarChartOptions): string {
  const format = options.format ?? percent;
  const { bars } = options;
  const geometry = { width: 720, labelWidth: 260, valueWidth: 150, rowHeight: 28, barHeight: 16, top: 8, bottom: 30 };
  const references = options.references ?? [];
  const max =
    options.max ??
    Math.max(...bars.flatMap((b) => [b.value ?? 0, b.upper ?? 0]), ...references.map((x) => x.value), Number.MIN_VALUE);
  const room = geometry.width - geometry.labelWidth - geometry.valueWidth;
  const x = (v: number) => geometry.labelWidth + (room * Math.min(Math.max(v, 0), max)) / max;
  const plotHeight = Math.max(1, bars.length) * geometry.rowHeight;
  const height = geometry.top + plotHeight + geometry.bottom;
  const parts = [
    open(options.id, options.title, options.description ?? defaultBarDescription(bars, format), geometry.width, height),
  ];
  bars.forEach((b, i) => {
    const y = geometry.top + i * geometry.rowHeight;
    const mid = y + geometry.rowHeight / 2;
    parts.push(
      `<g><text x="${geometry.labelWidth - 8}" y="${r(mid)}" text-anchor="end" dominant-baseline="middle" fill="${TEXT}">${escapeXml(b.label)}</text>`,
    );
    if (b.value !== null) {
      const barY = mid - geometry.barHeight / 2;
      parts.push(
        `<rect x="${geometry.labelWidth}" y="${r(barY)}" width="${r(x(b.value) - geometry.labelWidth)}" height="${geometry.barHeight}" fill="${BAR}"></rect>`,
      );
      if (b.lower != null && b.upper != null) {
        const [x1, x2] = [x(b.lower), x(b.upper)];
        const tick = geometry.barHeight / 2 + 2;
        const d = `M${r(x1)} ${r(mid)}H${r(x2)}M${r(x1)} ${r(mid - tick / 2)}V${r(mid + tick / 2)}M${r(x2)} ${r(mid - tick / 2)}V${r(mid + tick / 2)}`;
        // A white halo under the dark whisker keeps it visible over the bar.
        parts.push(
          `<path d="${d}" stroke="#ffffff" stroke-width="5" fill="none"></path><path d="${d}" stroke="${TEXT}" stroke-width="2" fill="none"></path>`,
        );
      }
    }
    const valueText = b.value === null ? 'No value' : format(b.value);
    parts.push(
      `<text x="${geometry.width - geometry.valueWidth + 8}" y="${r(mid)}" dominant-baseline="middle" fill="${TEXT}">${escapeXml(valueText)}</text></g>`,
    );
  });
  const axisBottom = geometry.top + plotHeight;
  parts.push(
    `<line x1="${geometry.labelWidth}" y1="${geometry.top}" x2="${geometry.labelWidth}" y2="${r(axisBottom)}" stroke="${AXIS}" stroke-width="1"></line>`,
    `<line x1="${geometry.labelWidth}" y1="${r(axisBottom)}" x2="${geometry.labelWidth + room}" y2="${r(axisBottom)}" stroke="${AXIS}" stroke-width="1"></line>`,
    `<text x="${geometry.labelWidth}" y="${r(axisBottom + 18)}" text-anchor="start" fill="${TEXT}">${escapeXml(format(0))}</text>`,
    `<text x="${geometry.labelWidth + room}" y="${r(axisBottom + 18)}" text-anchor="end" fill="${TEXT}">${escapeXml(format(max))}</text>`,
  );
  for (const ref of references) {
    const rx = x(ref.value);
    parts.push(
      `<g><line x1="${r(rx)}" y1="${geometry.top}" x2="${r(rx)}" y2="${r(axisBottom)}" stroke="${AXIS}" stroke-width="2" stroke-dasharray="6 4"></line>` +
        `<text x="${r(rx)}" y="${r(axisBottom + 18)}" text-anchor="middle" fill="${TEXT}">${escapeXml(`${ref.label} ${format(ref.value)}`)}</text></g>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

function defaultLineDescription(options: LineChartOptions, format: (v: number) => string) {
  const lines = options.series.map(
    (s) =>
      `${s.name}: ` +
      options.xLabels
        .map((label, i) => `${label} ${s.values[i] == null ? 'no value' : format(s.values[i])}`)
        .join(', '),
  );
  return `${lines.join('; ')}. The same numbers are in the table with this chart.`;
}

/** Lines over the x labels, one per series (each with its own colour and dash, and a legend). */
export function lineChart(options: LineChartOptions): string {
  const format = options.format ?? percent;
  const axisFormat = options.axisFormat ?? format;
  const geometry = { width: 720, left: 70, right: 45, top: 16, plotHeight: 220, legendRow: 22 };
  const values = options.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const references = options.references ?? [];
  const refValues = references.map((x) => x.value);
  const min = options.min ?? Math.min(0, ...values, ...refValues);
  const maxRaw = options.max ?? Math.max(...values, ...refValues, min + Number.EPSILON);
  const max = maxRaw > min ? maxRaw : min + 1;
  const plotWidth = geometry.width - geometry.left - geometry.right;
  const n = options.xLabels.length;
  const x = (i: number) => geometry.left + (n <= 1 ? plotWidth / 2 : (plotWidth * i) / (n - 1));
  const y = (v: number) =>
    geometry.top + geometry.plotHeight * (1 - (Math.min(Math.max(v, min), max) - min) / (max - min));
  const axisBottom = geometry.top + geometry.plotHeight;
  const legendTop = axisBottom + 40;
  const height = legendTop + options.series.length * geometry.legendRow + 4;
  const parts = [
    open(
      options.id,
      options.title,
      options.description ?? defaultLineDescription(options, format),
      geometry.width,
      height,
    ),
  ];
  // Axes, with the top and bottom values and a gridline at each.
  parts.push(
    `<line x1="${geometry.left}" y1="${geometry.top}" x2="${geometry.left}" y2="${axisBottom}" stroke="${AXIS}" stroke-width="1"></line>`,
    `<line x1="${geometry.left}" y1="${axisBottom}" x2="${geometry.left + plotWidth}" y2="${axisBottom}" stroke="${AXIS}" stroke-width="1"></line>`,
    `<line x1="${geometry.left}" y1="${geometry.top}" x2="${geometry.left + plotWidth}" y2="${geometry.top}" stroke="#d8dde0" stroke-width="1"></line>`,
    `<text x="${geometry.left - 8}" y="${geometry.top}" text-anchor="end" dominant-baseline="middle" fill="${TEXT}">${escapeXml(axisFormat(max))}</text>`,
    `<text x="${geometry.left - 8}" y="${axisBottom}" text-anchor="end" dominant-baseline="middle" fill="${TEXT}">${escapeXml(axisFormat(min))}</text>`,
  );
  options.xLabels.forEach((label, i) => {
    parts.push(
      `<text x="${r(x(i))}" y="${axisBottom + 20}" text-anchor="middle" fill="${TEXT}">${escapeXml(label)}</text>`,
    );
  });
  for (const ref of references) {
    const ry = y(ref.value);
    parts.push(
      `<g><line x1="${geometry.left}" y1="${r(ry)}" x2="${geometry.left + plotWidth}" y2="${r(ry)}" stroke="${AXIS}" stroke-width="1" stroke-dasharray="6 4"></line>` +
        `<text x="${geometry.left + plotWidth}" y="${r(ry - 4)}" text-anchor="end" fill="${TEXT}">${escapeXml(`${ref.label} ${format(ref.value)}`)}</text></g>`,
    );
  }
  options.series.forEach((s, k) => {
    const colour = SERIES_COLOURS[k % SERIES_COLOURS.length]!;
    const dash = SERIES_DASH[k % SERIES_DASH.length]!;
    // Segments between consecutive known values; a null breaks the line.
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${r(x(i))} ${r(y(v))}`;
      pen = true;
    });
    parts.push('<g>');
    if (d)
      parts.push(
        `<path d="${d}" stroke="${colour}" stroke-width="3" fill="none"${dash ? ` stroke-dasharray="${dash}"` : ''}></path>`,
      );
    s.values.forEach((v, i) => {
      if (v !== null) parts.push(`<circle cx="${r(x(i))}" cy="${r(y(v))}" r="4" fill="${colour}"></circle>`);
    });
    const ly = legendTop + k * geometry.legendRow;
    parts.push(
      `<line x1="${geometry.left}" y1="${ly}" x2="${geometry.left + 30}" y2="${ly}" stroke="${colour}" stroke-width="3"${dash ? ` stroke-dasharray="${dash}"` : ''}></line>`,
      `<text x="${geometry.left + 38}" y="${ly}" dominant-baseline="middle" fill="${TEXT}">${escapeXml(s.name)}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
