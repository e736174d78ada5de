import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { durationMs, durationSchema } from './jobs/run';
import { parseOriginRule } from './upstream/urls';

const optionalString = z.string().trim().min(1).optional().catch(undefined);
const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every environment variable Batchflow reads, in one place: read and validated once at start. */
const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TASK_QUEUE: z.string().min(1).default('batchflow'),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  BATCHFLOW_DATA_DIR: z.string().min(1).default('.data'),
  BATCHFLOW_LOCAL_SOURCE_DIRS: z.string().optional(),
  BATCHFLOW_DATASETS: optionalString,
  BATCHFLOW_SLICE_SECONDS: z.coerce.number().positive().max(300).default(10),
  BATCHFLOW_PARALLEL_BATCHES: z.coerce.number().int().min(1).max(8).default(2),
  BATCHFLOW_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(25),
  BATCHFLOW_RUN_RETENTION: durationSchema.default('30d'),
  BATCHFLOW_LOCK_TIMEOUT: durationSchema.default('30s'),
  BATCHFLOW_S3_SOURCE_BUCKETS: optionalString,
  BATCHFLOW_WORKFLOW_BUNDLE: optionalString,
  BATCHFLOW_SCHEDULES: optionalString,
  BATCHFLOW_API_URL: z.url().optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  BATCHFLOW_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  BATCHFLOW_API_METRICS_PORT: port.default(9464),
  BATCHFLOW_WORKER_METRICS_PORT: port.default(9465),
  BATCHFLOW_TEMPORAL_METRICS_PORT: port.default(9466),
  BATCHFLOW_API_KEY: optionalString,
  BATCHFLOW_ALLOW_SELF_APPROVAL: bool.default(false),
  BATCHFLOW_RATE_LIMIT: z.coerce.number().int().min(0).default(600),
  BATCHFLOW_UPLOAD_MAX_BYTES: z.coerce.number().int().min(1).default(1024 ** 3),
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_BUCKET: optionalString,
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  S3_FORCE_PATH_STYLE: bool.optional(),
  SMTP_URL: z.string().regex(/^smtps?:\/\/[^/]+/, 'must be an smtp:// or smtps:// URL, such as smtp://user:pass@mail.example.com:587').optional(),
  EMAIL_FROM: z.string().trim().min(3).default('Batchflow Billing <billing@batchflow.localhost>'),
  WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64 (Standard Webhooks)')
    .refine((s) => Buffer.from(s.slice(6), 'base64').length >= 24, 'must hold at least 24 bytes (32 base64 characters) after whsec_')
    .optional(),
  INVOICE_SELLER_NAME: z.string().trim().min(1).default('Batchflow Demo Ltd'),
  INVOICE_SELLER_ADDRESS: z.string().trim().default('1 Example Street;75001 Paris;France'),
  INVOICE_SELLER_TAX_ID: optionalString,
  BATCHFLOW_UPSTREAM_ORIGINS: z
    .string()
    .optional()
    .transform((v, ctx) =>
      (v ?? '')
        .split(',')
        .filter((o) => o.trim())
        .map((o) => parseOriginRule(o) ?? (ctx.addIssue({ code: 'custom', message: `"${o.trim()}" is not an origin such as https://api.example.com or http://localhost:*` }), z.NEVER)),
    ),
});

/**
 * Header values a cache refresh may send: environment variables named BATCHFLOW_SECRET_<NAME>.
 * Runs name them; only this prefix is reachable, so a run cannot send the worker's own
 * credentials (DATABASE_URL, S3 keys) anywhere.
 */
export const SECRET_PREFIX = 'BATCHFLOW_SECRET_';

export type Config = ReturnType<typeof toConfig>;

/** The datasets Batchflow ships (users, products, sessions, tokens, posts, user activity, product cache, customers, usage events, invoices and their lines), as YAML declarations. */
export const shippedDatasetsDir = fileURLToPath(new URL('../datasets', import.meta.url));

/** The schedules Batchflow ships (daily stats, hourly cleanup, weekly report, product cache refresh, monthly invoicing). */
export const shippedSchedulesFile = fileURLToPath(new URL('../config/schedules.yaml', import.meta.url));

function toConfig(env: z.infer<typeof envSchema>, secrets: ReadonlyMap<string, string>) {
  const dataDir = path.resolve(env.BATCHFLOW_DATA_DIR);
  // One dedicated folder by default: row errors echo raw input back through the API.
  const localSourceDirs = env.BATCHFLOW_LOCAL_SOURCE_DIRS ? env.BATCHFLOW_LOCAL_SOURCE_DIRS.split(path.delimiter).filter(Boolean) : [path.join(dataDir, 'imports')];
  return {
    temporal: { address: env.TEMPORAL_ADDRESS, namespace: env.TEMPORAL_NAMESPACE, taskQueue: env.TASK_QUEUE },
    databaseUrl: env.DATABASE_URL,
    api: {
      port: env.PORT,
      host: env.HOST,
      url: env.BATCHFLOW_API_URL ?? `http://localhost:${env.PORT}`,
      /** The key the CLI sends; unset, it reads localKeyFile when the API is local. */
      key: env.BATCHFLOW_API_KEY,
      /** Four eyes: unless this is set, a key may not approve a run started by a key of the same name. */
      allowSelfApproval: env.BATCHFLOW_ALLOW_SELF_APPROVAL,
      /** Requests per minute per key (per client address without a key); 0 turns the limit off. */
      rateLimitPerMinute: env.BATCHFLOW_RATE_LIMIT,
      uploadMaxBytes: env.BATCHFLOW_UPLOAD_MAX_BYTES,
    },
    dataDir,
    /** The admin key `npm start` creates on first start, for the CLI on the same machine. */
    localKeyFile: path.join(dataDir, 'admin-api-key'),
    /** '*' allows any local path; otherwise local import sources must lie under one of these. */
    localSourceDirs: localSourceDirs.map((d) => (d === '*' ? d : path.resolve(d))),
    /** Buckets s3:// import sources may name: the object store's bucket unless configured. */
    s3SourceBuckets: env.BATCHFLOW_S3_SOURCE_BUCKETS ? env.BATCHFLOW_S3_SOURCE_BUCKETS.split(',').map((b) => b.trim()).filter(Boolean) : env.S3_BUCKET ? [env.S3_BUCKET] : [],
    /** Attempts of an activity that keeps failing with errors that might pass, before its run fails. */
    maxAttempts: env.BATCHFLOW_MAX_ATTEMPTS,
    /** Run state (checkpoints, row errors, previews, id lists, replays, notification deliveries) untouched for this long is purged. */
    runRetentionMs: durationMs(env.BATCHFLOW_RUN_RETENTION),
    /** The longest a worker's statement waits for a lock before it fails and its slice is retried. */
    lockTimeoutMs: durationMs(env.BATCHFLOW_LOCK_TIMEOUT),
    /** Directories of dataset declarations (*.yaml), read once at start. */
    datasetDirs: (env.BATCHFLOW_DATASETS?.split(path.delimiter).filter(Boolean) ?? [shippedDatasetsDir]).map((d) => path.resolve(d)),
    sliceMs: Math.round(env.BATCHFLOW_SLICE_SECONDS * 1000),
    parallelBatches: env.BATCHFLOW_PARALLEL_BATCHES,
    workflowBundlePath: env.BATCHFLOW_WORKFLOW_BUNDLE,
    log: { level: env.LOG_LEVEL, format: env.LOG_FORMAT },
    /** Prometheus endpoints (GET /metrics), each on a port of its own so that scraping needs no API key. */
    metrics: {
      host: env.BATCHFLOW_METRICS_HOST,
      apiPort: env.BATCHFLOW_API_METRICS_PORT,
      workerPort: env.BATCHFLOW_WORKER_METRICS_PORT,
      /** The Temporal SDK's own exporter (worker processes): its runtime serves it, not Batchflow. */
      temporalPort: env.BATCHFLOW_TEMPORAL_METRICS_PORT,
    },
    /** The schedules file a worker syncs at start; undefined with BATCHFLOW_SCHEDULES=off (the worker leaves schedules alone). */
    schedulesFile: env.BATCHFLOW_SCHEDULES === 'off' ? undefined : path.resolve(env.BATCHFLOW_SCHEDULES ?? shippedSchedulesFile),
    s3: env.S3_BUCKET
      ? {
          bucket: env.S3_BUCKET,
          /** The buckets an s3:// location may name (export destinations): the configured one. */
          allowedBuckets: [env.S3_BUCKET],
          endpoint: env.S3_ENDPOINT,
          region: env.S3_REGION,
          credentials:
            env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY
              ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
              : undefined,
          forcePathStyle: env.S3_FORCE_PATH_STYLE ?? Boolean(env.S3_ENDPOINT),
        }
      : undefined,
    objectStoreDir: path.join(dataDir, 'objects'),
    upstream: {
      /** Origins cache refreshes may call; none unless configured. */
      origins: env.BATCHFLOW_UPSTREAM_ORIGINS,
      /** BATCHFLOW_SECRET_* by full name; a Map, so that printing the config shows no values. */
      secrets,
    },
    email: { smtpUrl: env.SMTP_URL, from: env.EMAIL_FROM },
    /** Signs webhook deliveries (Standard Webhooks); without it webhooks are recorded as failed. */
    webhookSecret: env.WEBHOOK_SECRET,
    /** Who issues invoices, as printed on them. */
    seller: {
      name: env.INVOICE_SELLER_NAME,
      address: env.INVOICE_SELLER_ADDRESS.split(';').map((l) => l.trim()).filter(Boolean),
      email: /<([^>]+)>/.exec(env.EMAIL_FROM)?.[1] ?? env.EMAIL_FROM,
      ...(env.INVOICE_SELLER_TAX_ID && { taxId: env.INVOICE_SELLER_TAX_ID }),
    },
  };
}

export class ConfigError extends Error {}

/** Parses the environment; the error names each missing or bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const secrets = new Map(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith(SECRET_PREFIX) && !!e[1]));
  return toConfig(parsed.data, secrets);
}

/** For processes that need Postgres: DATABASE_URL becomes required. */
export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError('Invalid configuration:\n  DATABASE_URL: required (e.g. postgres://user:pass@host:5432/batchflow)');
  }
  return config.databaseUrl;
}
