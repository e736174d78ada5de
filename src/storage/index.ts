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

function safeKey(key: string): string {
  const normalised = path.posix.normalize(key).replace(/^\/+/, '');
  if (!normalised || normalised.startsWith('..')) throw permanentFailure(ErrorCode.InvalidParams, `invalid object key "${key}"`);
  return normalised;
}

function localStore(dir: string): ObjectStore {
  return {
    description: `local directory ${dir}`,
    async put(key, body) {
      const file = path.join(dir, safeKey(key));
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, fs.createWriteStream(file));
      return { uri: `store://${safeKey(key)}`, size: (await fsp.stat(file)).size };
    },
    open: (key, start) => openLocalFile(path.join(dir, safeKey(key)), start),
  };
}

export function createS3Client(s3: NonNullable<Config['s3']>): S3Client {
  return new S3Client({ endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, forcePathStyle: s3.forcePathStyle });
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

/** The object store and the import sources a process reads through, from its configuration. */
export function createStorage(config: Pick<Config, 's3' | 'objectStoreDir' | 'localSourceDirs'>): { store: ObjectStore; sources: SourceOpener } {
  const s3Client = config.s3 ? createS3Client(config.s3) : undefined;
  const store = createObjectStore(config, s3Client);
  return { store, sources: createSourceOpener({ store, s3Client, localSourceDirs: config.localSourceDirs }) };
}
