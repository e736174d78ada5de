#!/usr/bin/env node
// Runs the TypeScript sources with no build step between a clone and a running stack. At start,
// esbuild compiles src/ into plain JavaScript modules cached under node_modules/.cache, keyed by
// the sources' content (a few hundred milliseconds, once per change). Running compiled code keeps
// a TypeScript loader out of every process: a worker needs about 35 MB less. Where that cache
// cannot be written, tsx runs the sources instead.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, version as esbuildVersion } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = path.join(root, 'src');

/** Every source file, for the cache key. */
const sourceFiles = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));

// Compiled modules live elsewhere: each keeps the location of its source as import.meta.url, so
// that paths next to it (migrations, the reader thread, the workflows) resolve as in the sources.
const keepSourceLocation = {
  name: 'keep-source-location',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => ({
      contents: fs.readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts',
    }));
  },
};

/** The compiled CLI entry, building it first if these sources were never compiled. */
async function compiled() {
  const key = crypto.createHash('sha256').update(esbuildVersion);
  for (const file of sourceFiles(src).sort()) key.update(path.relative(src, file)).update(fs.readFileSync(file));
  const outdir = path.join(root, 'node_modules', '.cache', 'batchflow', `cli-${key.digest('hex').slice(0, 16)}`);
  const entry = path.join(outdir, 'index.js');
  if (!fs.existsSync(entry)) {
    const result = await build({
      entryPoints: [path.join(src, 'cli', 'index.ts')],
      bundle: true,
      // Commands load only their own code and packages: the worker never loads the API's.
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      outdir,
      write: false,
      sourcemap: 'inline',
      sourcesContent: false,
      logLevel: 'silent',
      plugins: [keepSourceLocation],
    });
    // Written aside, then renamed into place: processes starting together never see half a build.
    const staging = `${outdir}.${process.pid}.tmp`;
    for (const file of result.outputFiles) {
      const target = path.join(staging, path.relative(outdir, file.path));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, file.contents);
    }
    try {
      fs.renameSync(staging, outdir);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      if (!fs.existsSync(entry)) throw err;
    }
  }
  return pathToFileURL(entry).href;
}

let entry;
try {
  entry = await compiled();
} catch (err) {
  if (!['EACCES', 'EROFS', 'EPERM'].includes(err.code)) throw err;
}
if (entry) {
  // Stack traces name the TypeScript sources.
  process.setSourceMapsEnabled(true);
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/index.ts');
}
