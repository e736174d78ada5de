import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { portOpen } from './ports';

export interface Service {
  pid: number;
  /** SIGTERM, then SIGKILL after `stopTimeoutMs` (10 s); resolves once the process is gone. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Services must not outlive the process that started them.
//  - normal exit, process.exit(), uncaught exception: the 'exit' hook below kills what is left
//    (synchronously: nothing async runs in 'exit').
//  - SIGINT/SIGTERM/SIGHUP: a program that handles the signal itself (scripts/test.ts, `npm start`)
//    stops its services in order; one that does not gets them stopped here, then dies of the
//    signal as it would have. Ctrl-C in a terminal also reaches the children directly (same process
//    group), and each of them shuts down on SIGINT.
// ---------------------------------------------------------------------------------------------

const exitKills = new Map<ChildProcess, NodeJS.Signals>();
const shutdowns = new Set<() => Promise<void>>();
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let hooksInstalled = false;
let stoppingOnSignal = false;

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

function onSignal(signal: NodeJS.Signals): void {
  // Somebody else listens: the program owns shutdown and will call stop().
  if (process.listenerCount(signal) > 1) return;
  if (stoppingOnSignal) {
    // Second Ctrl-C: no more waiting.
    for (const child of exitKills.keys()) if (running(child)) child.kill('SIGKILL');
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  }
  stoppingOnSignal = true;
  void Promise.allSettled([...shutdowns].map((stop) => stop())).finally(() => {
    for (const s of signals) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  });
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    for (const [child, signal] of exitKills) if (running(child)) child.kill(signal);
  });
  for (const signal of signals) process.on(signal, onSignal);
}

/**
 * Registers a service's child process and graceful stop: on a signal nobody else handles, `stop`
 * runs; when this process exits, the child gets `exitSignal` (SIGKILL unless it has a better one).
 * Returns a function that unregisters both (call it once the service has stopped).
 */
export function track(child: ChildProcess, stop: () => Promise<void>, exitSignal: NodeJS.Signals = 'SIGKILL'): () => void {
  installHooks();
  exitKills.set(child, exitSignal);
  shutdowns.add(stop);
  const untrack = () => {
    exitKills.delete(child);
    shutdowns.delete(stop);
  };
  child.once('exit', () => exitKills.delete(child));
  return untrack;
}

/** The last lines of a log file, for error messages. */
export function logTail(file: string, lines = 25): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text ? text.split('\n').slice(-lines).join('\n') : '(empty)';
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A readiness check: `url` answers 200 (within 2 s each time it is polled). */
export const httpOk = (url: string) => async (): Promise<boolean> => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
};

export interface ServiceOptions {
  /** For messages: "Temporal dev server", "MinIO". */
  name: string;
  command: string;
  args: string[];
  /** The whole environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Ready once this port accepts TCP connections on 127.0.0.1 … */
  port: number;
  /** … and this resolves true (polled). Throwing gives up: the service is killed and start fails with that error. */
  ready?: () => Promise<boolean>;
  /** How long to wait for readiness (default 120 s). */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL on stop (default 10 s). */
  stopTimeoutMs?: number;
}

/**
 * Spawns a long-running service logging to a file, and resolves once it is ready. If it exits or
 * times out first, it is killed and the error carries the tail of its log.
 */
export async function startService(opts: ServiceOptions): Promise<Service> {
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const logFd = fs.openSync(opts.logFile, 'a');
  fs.writeSync(logFd, `\n--- ${new Date().toISOString()} ${opts.command} ${opts.args.join(' ')}\n`);
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd); // the child has its own copy
  }
  const exited = new Promise<void>((resolve) => {
    if (!running(child)) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));

  const stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (running(child) && child.pid !== undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => running(child) && child.kill('SIGKILL'), stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      untrack();
    })());
  const untrack = track(child, stop);

  const fail = async (why: string) => {
    if (running(child)) {
      child.kill('SIGKILL');
      await exited;
    }
    untrack();
    return new Error(`${opts.name} ${why}\n--- last lines of ${opts.logFile} ---\n${logTail(opts.logFile)}`);
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    if (spawnError) throw await fail(`could not be started (${opts.command}): ${spawnError.message}`);
    if (!running(child)) throw await fail(`exited (${child.exitCode ?? child.signalCode}) before it was ready on port ${opts.port}`);
    if (await portOpen(opts.port)) {
      let ready = true;
      if (opts.ready) {
        try {
          ready = await opts.ready();
        } catch (err) {
          throw await fail(`failed its readiness check: ${(err as Error).message}`);
        }
      }
      if (ready && running(child)) break;
    }
    if (Date.now() > deadline) throw await fail(`was not ready on port ${opts.port} within ${Math.round((opts.timeoutMs ?? 120_000) / 1000)}s`);
    await sleep(150);
  }
  return { pid: child.pid!, stop };
}
