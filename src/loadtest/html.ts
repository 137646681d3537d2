import { formatBytes, formatStatusCounts, revocationLine, type LoadtestReport } from './report.js';
import { STATUS_KEYS } from './stats.js';

/**
 * The HTML report: one file that opens without a network. The charts are inline SVG drawn here
 * (no script, no CDN, no font or style sheet from elsewhere); the report itself is embedded as
 * JSON (`<script type="application/json" id="loadtest-report">`, data only, never run) for
 * whoever wants to redraw it.
 */

const WIDTH = 760;
const HEIGHT = 240;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 36 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const LEGEND_STEP = 66;

const STATUS_COLORS: Record<string, string> = {
  '200': '#2e7d32',
  '401': '#f9a825',
  '403': '#ef6c00',
  '429': '#6a1b9a',
  '5xx': '#c62828',
  errors: '#37474f',
  timeouts: '#90a4ae',
};
const OTHER_COLORS = ['#1565c0', '#00838f', '#ad1457', '#5d4037', '#9e9d24'];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** 1, 2 or 5 times a power of ten, so that about `count` steps cover `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  if (raw <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

interface Axis {
  x: (v: number) => number;
  y: (v: number) => number;
  svg: string;
}

/** Scales, grid lines and tick labels for x in [0, xMax] seconds and y in [0, yMax]. */
function axes(xMax: number, yMax: number, yLabel: string): Axis {
  const yStep = niceStep(yMax, 4);
  const yTop = Math.max(yStep, Math.ceil(yMax / yStep) * yStep);
  const xTop = Math.max(1, xMax);
  const x = (v: number) => MARGIN.left + (v / xTop) * PLOT_W;
  const y = (v: number) => MARGIN.top + PLOT_H - (v / yTop) * PLOT_H;
  const parts: string[] = [];
  for (let v = 0; v <= yTop + yStep / 2; v += yStep) {
    const py = y(v).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${py}" y2="${py}" class="grid"/>`,
      `<text x="${MARGIN.left - 6}" y="${py}" class="tick" text-anchor="end" dominant-baseline="middle">${+v.toPrecision(6)}</text>`,
    );
  }
  const xStep = niceStep(xTop, 8);
  for (let v = 0; v <= xTop + xStep / 2; v += xStep) {
    parts.push(
      `<text x="${x(v).toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 16}" class="tick" text-anchor="middle">${+v.toPrecision(6)}</text>`,
    );
  }
  parts.push(
    `<text x="${WIDTH - MARGIN.right}" y="${HEIGHT - 4}" class="tick" text-anchor="end">seconds</text>`,
    `<text x="${MARGIN.left}" y="16" class="label">${escapeHtml(yLabel)}</text>`,
  );
  return { x, y, svg: parts.join('') };
}

function marker(axis: Axis, at: number | undefined, label: string): string {
  if (at === undefined) return '';
  const px = axis.x(at).toFixed(1);
  return (
    `<line x1="${px}" x2="${px}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" class="marker"/>` +
    `<text x="${(+px + 4).toFixed(1)}" y="${MARGIN.top + 12}" class="tick" text-anchor="start">${escapeHtml(label)}</text>`
  );
}

function lineChart(
  id: string,
  title: string,
  points: [number, number][],
  color: string,
  revokedAtS: number | undefined,
): string {
  const xMax = points.at(-1)?.[0] ?? 1;
  const yMax = Math.max(...points.map((p) => p[1]), 0);
  const axis = axes(xMax, yMax, title);
  const path = points.map(([px, py]) => `${axis.x(px).toFixed(1)},${axis.y(py).toFixed(1)}`).join(' ');
  const dots = points
    .map(
      ([px, py]) =>
        `<circle cx="${axis.x(px).toFixed(1)}" cy="${axis.y(py).toFixed(1)}" r="2.5" fill="${color}"><title>${px} s: ${py}</title></circle>`,
    )
    .join('');
  return (
    `<svg id="${id}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">${axis.svg}` +
    `<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>${dots}${marker(axis, revokedAtS, 'revoked')}</svg>`
  );
}

/** Stacked bars a second: how the answers were split over time. */
function statusChart(
  report: LoadtestReport,
  keys: string[],
  colors: Record<string, string>,
  revokedAtS: number | undefined,
): string {
  const seconds = report.timeline;
  const totals = seconds.map((s) => keys.reduce((n, k) => n + (s.statusCounts[k] ?? 0), 0));
  const axis = axes(seconds.at(-1)?.t ?? 1, Math.max(...totals, 0), 'answers per interval, by status');
  const bars: string[] = [];
  let previousT = 0;
  for (const s of seconds) {
    const x0 = axis.x(previousT) + 1;
    const width = Math.max(1, axis.x(s.t) - axis.x(previousT) - 2);
    let stacked = 0;
    for (const k of keys) {
      const n = s.statusCounts[k] ?? 0;
      if (n === 0) continue;
      const top = axis.y(stacked + n);
      bars.push(
        `<rect x="${x0.toFixed(1)}" y="${top.toFixed(1)}" width="${width.toFixed(1)}" height="${(axis.y(stacked) - top).toFixed(1)}" fill="${colors[k]}"><title>${s.t} s: ${k} ${n}</title></rect>`,
      );
      stacked += n;
    }
    previousT = s.t;
  }
  const legendX = WIDTH - MARGIN.right - keys.length * LEGEND_STEP;
  const legend = keys
    .map(
      (k, i) =>
        `<rect x="${legendX + i * LEGEND_STEP}" y="6" width="10" height="10" fill="${colors[k]}"/>` +
        `<text x="${legendX + 14 + i * LEGEND_STEP}" y="15" class="tick">${escapeHtml(k)}</text>`,
    )
    .join('');
  return `<svg id="status-chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="status mix">${axis.svg}${bars.join('')}${legend}${marker(axis, revokedAtS, 'revoked')}</svg>`;
}

/** JSON inside a <script> element: `<` escaped so no string in it can close the element. */
function embeddedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function renderHtmlReport(report: LoadtestReport): string {
  const keys = [
    ...(STATUS_KEYS as readonly string[]),
    ...Object.keys(report.statusCounts)
      .filter((k) => !(STATUS_KEYS as readonly string[]).includes(k))
      .sort(),
  ].filter((k) => (report.statusCounts[k] ?? 0) > 0);
  const colors: Record<string, string> = { ...STATUS_COLORS };
  keys
    .filter((k) => !colors[k])
    .forEach((k, i) => {
      colors[k] = OTHER_COLORS[i % OTHER_COLORS.length]!;
    });
  let previousT = 0;
  const throughput: [number, number][] = [];
  for (const s of report.timeline) {
    throughput.push([s.t, Math.round(s.requests / Math.max(0.1, s.t - previousT))]);
    previousT = s.t;
  }
  const p99 = report.timeline.map((s): [number, number] => [s.t, s.p99Ms]);
  const revokedAtS = report.revocation?.revokedAtS ?? undefined;
  const rows: [string, string][] = [
    ['target', `${report.target}${report.path}`],
    ['started', report.startedAt],
    [
      'length',
      `${report.durationS} s, ${report.connections} connections, ${report.rate === null ? 'as fast as it goes' : `${report.rate} req/s asked`}, ${report.auth}`,
    ],
    ['token mix', `warm ${report.sent.warm}, unknown ${report.sent.invalid}, cold ${report.sent.cold}`],
    ['requests', `${report.requests} (${report.requestsPerSecond} req/s), ${formatBytes(report.bytesPerSecond)}`],
    [
      'latency ms',
      `p50 ${report.latencyMs.p50}, p90 ${report.latencyMs.p90}, p99 ${report.latencyMs.p99}, max ${report.latencyMs.max}`,
    ],
    ['status', formatStatusCounts(report.statusCounts)],
    [
      'load generator',
      `${Math.round(report.generator.cpuShare * 100)}% of one core${report.generator.saturated ? ' (saturated: the figures are a floor)' : ''}`,
    ],
  ];
  if (report.revocation) rows.push(['revocation', revocationLine(report.revocation)]);
  if (report.interrupted) rows.push(['interrupted', 'yes: the figures cover the run until the interruption']);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate load test ${escapeHtml(report.startedAt)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: ${WIDTH + 40}px; color: #222; }
table { border-collapse: collapse; margin-bottom: 16px; }
th { text-align: left; padding: 2px 16px 2px 0; color: #555; font-weight: normal; vertical-align: top; }
td { padding: 2px 0; }
svg { width: 100%; height: auto; display: block; margin: 12px 0 20px; }
.grid { stroke: #e3e3e3; }
.tick { font-size: 11px; fill: #555; }
.label { font-size: 13px; fill: #222; font-weight: 600; }
.marker { stroke: #c62828; stroke-dasharray: 4 3; }
</style>
</head>
<body>
<h1>Tollgate load test</h1>
<table>
${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n')}
</table>
<h2>Throughput</h2>
${lineChart('throughput-chart', 'requests per second', throughput, '#1565c0', revokedAtS)}
<h2>p99 latency</h2>
${lineChart('p99-chart', 'p99 latency, ms (per interval)', p99, '#ef6c00', revokedAtS)}
<h2>Status mix</h2>
${statusChart(report, keys, colors, revokedAtS)}
<script type="application/json" id="loadtest-report">${embeddedJson(report)}</script>
</body>
</html>
`;
}
