import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { detectFormat, initialPosition, readRecords, SourceFormatError, type Format, type ReadPosition, type SourceRecord } from '../../src/formats';

/** Feeds bytes in small chunks of varying size so every boundary gets crossed. */
function chunked(buf: Buffer, seed = 1): Readable {
  const chunks: Buffer[] = [];
  let x = seed;
  for (let i = 0; i < buf.length; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % 7);
    chunks.push(buf.subarray(i, i + n));
    i += n;
  }
  return Readable.from(chunks);
}

async function readAll(buf: Buffer, format: Format, start: ReadPosition = initialPosition, seed = 1): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const records of readRecords(chunked(buf.subarray(start.byte), seed), { format, start })) out.push(...records);
  return out;
}

const summary = (records: SourceRecord[]) =>
  records.map((r) => (r.kind === 'header' ? ['header', r.columns] : r.kind === 'row' ? [r.row, r.line, r.values] : [r.row, r.line, r.code]));

/** Resuming after any record yields exactly the records a full read yields after it. */
async function assertResumable(buf: Buffer, format: Format): Promise<SourceRecord[]> {
  const full = await readAll(buf, format);
  for (let k = 0; k < full.length; k++) {
    const rest = await readAll(buf, format, full[k]!.end, k + 2);
    assert.deepEqual(summary(rest), summary(full.slice(k + 1)), `resuming after record ${k} (byte ${full[k]!.end.byte})`);
  }
  return full;
}

const csvSample = Buffer.from(
  '\uFEFFemail,name,note\r\na@x.io,"Lovelace, Ada","multi\r\nline ✓"\r\n\r\nb@x.io,Bé,plain\nc@x.io,"quote ""inside""",\nd@x.io,short\ne@x.io,Zoë,last',
);

describe('CSV reader', () => {
  it('reads quotes, embedded newlines, CRLF, a BOM and multibyte text, with row and line numbers', async () => {
    const records = await assertResumable(csvSample, 'csv');
    assert.deepEqual(summary(records), [
      ['header', ['email', 'name', 'note']],
      [1, 2, { email: 'a@x.io', name: 'Lovelace, Ada', note: 'multi\r\nline ✓' }],
      [2, 5, { email: 'b@x.io', name: 'Bé', note: 'plain' }],
      [3, 6, { email: 'c@x.io', name: 'quote "inside"', note: '' }],
      [4, 7, 'COLUMN_COUNT'],
      [5, 8, { email: 'e@x.io', name: 'Zoë', note: 'last' }],
    ]);
    assert.equal(records.at(-1)!.end.byte, csvSample.length);
  });

  it('honours another delimiter', async () => {
    const out: SourceRecord[] = [];
    for await (const records of readRecords(Readable.from([Buffer.from('a;b\n1;2\n')]), { format: 'csv', delimiter: ';', start: initialPosition })) out.push(...records);
    assert.deepEqual(summary(out), [['header', ['a', 'b']], [1, 2, { a: '1', b: '2' }]]);
  });

  const fatal = async (content: string | Buffer, format: Format = 'csv') => {
    try {
      await readAll(Buffer.from(content), format);
    } catch (err) {
      if (err instanceof SourceFormatError) return err;
      throw err;
    }
    assert.fail('expected a SourceFormatError');
  };

  it('reports an unterminated quote at the line where it starts', async () => {
    const err = await fatal('a,b\n1,2\n3,"open\n4,5\n6,7\n');
    assert.equal(err.code, 'UNTERMINATED_QUOTE');
    assert.equal(err.line, 3);
    assert.match(err.message, /starting on line 3/);
  });

  it('rejects an empty file, a bad header; accepts a header alone', async () => {
    assert.equal((await fatal('')).code, 'EMPTY_FILE');
    assert.equal((await fatal('\uFEFF')).code, 'EMPTY_FILE');
    assert.equal((await fatal('a,,b\n1,2,3\n')).code, 'BAD_HEADER');
    assert.match((await fatal('a,b,a\n1,2,3\n')).message, /repeats column\(s\) a/);
    assert.deepEqual(summary(await readAll(Buffer.from('a,b\n'), 'csv')), [['header', ['a', 'b']]]);
  });

  it('rejects exactly the records with invalid UTF-8, and keeps a real U+FFFD', async () => {
    const buf = Buffer.concat([Buffer.from('a,b\n1,ok \uFFFD\n2,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n3,fine é\n')]);
    const records = await assertResumable(buf, 'csv');
    assert.deepEqual(summary(records), [['header', ['a', 'b']], [1, 2, { a: '1', b: 'ok \uFFFD' }], [2, 3, 'INVALID_UTF8'], [3, 4, { a: '3', b: 'fine é' }]]);
  });
});

describe('NDJSON reader', () => {
  it('reads objects line by line, reporting bad lines and resuming anywhere', async () => {
    const buf = Buffer.from('{"a":1}\r\n\n{"a":"é\\n"}\n{"a":\nnot json\n[1]\n{"a":3}');
    const records = await assertResumable(buf, 'ndjson');
    assert.deepEqual(summary(records), [[1, 1, { a: 1 }], [2, 3, { a: 'é\n' }], [3, 4, 'INVALID_JSON'], [4, 5, 'INVALID_JSON'], [5, 6, 'NOT_AN_OBJECT'], [6, 7, { a: 3 }]]);
  });
});

describe('JSON array reader', () => {
  const buf = Buffer.from('\uFEFF [\n  {"a": 1, "s": "x, ] } \\" y"},\n  {"a": {"nested": [1, 2]}},\n  3,\n  {"a": "ü"}\n]\n');

  it('splits top-level elements of a streamed array and resumes after any of them', async () => {
    const records = await assertResumable(buf, 'json');
    assert.deepEqual(summary(records), [[1, 2, { a: 1, s: 'x, ] } " y' }], [2, 3, { a: { nested: [1, 2] } }], [3, 4, 'NOT_AN_OBJECT'], [4, 5, { a: 'ü' }]]);
  });

  it('rejects what is not one well-formed array', async () => {
    const fatal = async (s: string) => readAll(Buffer.from(s), 'json').then(() => assert.fail('expected an error'), (e: SourceFormatError) => e.code);
    assert.equal(await fatal('{"a": 1}'), 'NOT_AN_ARRAY');
    assert.equal(await fatal('[{"a": 1} {"a": 2}]'), 'MALFORMED_JSON');
    assert.equal(await fatal('[{"a": 1},'), 'MALFORMED_JSON');
    assert.equal(await fatal(''), 'EMPTY_FILE');
    assert.deepEqual(await readAll(Buffer.from('[]'), 'json'), []);
  });
});

describe('format detection', () => {
  it('goes by extension', () => {
    assert.equal(detectFormat('/x/Users.CSV'), 'csv');
    assert.equal(detectFormat('s3://b/k.jsonl'), 'ndjson');
    assert.equal(detectFormat('store://k.json'), 'json');
    assert.equal(detectFormat('/x/data.bin'), undefined);
  });
});

describe('throughput (printed, never asserted)', () => {
  it('parses 200k CSV rows', async () => {
    const lines = ['email,name,role,status,signup_date'];
    for (let i = 0; i < 200_000; i++) lines.push(`u${i}@example.com,"User ${i}",user,active,2024-01-01`);
    const buf = Buffer.from(lines.join('\n'));
    const t0 = performance.now();
    let n = 0;
    for await (const records of readRecords(Readable.from([buf]), { format: 'csv', start: initialPosition })) n += records.filter((r) => r.kind === 'row').length;
    console.log(`# csv: ${Math.round(n / ((performance.now() - t0) / 1000)).toLocaleString()} rows/s`);
    assert.equal(n, 200_000);
  });
});
