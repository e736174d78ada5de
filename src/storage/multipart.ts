import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  NoSuchUpload,
  NotFound,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ErrorCode, permanentFailure } from '../errors';
import { LOCAL_UPLOADS, type ObjectRef } from '.';

/**
 * A multipart upload to one object: parts go up one by one (and may be sent again), and the
 * object appears, whole, only when complete() succeeds. Until then nothing is visible at its key.
 */
export interface MultipartTarget {
  create(contentType: string): Promise<string>;
  /** Uploads (or replaces) part `partNumber` (from 1); returns its ETag. */
  uploadPart(uploadId: string, partNumber: number, body: Buffer): Promise<string>;
  /** The parts uploaded so far, part number → ETag; undefined when the upload no longer exists. */
  listParts(uploadId: string): Promise<Map<number, string> | undefined>;
  /**
   * Makes the object from these parts (the ETags of parts 1..n), replacing any object at the key.
   * Called again after it succeeded (a retry), it finds the upload gone and an object of `bytes`
   * bytes in place, and succeeds too; parts that are missing or differ fail the upload for good.
   */
  complete(uploadId: string, parts: readonly string[], bytes: number): Promise<void>;
  /** Drops the upload and its parts; an upload that no longer exists is fine. */
  abort(uploadId: string): Promise<void>;
  /** The object's size, or undefined when there is none. */
  size(): Promise<number | undefined>;
}

/**
 * The bytes of one part, built in a buffer that is kept and filled again for a later part. A
 * part-sized buffer left to the garbage collector stays in the worker's memory until a full
 * collection, which V8 starts only once tens of megabytes of such buffers have piled up.
 */
export class PartBuffer {
  private buffer: Buffer;
  private used = 0;

  /** Only the bytes written are ever touched, so a generous capacity costs no memory until used. */
  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  get size(): number {
    return this.used;
  }

  /** The part's bytes: a view, valid until the next clear(). */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.used);
  }

  append(bytes: Uint8Array): void {
    const needed = this.used + bytes.length;
    if (needed > this.buffer.length) {
      const larger = Buffer.allocUnsafe(Math.max(needed, 2 * this.buffer.length));
      this.buffer.copy(larger, 0, 0, this.used);
      this.buffer = larger;
    }
    this.buffer.set(bytes, this.used);
    this.used = needed;
  }

  clear(): void {
    this.used = 0;
  }
}

export function multipartTo(ref: ObjectRef): MultipartTarget {
  return ref.client ? s3Multipart(ref.client, ref.bucket, ref.key) : localMultipart(ref.dir, ref.key);
}

const isMissing = (err: unknown) => err instanceof NoSuchUpload || err instanceof NotFound || ['NoSuchUpload', 'NotFound', 'NoSuchKey'].includes((err as { name?: string }).name ?? '');

function s3Multipart(client: S3Client, bucket: string, key: string): MultipartTarget {
  const at = { Bucket: bucket, Key: key };
  const size = async () => {
    try {
      return (await client.send(new HeadObjectCommand(at))).ContentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  };
  return {
    async create(contentType) {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ ...at, ContentType: contentType }));
      return UploadId!;
    },
    async uploadPart(uploadId, partNumber, body) {
      try {
        const { ETag } = await client.send(new UploadPartCommand({ ...at, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }));
        return ETag!;
      } catch (err) {
        if (isMissing(err)) throw permanentFailure(ErrorCode.UploadLost, `s3://${bucket}/${key}: the upload no longer exists (aborted, or expired by a lifecycle rule)`);
        throw err;
      }
    },
    async listParts(uploadId) {
      const parts = new Map<number, string>();
      try {
        for (let marker: string | undefined; ; ) {
          const page = await client.send(new ListPartsCommand({ ...at, UploadId: uploadId, PartNumberMarker: marker }));
          for (const part of page.Parts ?? []) parts.set(part.PartNumber!, part.ETag!);
          if (!page.IsTruncated) return parts;
          marker = page.NextPartNumberMarker;
        }
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    },
    async complete(uploadId, parts, bytes) {
      try {
        await client.send(
          new CompleteMultipartUploadCommand({ ...at, UploadId: uploadId, MultipartUpload: { Parts: parts.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
        );
      } catch (err) {
        if (isMissing(err) && (await size()) === bytes) return;
        const name = (err as { name?: string }).name ?? '';
        if (isMissing(err) || ['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall'].includes(name)) {
          throw permanentFailure(ErrorCode.UploadLost, `s3://${bucket}/${key}: the upload cannot be completed (${name}: ${(err as Error).message})`);
        }
        throw err;
      }
    },
    async abort(uploadId) {
      await client.send(new AbortMultipartUploadCommand({ ...at, UploadId: uploadId })).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
    },
    size,
  };
}

/**
 * The local object store's equivalent: parts are files in a directory of their own under
 * `.uploads/`, each written to a temporary name and renamed into place (named with its number and
 * MD5, which serves as its ETag); completing joins them into a temporary file beside the parts and
 * renames it to the key, so the object appears whole or not at all.
 */
function localMultipart(dir: string, key: string): MultipartTarget {
  const file = path.join(dir, key);
  const uploadDir = (uploadId: string) => path.join(dir, LOCAL_UPLOADS, path.basename(uploadId));
  const partName = (n: number, etag: string) => `part-${String(n).padStart(5, '0')}-${etag}`;
  const PART = /^part-(\d{5})-([0-9a-f]{32})$/;
  const size = async () => {
    try {
      return (await fsp.stat(file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const listParts = async (uploadId: string) => {
    let names: string[];
    try {
      names = await fsp.readdir(uploadDir(uploadId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const parts = new Map<number, string>();
    for (const name of names.sort()) {
      const [, n, etag] = PART.exec(name) ?? [];
      if (n && etag) parts.set(Number(n), etag);
    }
    return parts;
  };
  return {
    async create() {
      const uploadId = randomUUID();
      await fsp.mkdir(uploadDir(uploadId), { recursive: true });
      return uploadId;
    },
    async uploadPart(uploadId, partNumber, body) {
      const etag = createHash('md5').update(body).digest('hex');
      const target = path.join(uploadDir(uploadId), partName(partNumber, etag));
      const temp = `${target}.${randomUUID().slice(0, 8)}.tmp`;
      await fsp.writeFile(temp, body).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw permanentFailure(ErrorCode.UploadLost, `${key}: the upload no longer exists (aborted)`);
        throw err;
      });
      await fsp.rename(temp, target);
      // A part sent again with other bytes replaces the earlier one.
      const prefix = partName(partNumber, '');
      for (const name of await fsp.readdir(uploadDir(uploadId))) {
        if (name.startsWith(prefix) && name !== path.basename(target) && PART.test(name)) await fsp.rm(path.join(uploadDir(uploadId), name), { force: true });
      }
      return etag;
    },
    listParts,
    async complete(uploadId, parts, bytes) {
      const listed = await listParts(uploadId);
      if (!listed && (await size()) === bytes) return;
      const missing = parts.findIndex((etag, i) => listed?.get(i + 1) !== etag);
      if (!listed || missing !== -1) throw permanentFailure(ErrorCode.UploadLost, `${key}: the upload cannot be completed (${listed ? `part ${missing + 1} is missing or differs` : 'it no longer exists'})`);
      const joined = path.join(uploadDir(uploadId), 'object.tmp');
      const out = fs.createWriteStream(joined);
      try {
        for (const [i, etag] of parts.entries()) await pipeline(fs.createReadStream(path.join(uploadDir(uploadId), partName(i + 1, etag))), out, { end: false });
      } finally {
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      }
      const handle = await fsp.open(joined, 'r');
      await handle.sync().finally(() => handle.close());
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await fsp.rename(joined, file);
      await fsp.rm(uploadDir(uploadId), { recursive: true, force: true });
    },
    async abort(uploadId) {
      await fsp.rm(uploadDir(uploadId), { recursive: true, force: true });
    },
    size,
  };
}
