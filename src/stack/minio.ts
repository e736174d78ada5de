import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import fs from 'node:fs';
import { freePort } from './ports';
import { httpOk, startService } from './process';
import { ensureMinio } from './tools';

/** How to reach an S3-compatible store. */
export interface S3Endpoint {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface MinioOptions {
  /** Where MinIO keeps its objects (created when missing, reused otherwise). */
  dataDir: string;
  /** The S3 API port; a free one when absent. */
  port?: number;
  logFile: string;
  log: (m: string) => void;
}

/** Fixed credentials: the server only listens on loopback. */
const credentials = { accessKey: 'batchflow', secretKey: 'batchflow-secret' };

/** A MinIO server on 127.0.0.1: the real S3 protocol, for tests and local runs. */
export async function startMinio(opts: MinioOptions): Promise<S3Endpoint & { stop(): Promise<void> }> {
  const bin = await ensureMinio(opts.log);
  const port = opts.port ?? (await freePort());
  const consolePort = await freePort();
  const info: S3Endpoint = { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', ...credentials };
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const service = await startService({
    name: 'MinIO',
    command: bin,
    args: ['server', opts.dataDir, '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`],
    env: {
      ...process.env,
      MINIO_ROOT_USER: info.accessKey,
      MINIO_ROOT_PASSWORD: info.secretKey,
      MINIO_REGION: info.region,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
    },
    logFile: opts.logFile,
    port,
    timeoutMs: 60_000,
    ready: httpOk(`${info.endpoint}/minio/health/live`),
  });
  return { ...info, stop: () => service.stop() };
}

/** Creates `bucket` unless it exists (MinIO, AWS or any S3 with path-style addressing). */
export async function ensureBucket(cfg: S3Endpoint, bucket: string): Promise<void> {
  const s3 = new S3Client({
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cfg.accessKey, secretAccessKey: cfg.secretKey },
  });
  try {
    try {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }));
      return;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 404) throw err;
    }
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      // Created meanwhile by somebody else: fine.
      const name = (err as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
    }
  } finally {
    s3.destroy();
  }
}
