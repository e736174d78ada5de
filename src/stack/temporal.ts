import { Connection } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './ports';
import { startService } from './process';
import { cacheDir, ensureTemporalCli } from './tools';

export type SearchAttributeTypeName = 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

export interface TemporalOptions {
  /** Persist workflow history in this SQLite file; in memory when absent. */
  dbFile?: string;
  /** Front-end gRPC port; a free one when absent. */
  port?: number;
  /** The Web UI's port (a free one when absent), or false for none. */
  uiPort?: number | false;
  /** Created at start ("default" always exists). */
  namespace?: string;
  /** Custom search attributes to register. */
  searchAttributes: Record<string, SearchAttributeTypeName>;
  logFile: string;
  log: (m: string) => void;
}

export interface TemporalStack {
  /** host:port of the front-end gRPC service. */
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

const sdkTypes: Record<SearchAttributeTypeName, SearchAttributeType> = {
  Keyword: SearchAttributeType.KEYWORD,
  Text: SearchAttributeType.TEXT,
  Int: SearchAttributeType.INT,
  Double: SearchAttributeType.DOUBLE,
  Bool: SearchAttributeType.BOOL,
  Datetime: SearchAttributeType.DATETIME,
  KeywordList: SearchAttributeType.KEYWORD_LIST,
};

/**
 * The Temporal CLI's dev server on 127.0.0.1 with the given search attributes registered. Every
 * port it opens is chosen free, so that several stacks (npm start, npm test, the bench) can run side
 * by side. Resolves once a client can reach the namespace and sees the search attributes.
 */
export async function startTemporal(opts: TemporalOptions): Promise<TemporalStack> {
  const cli = await ensureTemporalCli(opts.log);
  if (opts.dbFile) fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  if (!cli) return startDownloaded(opts);
  // The dev server picks free ports for its internal services as well, and may take one of ours
  // between our check and its bind: then start again on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCli(cli, opts);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
      opts.log(`Temporal dev server: a port was taken while it started; retrying on other ports`);
    }
  }
}

/** The ports a start uses: the ones asked for, free ones for the rest. */
async function choosePorts(opts: TemporalOptions) {
  const port = opts.port ?? (await freePort());
  const uiPort = opts.uiPort === false ? undefined : (opts.uiPort ?? (await freePort()));
  return { port, uiPort, address: `127.0.0.1:${port}`, uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}` };
}

/** The SDK's own download of the dev server, for machines without the CLI or Go. */
async function startDownloaded(opts: TemporalOptions): Promise<TemporalStack> {
  const namespace = opts.namespace ?? 'default';
  const { port, uiPort, address, uiUrl } = await choosePorts(opts);
  opts.log('no Temporal CLI and no Go to build it: letting the Temporal SDK download the dev server');
  // Loaded only here: it brings the SDK's native core with it.
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download', downloadDir: path.join(cacheDir(), 'sdk-download') },
      ip: '127.0.0.1',
      port,
      namespace,
      dbFilename: opts.dbFile,
      ...(uiPort === undefined ? { ui: false } : { ui: true, uiPort }),
      log: { format: 'pretty', level: 'warn' },
      searchAttributes: Object.entries(opts.searchAttributes).map(([name, type]) => defineSearchAttributeKey(name, sdkTypes[type])),
    },
  });
  try {
    await waitUntilReady(address, namespace, opts.searchAttributes, 60_000);
  } catch (err) {
    await env.teardown();
    throw err;
  }
  return { address, uiUrl, stop: () => env.teardown() };
}

async function startCli(cli: string, opts: TemporalOptions): Promise<TemporalStack> {
  const namespace = opts.namespace ?? 'default';
  const { port, uiPort, address, uiUrl } = await choosePorts(opts);

  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port)];
  args.push(...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]));
  // The HTTP API and metrics ports otherwise default to free ports too; fixing them here keeps them off ports other stacks were just given.
  const [httpPort, metricsPort] = [await freePort(), await freePort()];
  args.push('--http-port', String(httpPort), '--metrics-port', String(metricsPort));
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  args.push('--namespace', namespace);
  for (const [name, type] of Object.entries(opts.searchAttributes)) args.push('--search-attribute', `${name}=${type}`);
  args.push('--log-level', 'warn');

  // Client settings in the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …) are for our
  // clients, not for the server.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
  let lastError = '';
  const service = await startService({
    name: 'Temporal dev server',
    command: cli,
    args,
    env,
    logFile: opts.logFile,
    port,
    timeoutMs: 90_000,
    ready: async () => {
      const problem = await readiness(address, namespace, opts.searchAttributes);
      lastError = problem ?? '';
      return problem === undefined;
    },
  }).catch((err: Error) => {
    throw lastError ? new Error(`${err.message}\n(last readiness check: ${lastError})`) : err;
  });
  return { address, uiUrl, stop: () => service.stop() };
}

// temporal.api.enums.v1.IndexedValueType (stable protobuf enum numbers).
const indexedValueTypes: Record<SearchAttributeTypeName, number> = { Text: 1, Keyword: 2, Int: 3, Double: 4, Bool: 5, Datetime: 6, KeywordList: 7 };
const typeName = (value: unknown): string => {
  const entry = Object.entries(indexedValueTypes).find(([name, n]) => value === n || value === `INDEXED_VALUE_TYPE_${name.replace(/(?<=[a-z])(?=[A-Z])/g, '_').toUpperCase()}`);
  return entry?.[0] ?? String(value);
};

/** A search attribute registered with another type: waiting will not help. */
class SearchAttributeConflict extends Error {}

type AddSearchAttributesRequest = Parameters<Connection['operatorService']['addSearchAttributes']>[0];
type IndexedValueType = NonNullable<AddSearchAttributesRequest['searchAttributes']>[string];

/**
 * Undefined when the server answers for the namespace and has the search attributes with the right
 * types; else what is missing. The dev server only registers --search-attribute in a new database,
 * so attributes missing from an older persistent one are added here.
 */
async function readiness(address: string, namespace: string, wanted: Record<string, SearchAttributeTypeName>): Promise<string | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 2_000 });
    await connection.workflowService.getSystemInfo({});
    await connection.workflowService.describeNamespace({ namespace });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const have = customAttributes ?? {};
    const conflicts = Object.entries(wanted).filter(([name, type]) => have[name] !== undefined && typeName(have[name]) !== type);
    if (conflicts.length) {
      const list = conflicts.map(([name, type]) => `${name} is ${typeName(have[name])}, not ${type}`).join('; ');
      throw new SearchAttributeConflict(`search attributes registered with other types in namespace ${namespace}: ${list} (a persistent dev-server database keeps them: use a new one)`);
    }
    const missing = Object.entries(wanted).filter(([name]) => have[name] === undefined);
    if (!missing.length) return undefined;
    const searchAttributes = Object.fromEntries(missing.map(([name, type]) => [name, indexedValueTypes[type] as IndexedValueType]));
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
    return `registering search attributes ${missing.map(([name]) => name).join(', ')}`;
  } catch (err) {
    if (err instanceof SearchAttributeConflict) throw err;
    return (err as Error).message;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

async function waitUntilReady(address: string, namespace: string, wanted: Record<string, SearchAttributeTypeName>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problem = await readiness(address, namespace, wanted);
    if (problem === undefined) return;
    if (Date.now() > deadline) throw new Error(`Temporal at ${address} is not ready: ${problem}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
