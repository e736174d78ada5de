import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where Go-built tools (Temporal CLI, MinIO, Mailpit) are cached between runs and clones. */
export const cacheDir = (): string => process.env.BATCHFLOW_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'batchflow');

const isExecutable = (file: string) => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};

/** `name` on PATH, like `command -v`. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tailOf = (file: string, lines = 30) => {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
};

interface GoTool {
  /** The binary's name, on PATH and in the cache. */
  name: string;
  /** An environment variable that may name the binary. */
  envVar: string;
  /** Directory under the cache dir, named after the version. */
  cacheName: string;
  /** What `go install` builds. */
  module: string;
}

/**
 * `go install`s a tool into `<cacheDir>/<cacheName>/`. Two processes may get here at once: a lock
 * file makes the second wait for the first's build, and the binary is built in a temporary directory
 * and renamed into place, so nobody ever runs half a binary.
 */
async function build(tool: GoTool, go: string, log: (msg: string) => void): Promise<string> {
  const root = cacheDir();
  const target = path.join(root, tool.cacheName, tool.name);
  const lock = path.join(root, `${tool.cacheName}.lock`);
  const buildLog = path.join(root, `${tool.cacheName}.build.log`);
  fs.mkdirSync(root, { recursive: true });

  let waitingSaid = false;
  for (;;) {
    if (isExecutable(target)) return target;
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: number;
    let age: number;
    try {
      holder = Number(fs.readFileSync(lock, 'utf8').trim() || NaN);
      age = Date.now() - fs.statSync(lock).mtimeMs;
    } catch {
      continue; // just released
    }
    if (Number.isNaN(holder) && age < 10_000) {
      await sleep(200); // just created, pid not written yet
    } else if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
      if (!waitingSaid) log(`waiting for process ${holder}, which is building ${tool.name} into ${path.dirname(target)}`);
      waitingSaid = true;
      await sleep(2_000);
    } else {
      // Stale (its builder died): take it over. Another process may remove it first; that is fine.
      fs.rmSync(lock, { force: true });
      await sleep(Math.random() * 500);
    }
  }

  const staging = fs.mkdtempSync(path.join(root, `.build-${tool.cacheName}-`));
  try {
    if (isExecutable(target)) return target;
    log(`building ${tool.name} (${tool.module}) with Go into ${path.dirname(target)}: the first build takes several minutes (log: ${buildLog})`);
    const started = Date.now();
    const out = fs.openSync(buildLog, 'w');
    const code = await new Promise<number | string>((resolve, reject) => {
      const child = spawn(go, ['install', tool.module], { cwd: root, env: { ...process.env, GOBIN: staging }, stdio: ['ignore', out, out] });
      child.once('error', reject);
      child.once('exit', (c, signal) => resolve(c ?? signal ?? 'unknown'));
    }).finally(() => fs.closeSync(out));
    if (code !== 0) throw new Error(`\`go install ${tool.module}\` failed (${code}):\n${tailOf(buildLog)}`);
    const built = path.join(staging, tool.name);
    if (!isExecutable(built)) throw new Error(`\`go install ${tool.module}\` produced no ${built}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(built, target);
    log(`built ${tool.name} in ${Math.round((Date.now() - started) / 1000)}s`);
    return target;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    fs.rmSync(lock, { force: true });
  }
}

const inflight = new Map<string, Promise<string>>();

/** The tool from its environment variable, PATH or the cache; undefined when absent and there is no Go to build it. */
async function findOrBuild(tool: GoTool, log: (msg: string) => void): Promise<string | undefined> {
  const fromEnv = process.env[tool.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${tool.envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const found = onPath(tool.name);
  if (found) return found;
  const cached = path.join(cacheDir(), tool.cacheName, tool.name);
  if (isExecutable(cached)) return cached;
  const go = onPath('go');
  if (!go) return undefined;
  // One build per process, however many callers want the tool at once.
  let building = inflight.get(cached);
  if (!building) {
    building = build(tool, go, log).finally(() => inflight.delete(cached));
    inflight.set(cached, building);
  }
  return building;
}

const temporalCli: GoTool = { name: 'temporal', envVar: 'TEMPORAL_CLI', cacheName: 'temporal-1.5.1', module: 'github.com/temporalio/cli/cmd/temporal@v1.5.1' };
const minio: GoTool = { name: 'minio', envVar: 'MINIO_BIN', cacheName: 'minio-latest', module: 'github.com/minio/minio@latest' };
const mailpit: GoTool = { name: 'mailpit', envVar: 'MAILPIT_BIN', cacheName: 'mailpit-1.33.1', module: 'github.com/axllent/mailpit@v1.33.1' };

/**
 * The Temporal CLI (for `temporal server start-dev`): $TEMPORAL_CLI, `temporal` on PATH, the cache,
 * or built with Go. Undefined without Go: the caller then lets the Temporal SDK download it.
 */
export function ensureTemporalCli(log: (msg: string) => void): Promise<string | undefined> {
  return findOrBuild(temporalCli, log);
}

/** A tool that must be there: its environment variable, PATH, the cache, or built with Go. */
async function required(tool: GoTool, what: string, log: (msg: string) => void): Promise<string> {
  const bin = await findOrBuild(tool, log);
  if (!bin) {
    throw new Error(
      `${what} is needed here but was not found: set ${tool.envVar}, put \`${tool.name}\` on PATH, or install Go so that it can be built into ${path.join(cacheDir(), tool.cacheName)} (\`go install ${tool.module}\`)`,
    );
  }
  return bin;
}

/** The MinIO server: $MINIO_BIN, `minio` on PATH, the cache, or built with Go. */
export const ensureMinio = (log: (msg: string) => void): Promise<string> => required(minio, 'MinIO', log);

/** The Mailpit mail catcher: $MAILPIT_BIN, `mailpit` on PATH, the cache, or built with Go. */
export const ensureMailpit = (log: (msg: string) => void): Promise<string> => required(mailpit, 'Mailpit', log);

/** A program the tests need from the system's packages, which `npm test` installs with apt-get when it may. */
export interface SystemTool {
  name: string;
  /** The Debian/Ubuntu package that has it. */
  aptPackage: string;
  /** What needs it, for the message when it is missing. */
  neededFor: string;
  /** How to get it elsewhere. */
  otherwise: string;
}

/** poppler's pdftotext: the invoice tests read the PDFs they render with it. */
export const pdftotext: SystemTool = { name: 'pdftotext', aptPackage: 'poppler-utils', neededFor: 'the invoice PDF tests read PDFs with it', otherwise: 'macOS: brew install poppler' };

/** What ensureSystemTool looks at and runs (tests give their own). */
export interface SystemAccess {
  find(name: string): string | undefined;
  isRoot: boolean;
  /** Runs a command; its exit code. */
  run(command: string, args: readonly string[]): Promise<number>;
}

const thisSystem = (): SystemAccess => ({
  find: onPath,
  isRoot: process.getuid?.() === 0,
  run: (command, args) =>
    new Promise((resolve, reject) => {
      // apt-get's progress is noise in the test log; its errors are not.
      const child = spawn(command, args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: ['ignore', 'ignore', 'inherit'] });
      child.once('error', reject);
      child.once('exit', (code) => resolve(code ?? 1));
    }),
});

/**
 * The tool from PATH. When it is missing and we are root with apt-get (a fresh CI machine), its
 * package is installed (`apt-get install`, after `apt-get update` if the first try fails);
 * otherwise the error names the package to install.
 */
export async function ensureSystemTool(tool: SystemTool, log: (msg: string) => void, system: SystemAccess = thisSystem()): Promise<string> {
  const found = system.find(tool.name);
  if (found) return found;
  const missing = `${tool.name} is not on PATH and ${tool.neededFor}: install the ${tool.aptPackage} package (apt-get install -y ${tool.aptPackage}; ${tool.otherwise})`;
  const aptGet = system.find('apt-get');
  if (!system.isRoot || !aptGet) throw new Error(missing);
  const install = ['install', '-y', '--no-install-recommends', tool.aptPackage];
  log(`${tool.name} is not on PATH: installing ${tool.aptPackage} (apt-get ${install.join(' ')})`);
  if ((await system.run(aptGet, install)) !== 0) {
    log(`installing ${tool.aptPackage} failed: running apt-get update, then installing again`);
    if ((await system.run(aptGet, ['update'])) !== 0 || (await system.run(aptGet, install)) !== 0) throw new Error(`apt-get could not install ${tool.aptPackage}; ${missing}`);
  }
  const installed = system.find(tool.name);
  if (!installed) throw new Error(`apt-get installed ${tool.aptPackage} but ${tool.name} is still not on PATH; ${missing}`);
  log(`installed ${tool.aptPackage}: ${installed}`);
  return installed;
}
