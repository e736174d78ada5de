import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { exportSelect } from '../../src/db/export';
import { fileHead, fileTail, frameRows } from '../../src/formats/writers';
import { checkExportParams, exportParamsSchema, partTarget } from '../../src/jobs/export';
import { canonicalLocation, locateObject, parseS3Location, type ObjectAccess } from '../../src/storage';
import { attachment } from '../../src/storage/downloads';
import { multipartTo, PartBuffer } from '../../src/storage/multipart';
import { products, shipped, users } from '../helpers/datasets';

const MIB = 1024 * 1024;

describe('export parameters', () => {
  const parse = (params: object) => exportParamsSchema.safeParse(params);
  /** The schema's issues, or once the shape is right, those against the declared datasets (as POST /runs checks). */
  const issues = (params: object) => {
    const parsed = parse(params);
    return (parsed.success ? checkExportParams(parsed.data, shipped) : parsed.error.issues).map((i) => [i.path.join('.'), i.message]);
  };

  it('defaults: CSV, no gzip, formulas neutralised, no secrets, 8 MiB parts', () => {
    assert.deepEqual(exportParamsSchema.parse({ dataset: 'users' }), { dataset: 'users', format: 'csv', gzip: false, csvFormulaEscape: true, includeSecrets: false, partSizeMb: 8 });
  });

  it('refuses unknown keys, unknown or repeated columns, and secret columns unless includeSecrets', () => {
    assert.equal(issues({ dataset: 'users', gzipped: true })?.[0]?.[0], '');
    assert.deepEqual(issues({ dataset: 'users', columns: ['email', 'nope', 'email'] })?.map((i) => i[0]), ['columns.1', 'columns.2']);
    assert.match(issues({ dataset: 'sessions', columns: ['id', 'token'] })?.[0]?.[1] ?? '', /secret column/);
    assert.deepEqual(issues({ dataset: 'sessions', columns: ['id', 'token'], includeSecrets: true }), []);
    assert.equal(issues({ dataset: 'users', where: { field: 'nope', op: 'eq', value: 1 } })?.[0]?.[0], 'where.field');
    assert.match(issues({ dataset: 'nope' })?.[0]?.join(': ') ?? '', /^dataset: "nope" is not a declared dataset/);
  });

  it('destinations are object store keys or s3:// locations', () => {
    for (const destination of ['exports/a.csv', 'store://exports/a.csv', 's3://bucket/a.csv']) assert.ok(parse({ dataset: 'users', destination }).success, destination);
    for (const destination of ['file:///etc/passwd', 'https://example.com/x', '']) assert.equal(parse({ dataset: 'users', destination }).success, false, destination);
    assert.equal(parse({ dataset: 'users', partSizeMb: 4 }).success, false, 'S3 needs parts of 5 MiB at least');
  });

  it('parts double in size every 1,000 parts, up to 64 MiB', () => {
    assert.equal(partTarget(8, 1), 8 * MIB);
    assert.equal(partTarget(8, 1000), 8 * MIB);
    assert.equal(partTarget(8, 1001), 16 * MIB);
    assert.equal(partTarget(8, 3001), 64 * MIB);
    assert.equal(partTarget(8, 9999), 64 * MIB);
  });
});

describe('export SQL', () => {
  const allUsers = { dataset: users, asOf: new Date() };
  it('neutralises formulas in text columns only, writes ISO timestamps and keeps other values as stored', () => {
    const sql = exportSelect({ selection: allUsers, columns: ['id', 'email', 'signup_date', 'last_login_at'], format: 'csv', csvFormulaEscape: true });
    assert.match(sql, /^SELECT t\."id" AS "id", CASE WHEN ascii\(t\."email"\) IN \(61, 43, 45, 64, 9, 13, 10\) THEN '''' \|\| t\."email" ELSE t\."email" END AS "email", t\."signup_date" AS "signup_date", to_json\(t\."last_login_at"\) #>> '\{\}' AS "last_login_at" FROM "users" t WHERE true ORDER BY t\."id"$/);
    const numbers = exportSelect({ selection: { dataset: products, asOf: new Date() }, columns: ['price', 'stock'], format: 'csv', csvFormulaEscape: true });
    assert.doesNotMatch(numbers, /CASE/, 'numbers are never altered');
    assert.doesNotMatch(exportSelect({ selection: allUsers, columns: ['email'], format: 'csv', csvFormulaEscape: false }), /CASE/);
  });

  it('JSON rows are row_to_json of the columns, in id order', () => {
    assert.equal(
      exportSelect({ selection: allUsers, columns: ['email', 'last_login_at'], format: 'ndjson', csvFormulaEscape: true }),
      'SELECT row_to_json(r) FROM (SELECT t."email" AS "email", t."last_login_at" AS "last_login_at" FROM "users" t WHERE true ORDER BY t."id") r',
    );
  });
});

describe('export framing', () => {
  const rows = ['{"a":1}', '{"a":"x\\ny"}', '{"a":null}'];
  const lines = (r: string[]) => Buffer.from(r.map((l) => `${l}\n`).join(''));

  it('a JSON array from chunks of lines, whatever the chunking', () => {
    for (const split of [1, 2, 3]) {
      const chunks = [rows.slice(0, split), rows.slice(split)];
      let written = 0;
      const body = chunks.map((chunk) => {
        // Postgres's pieces end anywhere, not only at a line's end.
        const text = lines(chunk);
        const framed = frameRows('json', [text.subarray(0, 3), text.subarray(3)], written === 0);
        written += chunk.length;
        return Buffer.concat(framed).toString();
      });
      const file = fileHead('json', []) + body.join('') + fileTail('json', written);
      assert.equal(file, `[\n${rows.join(',\n')}\n]\n`);
      assert.deepEqual(JSON.parse(file), [{ a: 1 }, { a: 'x\ny' }, { a: null }]);
    }
    assert.deepEqual(JSON.parse(fileHead('json', []) + fileTail('json', 0)), []);
  });

  it('CSV and NDJSON keep the lines as they are; the CSV header quotes names when needed', () => {
    assert.deepEqual(frameRows('csv', [lines(['a,b'])], false), [lines(['a,b'])]);
    assert.deepEqual(frameRows('ndjson', [lines(rows)], true), [lines(rows)]);
    assert.deepEqual(frameRows('json', [], true), []);
    assert.equal(fileHead('csv', ['id', 'odd,name']), 'id,"odd,name"\n');
    assert.equal(fileHead('ndjson', ['id']) + fileTail('ndjson', 5), '');
  });
});

describe('object locations', () => {
  const s3 = { client: {} as never, bucket: 'main', allowedBuckets: ['main'] };
  it('s3:// locations must name an allowed bucket', () => {
    assert.deepEqual(parseS3Location('s3://main/a/b.csv', s3), { bucket: 'main', key: 'a/b.csv' });
    assert.throws(() => parseS3Location('s3://other/a.csv', s3), /not one this deployment may use/);
    assert.throws(() => parseS3Location('s3://main/a.csv', undefined), /S3 is not configured/);
  });

  it('keys stay inside the store, away from its upload area', () => {
    assert.equal(canonicalLocation('exports/./a.csv'), 'store://exports/a.csv');
    assert.equal(canonicalLocation('s3://main/a.csv'), 's3://main/a.csv');
    for (const bad of ['../etc/passwd', '.uploads/x', 'store://a/../../b', 'dir/']) assert.throws(() => canonicalLocation(bad), /invalid object key/, bad);
    const local: ObjectAccess = { dir: '/data/objects' };
    assert.deepEqual(locateObject(local, 'store://exports/a.csv'), { dir: '/data/objects', key: 'exports/a.csv' });
  });

  it('downloads name the file safely', () => {
    assert.equal(attachment('naïve "x".csv'), `attachment; filename="na_ve _x_.csv"; filename*=UTF-8''na%C3%AFve%20%22x%22.csv`);
  });
});

describe('part buffer', () => {
  it('keeps what was appended when it grows, and is filled again from the start after clear()', () => {
    const part = new PartBuffer(4);
    part.append(Buffer.from('abc'));
    const view = part.bytes;
    part.append(Buffer.from('defgh'));
    assert.equal(part.bytes.toString(), 'abcdefgh');
    assert.equal(view.toString(), 'abc', 'a view taken before it grew still reads its bytes');
    part.clear();
    part.append(Buffer.from('xy'));
    assert.equal(part.size, 2);
    assert.equal(part.bytes.toString(), 'xy');
  });
});

describe('local multipart upload', () => {
  it('the object appears only when the upload completes; parts may be sent again; abort leaves nothing', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bf-multipart-'));
    try {
      const target = multipartTo({ dir, key: 'exports/a.csv' });
      const uploadId = await target.create('text/csv');
      const first = await target.uploadPart(uploadId, 1, Buffer.from('stale'));
      const etags = [await target.uploadPart(uploadId, 1, Buffer.from('hello, ')), await target.uploadPart(uploadId, 2, Buffer.from('world\n'))];
      assert.notEqual(first, etags[0]);
      assert.deepEqual(await target.listParts(uploadId), new Map([[1, etags[0]], [2, etags[1]]]));
      assert.equal(await target.size(), undefined, 'nothing at the key before completion');
      await target.complete(uploadId, etags, 13);
      assert.equal(await fs.readFile(path.join(dir, 'exports/a.csv'), 'utf8'), 'hello, world\n');
      await target.complete(uploadId, etags, 13); // a retry after success
      assert.equal(await target.listParts(uploadId), undefined);
      await assert.rejects(target.complete(uploadId, etags, 99), /no longer exists/);

      const other = multipartTo({ dir, key: 'exports/b.csv' });
      const aborted = await other.create('text/csv');
      const etag = await other.uploadPart(aborted, 1, Buffer.from('x'));
      await assert.rejects(other.complete(aborted, ['0'.repeat(32)], 1), /part 1 is missing or differs/);
      await other.abort(aborted);
      await other.abort(aborted);
      await assert.rejects(other.uploadPart(aborted, 2, Buffer.from('y')), /no longer exists/);
      await assert.rejects(other.complete(aborted, [etag], 1), /no longer exists/);
      assert.equal(await other.size(), undefined);
      assert.deepEqual(await fs.readdir(path.join(dir, '.uploads')), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
