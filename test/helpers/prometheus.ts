import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './stack';

/** The sum of a metric's samples whose labels include `labels`, from Prometheus' text format (0 when absent). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** Every metric name the Grafana dashboard's queries read, histogram series by their metric's name. */
export function dashboardMetrics(): string[] {
  const dashboard = JSON.parse(fs.readFileSync(path.join(repoRoot, 'deploy/grafana/dashboards/batchflow.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  const names = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b((?:batchflow|temporal)_[a-z_]+)\b/g)].map((m) => m[1]!)));
  return [...new Set(names.map((n) => n.replace(/_(bucket|count|sum)$/, '')))];
}
