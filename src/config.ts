import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const optionalString = z.string().trim().min(1).optional().catch(undefined);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every environment variable Batchflow reads, in one place: read and validated once at start. */
const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TASK_QUEUE: z.string().min(1).default('batchflow'),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  BATCHFLOW_DATA_DIR: z.string().min(1).default('.data'),
  BATCHFLOW_LOCAL_SOURCE_DIRS: z.string().optional(),
  BATCHFLOW_SLICE_SECONDS: z.coerce.number().positive().max(300).default(10),
  BATCHFLOW_PARALLEL_BATCHES: z.coerce.number().int().min(1).max(8).default(2),
  BATCHFLOW_WORKFLOW_BUNDLE: optionalString,
  BATCHFLOW_API_URL: z.url().optional(),
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
});

export type Config = ReturnType<typeof toConfig>;

function toConfig(env: z.infer<typeof envSchema>) {
  const dataDir = path.resolve(env.BATCHFLOW_DATA_DIR);
  const localSourceDirs = env.BATCHFLOW_LOCAL_SOURCE_DIRS
    ? env.BATCHFLOW_LOCAL_SOURCE_DIRS.split(path.delimiter).filter(Boolean)
    : [process.cwd(), os.tmpdir()];
  return {
    temporal: { address: env.TEMPORAL_ADDRESS, namespace: env.TEMPORAL_NAMESPACE, taskQueue: env.TASK_QUEUE },
    databaseUrl: env.DATABASE_URL,
    api: { port: env.PORT, host: env.HOST, url: env.BATCHFLOW_API_URL ?? `http://localhost:${env.PORT}` },
    dataDir,
    /** '*' allows any local path; otherwise local import sources must lie under one of these. */
    localSourceDirs: localSourceDirs.map((d) => (d === '*' ? d : path.resolve(d))),
    sliceMs: Math.round(env.BATCHFLOW_SLICE_SECONDS * 1000),
    parallelBatches: env.BATCHFLOW_PARALLEL_BATCHES,
    workflowBundlePath: env.BATCHFLOW_WORKFLOW_BUNDLE,
    s3: env.S3_BUCKET
      ? {
          bucket: env.S3_BUCKET,
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
  return toConfig(parsed.data);
}

/** For processes that need Postgres: DATABASE_URL becomes required. */
export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError('Invalid configuration:\n  DATABASE_URL: required (e.g. postgres://user:pass@host:5432/batchflow)');
  }
  return config.databaseUrl;
}
