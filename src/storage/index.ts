import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '../config';
import { ErrorCode, permanentFailure } from '../errors';

export interface OpenedObject {
  stream: Readable;
  size: number;
}

/** Where Batchflow keeps uploads and outputs: an S3 bucket, or a local directory when none is set. */
export interface ObjectStore {
  readonly description: string;
  put(key: string, body: Readable | Buffer): Promise<{ uri: string; size: number }>;
  open(key: string, start?: number): Promise<OpenedObject>;
}

const READ_CHUNK = 1024 * 1024;

/** Where the local object store keeps multipart uploads until they complete: no key may name it. */
export const LOCAL_UPLOADS = '.uploads';

export function safeKey(key: string): string {
  const normalised = path.posix.normalize(key).replace(/^\/+/, '');
  if (!normalised || normalised.startsWith('..') || normalised.endsWith('/') || normalised.split('/')[0] === LOCAL_UPLOADS) {
    throw permanentFailure(ErrorCode.InvalidParams, `invalid object key "${key}"`);
  }
  return normalised;
}

function localStore(dir: string): ObjectStore {
  return {
    description: `local directory ${dir}`,
    async put(key, body) {
      const file = path.join(dir, safeKey(key));
      await fsp.mkdir(path.dirname(file), { recursive: true });
      try {
        await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, fs.createWriteStream(file));
      } catch (err) {
        // A body that failed half way (an upload over its limit, a dropped client) leaves no part-file.
        await fsp.rm(file, { force: true });
        throw err;
      }
      return { uri: `store://${safeKey(key)}`, size: (await fsp.stat(file)).size };
    },
    open: (key, start) => openLocalFile(path.join(dir, safeKey(key)), start),
  };
}

export function createS3Client(s3: NonNullable<Config['s3']>): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: s3.credentials,
    forcePathStyle: s3.forcePathStyle,
    // The SDK would otherwise compute a CRC32 of every upload in JavaScript, a second pass over
    // every byte an export writes; exports are checked end to end by their SHA-256 instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
}

function s3Store(client: S3Client, bucket: string): ObjectStore {
  return {
    description: `s3://${bucket}`,
    async put(key, body) {
      const upload = new Upload({ client, params: { Bucket: bucket, Key: safeKey(key), Body: body } });
      await upload.done();
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: safeKey(key) }));
      return { uri: `store://${safeKey(key)}`, size: head.ContentLength ?? 0 };
    },
    open: (key, start) => openS3Object(client, bucket, safeKey(key), start),
  };
}

export function createObjectStore(config: Pick<Config, 's3' | 'objectStoreDir'>, s3Client?: S3Client): ObjectStore {
  return config.s3 ? s3Store(s3Client ?? createS3Client(config.s3), config.s3.bucket) : localStore(config.objectStoreDir);
}

async function openLocalFile(file: string, start = 0): Promise<OpenedObject> {
  let size: number;
  try {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) throw permanentFailure(ErrorCode.SourceNotFound, `${file} is not a file`);
    size = stat.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw permanentFailure(ErrorCode.SourceNotFound, `no such file: ${file}`);
    throw err;
  }
  return { stream: fs.createReadStream(file, { start, highWaterMark: READ_CHUNK }), size };
}

async function openS3Object(client: S3Client, bucket: string, key: string, start = 0): Promise<OpenedObject> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const size = head.ContentLength ?? 0;
    if (start >= size) return { stream: Readable.from([]), size };
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-` }));
    return { stream: object.Body as Readable, size };
  } catch (err) {
    if (err instanceof NoSuchKey || err instanceof NotFound || (err as { name?: string }).name === 'NotFound') {
      throw permanentFailure(ErrorCode.SourceNotFound, `no such object: s3://${bucket}/${key}`);
    }
    throw err;
  }
}

/** How to reach objects: S3 when it is configured, the local object store's directory otherwise. */
export interface ObjectAccess {
  s3?: { client: S3Client; bucket: string; allowedBuckets: readonly string[] };
  dir: string;
}

export function createObjectAccess(config: Pick<Config, 's3' | 'objectStoreDir'>, s3Client?: S3Client): ObjectAccess {
  const client = config.s3 && (s3Client ?? createS3Client(config.s3));
  return { s3: config.s3 && client && { client, bucket: config.s3.bucket, allowedBuckets: config.s3.allowedBuckets }, dir: config.objectStoreDir };
}

/** One object: in an S3 bucket, or under the local object store's directory. */
export type ObjectRef = { client: S3Client; bucket: string; key: string; dir?: undefined } | { dir: string; key: string; client?: undefined };

/**
 * The one check of s3:// locations: the bucket must be one this deployment allows (the
 * configured bucket), so that a caller cannot make the worker read or write anywhere its
 * credentials reach.
 */
export function parseS3Location(location: string, s3: ObjectAccess['s3'], code: ErrorCode = ErrorCode.SourceNotAllowed): { bucket: string; key: string } {
  if (!s3) throw permanentFailure(code, `${location}: S3 is not configured (set S3_BUCKET and S3_ENDPOINT)`);
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(location) ?? [];
  if (!bucket || !key) throw permanentFailure(ErrorCode.InvalidParams, `${location}: expected s3://bucket/key`);
  if (!s3.allowedBuckets.includes(bucket)) {
    throw permanentFailure(code, `${location}: bucket "${bucket}" is not one this deployment may use (${s3.allowedBuckets.join(', ')})`);
  }
  return { bucket, key };
}

/** `store://key` (or a bare key) in the object store, or an allowed `s3://bucket/key`. */
export function locateObject(access: ObjectAccess, location: string, code?: ErrorCode): ObjectRef {
  if (location.startsWith('s3://')) {
    const { bucket, key } = parseS3Location(location, access.s3, code);
    return { client: access.s3!.client, bucket, key };
  }
  const key = safeKey(location.startsWith('store://') ? location.slice('store://'.length) : location);
  return access.s3 ? { client: access.s3.client, bucket: access.s3.bucket, key } : { dir: access.dir, key };
}

/** A location as results show it: `store://key` for the object store, `s3://bucket/key` otherwise. */
export const canonicalLocation = (location: string) =>
  location.startsWith('s3://') ? location : `store://${safeKey(location.startsWith('store://') ? location.slice('store://'.length) : location)}`;

export interface SourceOpener {
  /** Opens an import source at a byte offset: a local path, file://, s3://bucket/key or store://key. */
  open(source: string, start?: number): Promise<OpenedObject>;
}

export function createSourceOpener(deps: { store: ObjectStore; s3Client?: S3Client; localSourceDirs: readonly string[] }): SourceOpener {
  return {
    async open(source, start = 0) {
      if (source.startsWith('store://')) return deps.store.open(source.slice('store://'.length), start);
      if (source.startsWith('s3://')) {
        if (!deps.s3Client) throw permanentFailure(ErrorCode.SourceNotAllowed, `${source}: S3 is not configured (set S3_BUCKET and S3_ENDPOINT)`);
        const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(source) ?? [];
        if (!bucket || !key) throw permanentFailure(ErrorCode.InvalidParams, `${source}: expected s3://bucket/key`);
        return openS3Object(deps.s3Client, bucket, key, start);
      }
      const file = path.resolve(source.startsWith('file://') ? new URL(source).pathname : source);
      const allowed = deps.localSourceDirs.some((dir) => dir === '*' || file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep));
      if (!allowed) {
        throw permanentFailure(
          ErrorCode.SourceNotAllowed,
          `${file} is outside the directories this worker may read (${deps.localSourceDirs.join(', ')}); set BATCHFLOW_LOCAL_SOURCE_DIRS`,
        );
      }
      return openLocalFile(file, start);
    },
  };
}

/**
 * The object store and the import sources a process reads through, from its configuration. They
 * share one S3 client: the caller's (its ObjectAccess's), or a new one.
 */
export function createStorage(
  config: Pick<Config, 's3' | 'objectStoreDir' | 'localSourceDirs'>,
  s3Client: S3Client | undefined = config.s3 && createS3Client(config.s3),
): { store: ObjectStore; sources: SourceOpener } {
  const store = createObjectStore(config, s3Client);
  return { store, sources: createSourceOpener({ store, s3Client, localSourceDirs: config.localSourceDirs }) };
}
