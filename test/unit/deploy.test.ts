import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import YAML from 'yaml';
import { buildApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import type { Pool } from '../../src/db/pool';
import { searchAttributeTypes } from '../../src/jobs';
import { createApiRegistry } from '../../src/metrics/api';
import { workerRegistry } from '../../src/metrics/worker';
import { dashboardMetrics } from '../helpers/prometheus';
import { repoRoot } from '../helpers/stack';
import { loadDatasets } from '../../src/datasets';

const read = (file: string) => fs.readFileSync(path.join(repoRoot, file), 'utf8');
const yaml = <T>(file: string) => YAML.parse(read(file)) as T;

interface Compose {
  'x-batchflow-env': Record<string, string>;
  services: Record<string, { command?: string[]; volumes?: string[]; environment?: Record<string, string> }>;
}
interface Scrape {
  scrape_configs: { job_name: string; static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[] }[];
}

describe('the production stack (docker-compose.yml and deploy/)', () => {
  const compose = yaml<Compose>('docker-compose.yml');
  const defaults = loadConfig({}).metrics;

  it('Prometheus scrapes the ports the API and the workers serve their metrics on', () => {
    const jobs = Object.fromEntries(yaml<Scrape>('deploy/prometheus/prometheus.yml').scrape_configs.map((j) => [j.job_name, j]));
    assert.deepEqual(jobs['batchflow-api']!.static_configs![0]!.targets, [`api:${defaults.apiPort}`]);
    assert.deepEqual(jobs['batchflow-worker']!.dns_sd_configs![0], { names: ['worker'], type: 'A', port: defaults.workerPort });
    assert.deepEqual(jobs['temporal-sdk']!.dns_sd_configs![0], { names: ['worker'], type: 'A', port: defaults.temporalPort });
    assert.equal(compose['x-batchflow-env'].BATCHFLOW_METRICS_HOST, '0.0.0.0', 'metrics listen beyond the container');
  });

  it('Grafana is provisioned with the Prometheus data source and the dashboard its queries use', () => {
    const grafana = compose.services.grafana!;
    const mounts: Record<string, string> = Object.fromEntries(grafana.volumes!.map((v) => [v.split(':')[1]!, v.split(':')[0]!]));
    assert.equal(mounts['/etc/grafana/provisioning'], './deploy/grafana/provisioning');
    const provider = yaml<{ providers: { options: { path: string } }[] }>('deploy/grafana/provisioning/dashboards/batchflow.yml').providers[0]!;
    assert.equal(mounts[provider.options.path], './deploy/grafana/dashboards');
    const datasource = yaml<{ datasources: { uid: string; url: string }[] }>('deploy/grafana/provisioning/datasources/prometheus.yml').datasources[0]!;
    assert.equal(datasource.url, 'http://prometheus:9090');
    const dashboard = read('deploy/grafana/dashboards/batchflow.json');
    assert.deepEqual([...new Set([...dashboard.matchAll(/"uid": "([^"]+)"/g)].map((m) => m[1]))], ['batchflow', datasource.uid]);
  });

  it('the image, npm start and npm run worker (which the bench copies) bound the old generation alike', () => {
    const flag = /--max-old-space-size=\d+/;
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const bound = flag.exec(scripts.worker!)?.[0];
    assert.ok(bound, 'npm run worker bounds the old generation');
    assert.equal(flag.exec(scripts.start!)?.[0], bound);
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(read('Dockerfile'))![1]!) as string[];
    assert.deepEqual(entrypoint, ['node', bound, 'bin/batchflow.js']);
  });

  it("the dashboard reads Batchflow's metrics by their registered names", () => {
    const apiRegistry = createApiRegistry();
    buildApp({ client: {} as Client, pool: {} as Pool, config: loadConfig({}), datasets: loadDatasets(loadConfig({}).datasetDirs), metrics: apiRegistry });
    const registered = new Set([...workerRegistry.getMetricsAsArray(), ...apiRegistry.getMetricsAsArray()].map((m) => m.name));
    const batchflow = dashboardMetrics().filter((n) => n.startsWith('batchflow_'));
    assert.ok(batchflow.length >= 7);
    for (const name of batchflow) assert.ok(registered.has(name), `${name} is registered`);
  });

  it('temporal-setup registers every search attribute runs carry', () => {
    const setup = compose.services['temporal-setup']!.command!.join(' ');
    for (const name of Object.keys(searchAttributeTypes)) assert.match(setup, new RegExp(`\\b${name}\\b`));
  });
});
