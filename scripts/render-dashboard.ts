/**
 * Draws the panels of the Grafana dashboard (deploy/grafana/dashboards/batchflow.json) from a
 * Prometheus server's data, as one HTML page: each panel's own PromQL, evaluated by Prometheus
 * over a time range, drawn as SVG in the panel's place. It makes the README's picture where
 * Grafana cannot run (no Docker); it is not Grafana, only its panels' queries and layout.
 *
 *   tsx scripts/render-dashboard.ts --prometheus http://127.0.0.1:9090 --from ISO --to ISO [--scrape-interval 15] > dashboard.html
 *   chromium --headless --screenshot=docs/dashboard.png --window-size=1600,1330 dashboard.html
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface Target {
  expr: string;
  legendFormat: string;
}
interface Panel {
  title: string;
  /** The panel's least step ("1m"): its $__interval. */
  interval?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  fieldConfig: { defaults: { unit: string; custom: { drawStyle: 'line' | 'bars' } } };
  targets: Target[];
}
interface Series {
  name: string;
  step: number;
  points: [number, number][];
}

const { values } = parseArgs({
  options: { prometheus: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, 'scrape-interval': { type: 'string', default: '15' } },
});
if (!values.prometheus || !values.from || !values.to) throw new Error('usage: render-dashboard.ts --prometheus URL --from ISO --to ISO [--scrape-interval S]');
const from = Date.parse(values.from) / 1000;
const to = Date.parse(values.to) / 1000;
const scrape = Number(values['scrape-interval']);
const defaultStep = Math.max(scrape, Math.ceil((to - from) / 240));
const seconds = (duration: string) => Number(duration.slice(0, -1)) * { s: 1, m: 60, h: 3600 }[duration.at(-1) as 's' | 'm' | 'h'];

const dashboard = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../deploy/grafana/dashboards/batchflow.json'), 'utf8')) as { title: string; panels: Panel[] };

/** A panel's query over the range, with Grafana's interval variables resolved as Grafana would. */
async function query(panel: Panel, target: Target): Promise<Series[]> {
  const step = Math.max(defaultStep, panel.interval ? seconds(panel.interval) : 0);
  // $__rate_interval: at least four scrapes, and at least a step plus a scrape.
  const expr = target.expr.replaceAll('$__rate_interval', `${Math.max(4 * scrape, step + scrape)}s`).replaceAll('$__interval', `${step}s`);
  const url = new URL('/api/v1/query_range', values.prometheus);
  url.search = new URLSearchParams({ query: expr, start: String(from), end: String(to), step: String(step) }).toString();
  const body = (await (await fetch(url)).json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; values: [number, string][] }[] } };
  if (body.status !== 'success') throw new Error(`${target.expr}: ${body.error}`);
  return body.data.result.map((r) => ({
    name: target.legendFormat.replace(/\{\{(\w+)\}\}/g, (_, label: string) => r.metric[label] ?? ''),
    step,
    points: r.values.map(([t, v]): [number, number] => [t, Number(v)]).filter(([, v]) => Number.isFinite(v)),
  })).filter((s) => s.points.length > 0);
}

const COLOURS = ['#73bf69', '#f2cc0c', '#5794f2', '#ff780a', '#f2495c', '#b877d9', '#fade2a', '#8ab8ff', '#ff9830', '#37872d'];
const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function formatValue(v: number, unit: string): string {
  const compact = (n: number) => (Math.abs(n) >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : Math.abs(n) >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : Number.isInteger(n) ? String(n) : n.toFixed(2));
  switch (unit) {
    case 'percentunit':
      return `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`;
    case 's':
      return v < 1 ? `${Math.round(v * 1000)} ms` : `${v.toFixed(1)} s`;
    case 'rowsps':
      return `${compact(v)} rows/s`;
    case 'reqps':
      return `${compact(v)} req/s`;
    default:
      return compact(v);
  }
}

const clock = (t: number) => new Date(t * 1000).toISOString().slice(11, 16);

/** One panel as SVG: axes, a line or stacked bars per series, and a legend. */
function drawPanel(panel: Panel, series: Series[], width: number, height: number): string {
  const unit = panel.fieldConfig.defaults.unit;
  const bars = panel.fieldConfig.defaults.custom.drawStyle === 'bars';
  const legendRows = Math.ceil(series.length / 3);
  const plot = { left: 70, top: 10, right: width - 12, bottom: height - 28 - legendRows * 16 };
  const stacked = new Map<number, number>();
  if (bars) for (const s of series) for (const [t, v] of s.points) stacked.set(t, (stacked.get(t) ?? 0) + v);
  const max = Math.max(...(bars ? [...stacked.values()] : series.flatMap((s) => s.points.map(([, v]) => v))), 0) * 1.1 || 1;
  const x = (t: number) => plot.left + ((t - from) / (to - from)) * (plot.right - plot.left);
  const y = (v: number) => plot.bottom - (v / max) * (plot.bottom - plot.top);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    parts.push(`<line x1="${plot.left}" x2="${plot.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${plot.left - 6}" y="${y(v) + 4}" class="axis" text-anchor="end">${escape(formatValue(v, unit))}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const t = from + ((to - from) / 5) * i;
    parts.push(`<text x="${x(t)}" y="${plot.bottom + 16}" class="axis" text-anchor="middle">${clock(t)}</text>`);
  }
  if (bars) {
    const barWidth = Math.max(1, ((series[0]?.step ?? 0) / (to - from)) * (plot.right - plot.left) * 0.8);
    const base = new Map<number, number>();
    series.forEach((s, i) => {
      for (const [t, v] of s.points) {
        if (v <= 0) continue;
        const below = base.get(t) ?? 0;
        parts.push(`<rect x="${x(t) - barWidth / 2}" y="${y(below + v)}" width="${barWidth}" height="${y(below) - y(below + v)}" fill="${COLOURS[i % COLOURS.length]}"/>`);
        base.set(t, below + v);
      }
    });
  } else {
    series.forEach((s, i) => {
      if (s.points.length === 0) return;
      // A line breaks where samples are missing (nothing ran), as Grafana draws it without spanNulls.
      const d = s.points.map(([t, v], j) => `${j === 0 || t - s.points[j - 1]![0] > 1.5 * s.step ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"/>`);
    });
  }
  if (series.length === 0) parts.push(`<text x="${(plot.left + plot.right) / 2}" y="${(plot.top + plot.bottom) / 2}" class="axis" text-anchor="middle">No data</text>`);
  series.forEach((s, i) => {
    const lx = plot.left + (i % 3) * ((plot.right - plot.left) / 3);
    const ly = plot.bottom + 34 + Math.floor(i / 3) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="4" fill="${COLOURS[i % COLOURS.length]}"/><text x="${lx + 18}" y="${ly - 4}" class="legend">${escape(s.name)}</text>`);
  });
  return `<svg width="${width}" height="${height}">${parts.join('')}</svg>`;
}

const PAGE_WIDTH = 1580;
const ROW_HEIGHT = 34;
const panels = await Promise.all(dashboard.panels.map(async (p) => ({ panel: p, series: (await Promise.all(p.targets.map((t) => query(p, t)))).flat() })));
const boxes = panels.map(({ panel, series }) => {
  const { x, y, w, h } = panel.gridPos;
  const width = (w / 24) * PAGE_WIDTH - 8;
  const height = h * ROW_HEIGHT - 8;
  return `<div class="panel" style="left:${(x / 24) * PAGE_WIDTH}px;top:${y * ROW_HEIGHT + 44}px;width:${width}px;height:${height}px"><div class="title">${escape(panel.title)}</div>${drawPanel(panel, series, width - 16, height - 36)}</div>`;
});
const bottom = Math.max(...dashboard.panels.map((p) => p.gridPos.y + p.gridPos.h)) * ROW_HEIGHT + 44;
process.stdout.write(`<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; background: #111217; color: #ccccdc; font: 13px Inter, Helvetica, Arial, sans-serif; }
.page { position: relative; width: ${PAGE_WIDTH}px; height: ${bottom}px; margin: 10px; }
h1 { font-size: 18px; font-weight: 500; margin: 0; padding: 8px 0; }
h1 span { color: #8e8e9e; font-size: 13px; margin-left: 12px; }
.panel { position: absolute; background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; padding: 8px; box-sizing: border-box; }
.title { font-weight: 500; margin-bottom: 6px; }
.grid { stroke: #2c3235; } .axis { fill: #8e8e9e; font-size: 11px; } .legend { fill: #ccccdc; font-size: 11px; }
</style></head><body><div class="page"><h1>${escape(dashboard.title)}<span>${values.from} – ${values.to} · each panel's PromQL from deploy/grafana/dashboards/batchflow.json, evaluated by Prometheus</span></h1>${boxes.join('')}</div></body></html>
`);
