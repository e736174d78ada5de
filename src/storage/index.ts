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

/** Rethrows a file system error, a missing file as the permanent SOURCE_NOT_FOUND. */
const notFound =
  (file: string) =>
  (err: unknown): never => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw permanentFailure(ErrorCode.SourceNotFound, `no such file: ${file}`);
    throw err;
  };

/** What a non-regular file is, for the message that refuses it. */
function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens a regular file for reading. Non-blocking, so that opening a FIFO with no writer returns at
 * once (and is then refused) instead of hanging the reader; not following a symbolic link, so the
 * file opened is the one the caller resolved. Anything but a regular file is refused.
 */
async function openRegularFile(file: string): Promise<{ handle: fsp.FileHandle; stat: fs.Stats }> {
  const handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW).catch(notFound(file));
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw permanentFailure(ErrorCode.SourceNotAllowed, `${file} is ${kindOf(stat)}: only regular files can be imported`);
  }
  return { handle, stat };
}

const streamFrom = (handle: fsp.FileHandle, start: number) => handle.createReadStream({ start, highWaterMark: READ_CHUNK });

async function openLocalFile(file: string, start = 0): Promise<OpenedObject> {
  const { handle, stat } = await openRegularFile(file);
  return { stream: streamFrom(handle, start), size: stat.size };
}

const within = (dirs: readonly string[], file: string) => dirs.some((dir) => dir === '*' || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep));

/**
 * Opens a local source only if it really lies in an allowed directory. The path is checked as
 * written (after `..` is resolved: nothing outside is even looked up), then resolved through
 * symbolic links and checked again; the file is opened without following a link; then the path is
 * resolved and checked once more and must still name the very file opened, so a link swapped in
 * meanwhile cannot lead outside either.
 */
async function openAllowedFile(source: string, allowedDirs: readonly string[], start: number): Promise<OpenedObject> {
  const file = path.resolve(source.startsWith('file://') ? new URL(source).pathname : source);
  const refuse = (real: string) =>
    permanentFailure(
      ErrorCode.SourceNotAllowed,
      `${file}${real === file ? '' : ` (${real})`} is outside the directories this worker may read (${allowedDirs.join(', ')}); set BATCHFLOW_LOCAL_SOURCE_DIRS`,
    );
  if (!within(allowedDirs, file)) throw refuse(file);
  // The allowed directories resolved too (the OS temp directory may itself be a link).
  const dirs = await Promise.all(allowedDirs.map((dir) => (dir === '*' ? Promise.resolve(dir) : fsp.realpath(dir).catch(() => dir))));
  const inside = (real: string) => within(dirs, real);
  const real = await fsp.realpath(file).catch(notFound(file));
  if (!inside(real)) throw refuse(real);
  const { handle, stat } = await openRegularFile(real);
  try {
    const again = await fsp.realpath(real).catch(notFound(file));
    const now = await fsp.stat(again).catch(notFound(file));
    if (!inside(again) || now.dev !== stat.dev || now.ino !== stat.ino) throw refuse(again);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return { stream: streamFrom(handle, start), size: stat.size };
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
 * configured bucket; for import sources, BATCHFLOW_S3_SOURCE_BUCKETS), so that a caller cannot
 * make the worker read or write anywhere its credentials reach. `refused` says why a bucket is
 * refused, given the allowed ones.
 */
export function parseS3Location(
  location: string,
  s3: { allowedBuckets: readonly string[] } | undefined,
  code: ErrorCode = ErrorCode.SourceNotAllowed,
  refused = (allowed: string) => `is not one this deployment may use (${allowed})`,
): { bucket: string; key: string } {
  if (!s3) throw permanentFailure(code, `${location}: S3 is not configured (set S3_BUCKET and S3_ENDPOINT)`);
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(location) ?? [];
  if (!bucket || !key) throw permanentFailure(ErrorCode.InvalidParams, `${location}: expected s3://bucket/key`);
  if (!s3.allowedBuckets.includes(bucket)) throw permanentFailure(code, `${location}: bucket "${bucket}" ${refused(s3.allowedBuckets.join(', '))}`);
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

export function createSourceOpener(deps: { store: ObjectStore; s3Client?: S3Client; localSourceDirs: readonly string[]; s3SourceBuckets: readonly string[] }): SourceOpener {
  return {
    async open(source, start = 0) {
      if (source.startsWith('store://')) return deps.store.open(source.slice('store://'.length), start);
      if (source.startsWith('s3://')) {
        const client = deps.s3Client;
        const { bucket, key } = parseS3Location(
          source,
          client && { allowedBuckets: deps.s3SourceBuckets },
          ErrorCode.SourceNotAllowed,
          (allowed) => `is not one this worker may read (${allowed || 'none'}); set BATCHFLOW_S3_SOURCE_BUCKETS`,
        );
        return openS3Object(client!, bucket, key, start);
      }
      return openAllowedFile(source, deps.localSourceDirs, start);
    },
  };
}

/**
 * The object store and the import sources a process reads through, from its configuration. They
 * share one S3 client: the caller's (its ObjectAccess's), or a new one.
 */
export function createStorage(
  config: Pick<Config, 's3' | 'objectStoreDir' | 'localSourceDirs' | 's3SourceBuckets'>,
  s3Client: S3Client | undefined = config.s3 && createS3Client(config.s3),
): { store: ObjectStore; sources: SourceOpener } {
  const store = createObjectStore(config, s3Client);
  return { store, sources: createSourceOpener({ store, s3Client, localSourceDirs: config.localSourceDirs, s3SourceBuckets: config.s3SourceBuckets }) };
}
