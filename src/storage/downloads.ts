import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectRef } from '.';

/** A stored file as a caller gets it: a short-lived link to S3, or its bytes. */
export type Download = { url: string } | { stream: Readable; size: number };

/** How long a presigned download link stays valid. */
export const DOWNLOAD_URL_SECONDS = 300;

/**
 * Opens a stored file for download; undefined when it is not there (any more). On S3 the caller
 * gets a presigned URL unless it asks for the bytes (`redirect: false`, for clients that cannot
 * reach the S3 endpoint).
 */
export async function openDownload(ref: ObjectRef, opts: { filename: string; contentType: string; redirect: boolean }): Promise<Download | undefined> {
  if (!ref.client) {
    const file = path.join(ref.dir, ref.key);
    const stat = await fsp.stat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    return stat?.isFile() ? { stream: fs.createReadStream(file, { highWaterMark: 1024 * 1024 }), size: stat.size } : undefined;
  }
  const at = { Bucket: ref.bucket, Key: ref.key };
  const head = await ref.client.send(new HeadObjectCommand(at)).catch((err: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
    if (err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  });
  if (!head) return undefined;
  if (!opts.redirect) {
    const object = await ref.client.send(new GetObjectCommand(at));
    return { stream: object.Body as Readable, size: head.ContentLength ?? 0 };
  }
  const command = new GetObjectCommand({ ...at, ResponseContentType: opts.contentType, ResponseContentDisposition: attachment(opts.filename) });
  return { url: await getSignedUrl(ref.client, command, { expiresIn: DOWNLOAD_URL_SECONDS }) };
}

/** A Content-Disposition that names the file, safely quoted (RFC 6266, with a UTF-8 form for other characters). */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
