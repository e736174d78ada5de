import { Connection } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
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
  const namespace = opts.namespace ?? 'default';
  const port = opts.port ?? (await freePort());
  const uiPort = opts.uiPort === false ? undefined : (opts.uiPort ?? (await freePort()));
  const address = `127.0.0.1:${port}`;
  const uiUrl = uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`;
  const cli = await ensureTemporalCli(opts.log);

  if (!cli) {
    opts.log('no Temporal CLI and no Go to build it: letting the Temporal SDK download the dev server');
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
      await waitUntilReady(address, namespace, Object.keys(opts.searchAttributes), 60_000);
    } catch (err) {
      await env.teardown();
      throw err;
    }
    return { address, uiUrl, stop: () => env.teardown() };
  }

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
  const attributes = Object.keys(opts.searchAttributes);
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
      const problem = await readiness(address, namespace, attributes);
      lastError = problem ?? '';
      return problem === undefined;
    },
  }).catch((err: Error) => {
    throw lastError ? new Error(`${err.message}\n(last readiness check: ${lastError})`) : err;
  });
  return { address, uiUrl, stop: () => service.stop() };
}

/** Undefined when the server answers for the namespace and has the search attributes; else why not. */
async function readiness(address: string, namespace: string, attributes: string[]): Promise<string | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 2_000 });
    await connection.workflowService.getSystemInfo({});
    await connection.workflowService.describeNamespace({ namespace });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = attributes.filter((a) => !customAttributes?.[a]);
    return missing.length ? `search attributes not registered yet: ${missing.join(', ')}` : undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

async function waitUntilReady(address: string, namespace: string, attributes: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problem = await readiness(address, namespace, attributes);
    if (problem === undefined) return;
    if (Date.now() > deadline) throw new Error(`Temporal at ${address} is not ready: ${problem}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
