#!/usr/bin/env node
// Runs the TypeScript sources directly: no build step between a clone and a running stack.
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';

// A worker streams millions of short-lived rows: without this, V8 lets the heap grow to several
// times what is live (an import of 1M rows peaked near 400 MB RSS; with it, about 100 MB less).
if (process.argv[2] === 'worker') v8.setFlagsFromString('--optimize-for-size');
register();
await import('../src/cli/index.ts');
