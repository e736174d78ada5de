import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  detectFormat,
  eachRecord,
  fatalCodes,
  initialPosition,
  readRecords,
  recordErrorCodes,
  SourceFormatError,
  type Format,
  type ReadOptions,
  type ReadPosition,
  type SourceRecord,
} from '../../src/formats';
import { invalidUtf8Offsets, Utf8Checker } from '../../src/formats/utf8';

/** A small deterministic PRNG (LCG), so failures can be replayed. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
}

/** A plain async iterable (not a Node stream) over the items. */
function asyncOf<T>(items: Iterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = items[Symbol.iterator]();
      return { next: () => Promise.resolve(it.next()) };
    },
  };
}

/** The bytes in chunks of 1–7 bytes, alternately Buffers and plain Uint8Arrays, crossing every boundary. */
function chunked(buf: Buffer, seed: number): AsyncIterable<Buffer | Uint8Array> {
  const rand = prng(seed);
  const chunks: (Buffer | Uint8Array)[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = 1 + rand(7);
    const piece = buf.subarray(i, i + n);
    chunks.push(rand(2) === 0 ? piece : new Uint8Array(piece));
    i += n;
  }
  return asyncOf(chunks);
}

const whole = (buf: Buffer): AsyncIterable<Buffer> => asyncOf(buf.length > 0 ? [buf] : []);

interface Outcome {
  records: SourceRecord[];
  error?: SourceFormatError;
}

type Extra = Omit<ReadOptions, 'format' | 'start'>;

/** Reads the file from `start` (the input begins at start.byte), collecting records and a fatal error. */
async function read(buf: Buffer, format: Format, start: ReadPosition = initialPosition, opts: Extra & { seed?: number } = {}): Promise<Outcome> {
  const { seed, ...extra } = opts;
  const rest = buf.subarray(start.byte);
  const input = seed === undefined ? whole(rest) : chunked(rest, seed);
  const records: SourceRecord[] = [];
  try {
    for await (const record of eachRecord(readRecords(input, { format, start, ...extra }))) records.push(record);
  } catch (err) {
    if (err instanceof SourceFormatError) return { records, error: err };
    throw err;
  }
  return { records };
}

const errorOf = (o: Outcome) => o.error && { code: o.error.code, line: o.error.line, message: o.error.message };

/** The records' essentials: [row, line, values] for rows, [row, line, code] for invalid ones. */
const summary = (records: SourceRecord[]) =>
  records.map((r) => (r.kind === 'header' ? ['header', r.columns] : r.kind === 'row' ? [r.row, r.line, r.values] : [r.row, r.line, r.code]));

/**
 * The resume property: reading in tiny random chunks gives what one chunk gives, and re-opening
 * the file at any record's `end` (a ranged read) gives exactly the records after it, with the same
 * row and line numbers and positions, and the same fatal error if there is one.
 */
async function assertResumable(buf: Buffer, format: Format, extra: Extra = {}): Promise<Outcome> {
  const full = await read(buf, format, initialPosition, { ...extra, seed: 1 });
  assert.deepEqual(await read(buf, format, initialPosition, extra), full, 'one chunk and tiny chunks read the same');
  let previous = 0;
  for (const r of full.records) {
    assert.ok(r.end.byte > previous && r.end.byte <= buf.length, `end.byte ${r.end.byte} moves forward within the file`);
    previous = r.end.byte;
  }
  for (let k = 0; k < full.records.length; k++) {
    const end = full.records[k]!.end;
    const rest = await read(buf, format, end, { ...extra, seed: k + 2 });
    assert.deepEqual(rest.records, full.records.slice(k + 1), `resuming after record ${k + 1} (byte ${end.byte})`);
    assert.deepEqual(errorOf(rest), errorOf(full), `resuming after record ${k + 1}: the same fatal error`);
  }
  return full;
}

async function fatal(content: string | Buffer, format: Format, extra: Extra = {}): Promise<SourceFormatError & Outcome> {
  const outcome = await read(Buffer.from(content), format, initialPosition, { ...extra, seed: 3 });
  assert.ok(outcome.error, `expected a SourceFormatError, read ${JSON.stringify(summary(outcome.records))}`);
  assert.ok((fatalCodes as readonly string[]).includes(outcome.error.code));
  return Object.assign(outcome.error, { records: outcome.records });
}

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('CSV reader', () => {
  const sample = bytes(
    '\uFEFFemail,name,note\r\n', // 1 (BOM, CRLF)
    'a@x.io,"Lovelace, Ada","multi\r\nline ✓"\r\n', // 2-3: quoted delimiter, quoted CRLF
    '\r\n', // 4: blank
    'b@x.io,Bé,plain\n', // 5: LF
    'c@x.io,"quote ""inside""",\n', // 6: doubled quotes, empty last field
    'd@x.io,short\n', // 7: a column short
    '\n', // 8: blank
    'e@x.io,"😀 emoji","two\n\nlines"\n', // 9-11: a blank line inside quotes is data
    'f@x.io,',
    [0xc3, 0x28],
    'bad,x\n', // 12: invalid UTF-8
    'g@x.io,real \uFFFD,  spaced  \r\n', // 13: a real U+FFFD; values not trimmed
    'h@x.io,漢字,last', // 14: no final newline
  );

  it('reads quotes, embedded newlines, CRLF/LF, a BOM and multibyte text, with row and line numbers, and resumes after any record', async () => {
    const { records, error } = await assertResumable(sample, 'csv');
    assert.equal(error, undefined);
    assert.deepEqual(summary(records), [
      ['header', ['email', 'name', 'note']],
      [1, 2, { email: 'a@x.io', name: 'Lovelace, Ada', note: 'multi\r\nline ✓' }],
      [2, 5, { email: 'b@x.io', name: 'Bé', note: 'plain' }],
      [3, 6, { email: 'c@x.io', name: 'quote "inside"', note: '' }],
      [4, 7, 'COLUMN_COUNT'],
      [5, 9, { email: 'e@x.io', name: '😀 emoji', note: 'two\n\nlines' }],
      [6, 12, 'INVALID_UTF8'],
      [7, 13, { email: 'g@x.io', name: 'real \uFFFD', note: '  spaced  ' }],
      [8, 14, { email: 'h@x.io', name: '漢字', note: 'last' }],
    ]);
    // Positions: the header's end carries the columns; lines count physical lines consumed.
    assert.deepEqual(records[0]!.end, { byte: Buffer.byteLength('\uFEFFemail,name,note\r\n'), row: 0, line: 1, header: ['email', 'name', 'note'] });
    assert.deepEqual(
      records.map((r) => r.end.line),
      [1, 3, 5, 6, 7, 11, 12, 13, 14],
    );
    assert.equal(records.at(-1)!.end.byte, sample.length);
    const short = records[4]!;
    assert.ok(short.kind === 'invalid');
    assert.equal(short.message, 'expected 3 columns, found 2');
    assert.equal(short.raw, 'd@x.io,short');
    const bad = records[6]!;
    assert.ok(bad.kind === 'invalid');
    assert.match(bad.message, /not valid UTF-8: byte 0xC3 at byte offset \d+/);
    assert.equal(bad.raw, 'f@x.io,\uFFFD(bad,x');
  });

  it('resumes from a position alone: header from start.header, numbering from start.row and start.line', async () => {
    const buf = Buffer.from('id,v\n1,a\n2,b\n3,c\n');
    const { records } = await read(buf, 'csv');
    const at = records[1]!.end; // after row 1
    assert.deepEqual(at, { byte: 9, row: 1, line: 2, header: ['id', 'v'] });
    const rest = await read(buf, 'csv', { byte: at.byte, row: at.row, line: at.line, header: ['id', 'v'] });
    assert.deepEqual(summary(rest.records), [
      [2, 3, { id: '2', v: 'b' }],
      [3, 4, { id: '3', v: 'c' }],
    ]);
    assert.throws(() => readRecords(whole(buf.subarray(9)), { format: 'csv', start: { byte: 9, row: 1, line: 2 } }), /needs the header/);
    // From byte 0 the file's own header is read, whatever start.header says.
    assert.deepEqual(summary((await read(buf, 'csv', { ...initialPosition, header: ['x', 'y'] })).records).slice(0, 2), [['header', ['id', 'v']], [1, 2, { id: '1', v: 'a' }]]);
    // Resuming at the end of the file reads nothing, and is not an "empty file".
    assert.deepEqual(await read(buf, 'csv', records.at(-1)!.end), { records: [] });
  });

  it('honours another delimiter, including a tab and a multibyte one', async () => {
    for (const delimiter of [';', '\t', '|', '§']) {
      const buf = Buffer.from(['a', 'b', 'c'].join(delimiter) + '\n' + ['1', `"x${delimiter}y"`, 'é'].join(delimiter) + '\n');
      const { records } = await assertResumable(buf, 'csv', { delimiter });
      assert.deepEqual(summary(records), [['header', ['a', 'b', 'c']], [1, 2, { a: '1', b: `x${delimiter}y`, c: 'é' }]], `delimiter ${JSON.stringify(delimiter)}`);
    }
    assert.throws(() => readRecords(whole(Buffer.from('')), { format: 'csv', delimiter: ',,', start: initialPosition }), /one character/);
    assert.throws(() => readRecords(whole(Buffer.from('')), { format: 'csv', delimiter: '"', start: initialPosition }), /one character/);
  });

  it('skips blank lines (counting them as lines) before the header and between rows', async () => {
    const buf = Buffer.from('\n\r\n  \nname\n\n\nAda\n\n');
    const { records } = await assertResumable(buf, 'csv');
    assert.deepEqual(summary(records), [['header', ['name']], [1, 7, { name: 'Ada' }]]);
    assert.equal(records[0]!.end.line, 4);
  });

  it('trims header names; reads a header alone as just the header', async () => {
    assert.deepEqual(summary((await read(Buffer.from(' a , b \n1,2\n'), 'csv')).records), [['header', ['a', 'b']], [1, 2, { a: '1', b: '2' }]]);
    for (const content of ['a,b\n', 'a,b', '\uFEFFa,b\r\n\r\n']) {
      const { records, error } = await read(Buffer.from(content), 'csv', initialPosition, { seed: 5 });
      assert.equal(error, undefined);
      assert.deepEqual(summary(records), [['header', ['a', 'b']]], JSON.stringify(content));
    }
  });

  it('rejects an empty file and a bad header', async () => {
    for (const content of ['', '\uFEFF', '\n\n', ' \r\n\t\n', '\uFEFF\r\n']) {
      const err = await fatal(content, 'csv');
      assert.equal(err.code, 'EMPTY_FILE', JSON.stringify(content));
      assert.equal(err.message, 'the file is empty: no header row');
    }
    let err = await fatal('a,,b, \n1,2,3,4\n', 'csv');
    assert.equal(err.code, 'BAD_HEADER');
    assert.equal(err.line, 1);
    assert.match(err.message, /has no name for columns 2, 4/);
    err = await fatal('\n\nid,a,b,a,id\n1,2,3,4,5\n', 'csv');
    assert.equal(err.code, 'BAD_HEADER');
    assert.equal(err.line, 3);
    assert.match(err.message, /repeats column names "id" \(columns 1, 5\), "a" \(columns 2, 4\)/);
    err = await fatal(bytes('na', [0xe9], 'me\n'), 'csv');
    assert.equal(err.code, 'BAD_HEADER');
    assert.match(err.message, /not valid UTF-8/);
  });

  it('reports an unterminated quote at the line where the quoted field starts', async () => {
    let err = await fatal('a,b\n1,2\n\n3,"open\n4,5\n6,7\n', 'csv');
    assert.equal(err.code, 'UNTERMINATED_QUOTE');
    assert.equal(err.line, 4);
    assert.equal(err.row, 2);
    assert.match(err.message, /^unterminated quoted field starting on line 4\b/);
    assert.deepEqual(summary(err.records), [['header', ['a', 'b']], [1, 2, { a: '1', b: '2' }]], 'the records before it are read');
    // An earlier field of the same record spans lines: the open quote is on a later line.
    err = await fatal('a,b,c\r\n1,"x\r\ny","open\r\n4,5,6\r\n', 'csv');
    assert.equal(err.code, 'UNTERMINATED_QUOTE');
    assert.equal(err.line, 3);
    assert.match(err.message, /starting on line 3\b/);
    // Resuming before the damage meets the same error.
    await assertResumable(Buffer.from('a,b\n1,2\n3,4\n5,"open\n6,7\n'), 'csv');
  });

  it('stops at a record larger than maxRecordBytes instead of buffering the file', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `${i},v${i}`).join('\n');
    let err = await fatal(`a,b\n1,"never closed\n${lines}\n`, 'csv', { maxRecordBytes: 1024 });
    assert.equal(err.code, 'UNTERMINATED_QUOTE');
    assert.equal(err.line, 2);
    assert.match(err.message, /no closing quote within 1 KiB/);
    err = await fatal(`a,b\n1,2\n3,${'x'.repeat(5000)}\n`, 'csv', { maxRecordBytes: 1024 });
    assert.equal(err.code, 'MALFORMED_CSV');
    assert.equal(err.line, 3);
    assert.match(err.message, /record starting on line 3 is larger than 1 KiB/);
    assert.equal(err.records.length, 2);
  });

  it('keeps stray quotes inside unquoted fields as text', async () => {
    const { records } = await read(Buffer.from('h,w\n5\'10",ab"c\n'), 'csv');
    assert.deepEqual(summary(records), [['header', ['h', 'w']], [1, 2, { h: '5\'10"', w: 'ab"c' }]]);
  });

  it('reads odd records after plain ones the same way, whatever the chunks (the fast reader hands them to csv-parse)', async () => {
    const plain = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => `${from + k},"n ${from + k}, ok"\n`).join('');
    const buf = Buffer.from(`h,w\n${plain(1, 50)}5'10",ab"c\na\rb,c\n${plain(53, 60)}`);
    const { records, error } = await assertResumable(buf, 'csv');
    assert.equal(error, undefined);
    const rows = summary(records);
    assert.equal(rows.length, 61);
    assert.deepEqual(rows[1], [1, 2, { h: '1', w: 'n 1, ok' }]);
    assert.deepEqual(rows[51], [51, 52, { h: '5\'10"', w: 'ab"c' }]);
    assert.deepEqual(rows[52], [52, 53, { h: 'a\rb', w: 'c' }]);
    assert.deepEqual(rows[60], [60, 61, { h: '60', w: 'n 60, ok' }]);
  });

  it('makes any header name an own property of the row, even __proto__', async () => {
    const { records } = await read(Buffer.from('__proto__,constructor\nx,y\n'), 'csv');
    const row = records[1]!;
    assert.ok(row.kind === 'row');
    assert.equal(Object.getPrototypeOf(row.values), Object.prototype);
    assert.deepEqual(Object.entries(row.values), [
      ['__proto__', 'x'],
      ['constructor', 'y'],
    ]);
  });
});

describe('NDJSON reader', () => {
  const sample = bytes(
    '\uFEFF{"a":1}\r\n', // 1: BOM, CRLF
    '\n', // 2
    '{"a":"é\\n","b":[1,{"c":null}]}\n', // 3
    '   \t\r\n', // 4: blank
    '{"a":\n', // 5: cut short
    'not json\n', // 6
    '[1]\n', // 7
    '42\n', // 8
    '{"a":"',
    [0xff],
    '"}\n', // 9: invalid UTF-8
    '{"a":"\uFFFD 😀"}\n', // 10: a real U+FFFD
    '{"__proto__":{"x":1},"a":3}', // 11: no final newline
  );

  it('reads one object per line, reporting bad lines, and resumes after any record', async () => {
    const { records, error } = await assertResumable(sample, 'ndjson');
    assert.equal(error, undefined);
    assert.deepEqual(summary(records), [
      [1, 1, { a: 1 }],
      [2, 3, { a: 'é\n', b: [1, { c: null }] }],
      [3, 5, 'INVALID_JSON'],
      [4, 6, 'INVALID_JSON'],
      [5, 7, 'NOT_AN_OBJECT'],
      [6, 8, 'NOT_AN_OBJECT'],
      [7, 9, 'INVALID_UTF8'],
      [8, 10, { a: '\uFFFD 😀' }],
      [9, 11, JSON.parse('{"__proto__":{"x":1},"a":3}') as Record<string, unknown>],
    ]);
    assert.deepEqual(
      records.map((r) => r.end.line),
      [1, 3, 5, 6, 7, 8, 9, 10, 11],
    );
    assert.equal(records.at(-1)!.end.byte, sample.length);
    const messages = records.flatMap((r) => (r.kind === 'invalid' ? [[r.code, r.message, r.raw] as const] : []));
    assert.match(messages[0]![1], /^invalid JSON: .+/);
    assert.equal(messages[0]![2], '{"a":');
    assert.match(messages[1]![1], /^invalid JSON: .*not json|Unexpected token/);
    assert.equal(messages[2]![1], 'expected a JSON object, found an array');
    assert.equal(messages[3]![1], 'expected a JSON object, found a number');
    assert.match(messages[4]![1], /byte 0xFF/);
  });

  it('rejects an empty file; stops at a line larger than maxRecordBytes', async () => {
    for (const content of ['', '\n\n', '\uFEFF', ' \r\n']) assert.equal((await fatal(content, 'ndjson')).code, 'EMPTY_FILE', JSON.stringify(content));
    const err = await fatal(`{"a":1}\n{"a":"${'x'.repeat(4000)}"}\n`, 'ndjson', { maxRecordBytes: 1024 });
    assert.equal(err.code, 'MALFORMED_JSON');
    assert.equal(err.line, 2);
    assert.equal(err.records.length, 1);
  });
});

describe('JSON array reader', () => {
  const sample = bytes(
    '\uFEFF \r\n[\n', // 1-2
    '  {"a": 1, "s": "x, ] } \\" y [ {"},\n', // 3: brackets, commas and an escaped quote in a string
    '  {"a": {"nested": [1, {"b": []}]}, "t": "back\\\\"},\n', // 4: a string ending in an escaped backslash
    '  3, "str", null, [1], true,\n', // 5: five non-objects on one line
    '  {"a": "ü 😀 \uFFFD"}, {"a": tru},\n', // 6: two elements, the second unparseable
    '  {"a": "',
    [0xc3],
    '"},\n', // 7: invalid UTF-8
    '  {"last": -1.5e3}\n',
    ']\n',
  );

  it('splits the top-level elements of a streamed array and resumes after any of them', async () => {
    const { records, error } = await assertResumable(sample, 'json');
    assert.equal(error, undefined);
    assert.deepEqual(summary(records), [
      [1, 3, { a: 1, s: 'x, ] } " y [ {' }],
      [2, 4, { a: { nested: [1, { b: [] }] }, t: 'back\\' }],
      [3, 5, 'NOT_AN_OBJECT'],
      [4, 5, 'NOT_AN_OBJECT'],
      [5, 5, 'NOT_AN_OBJECT'],
      [6, 5, 'NOT_AN_OBJECT'],
      [7, 5, 'NOT_AN_OBJECT'],
      [8, 6, { a: 'ü 😀 \uFFFD' }],
      [9, 6, 'INVALID_JSON'],
      [10, 7, 'INVALID_UTF8'],
      [11, 8, { last: -1500 }],
    ]);
    // A JSON position's line counts the newlines before its byte: elements may share a line.
    assert.deepEqual(
      records.map((r) => r.end.line),
      [2, 3, 4, 4, 4, 4, 4, 5, 5, 6, 7],
    );
    assert.deepEqual(
      records.slice(2, 7).map((r) => (r.kind === 'invalid' ? r.message : '')),
      ['a number', 'a string', 'null', 'an array', 'a boolean'].map((what) => `expected a JSON object, found ${what}`),
    );
    const unparseable = records[8]!;
    assert.ok(unparseable.kind === 'invalid');
    assert.equal(unparseable.raw, '{"a": tru}');
    assert.match(unparseable.message, /^invalid JSON: /);
  });

  it('reads empty arrays, and arrays with elements on one line', async () => {
    for (const content of ['[]', ' [ ] \n', '\uFEFF[\n]']) assert.deepEqual(await read(Buffer.from(content), 'json', initialPosition, { seed: 4 }), { records: [] });
    const { records } = await assertResumable(Buffer.from('[{"a":1},{"a":2} ,{"a":3}]'), 'json');
    assert.deepEqual(summary(records), [
      [1, 1, { a: 1 }],
      [2, 1, { a: 2 }],
      [3, 1, { a: 3 }],
    ]);
  });

  it('rejects what is not one well-formed array, with the line', async () => {
    const cases: [string, string, number | undefined, RegExp][] = [
      ['', 'EMPTY_FILE', undefined, /empty/],
      [' \n\uFEFF', 'NOT_AN_ARRAY', 2, /starts with byte 0xEF/],
      ['\n{"a": 1}', 'NOT_AN_ARRAY', 2, /use format ndjson/],
      ['[{"a": 1}\n {"a": 2}]', 'MALFORMED_JSON', 2, /expected "," or "]" after the element, found "\{"/],
      ['[{"a": 1},\n]', 'MALFORMED_JSON', 2, /trailing comma/],
      ['[,]', 'MALFORMED_JSON', 1, /expected a value, found ","/],
      ['[{"a": 1},\n{"a": 2}', 'MALFORMED_JSON', 2, /ends on line 2 before the array is closed/],
      ['[{"a": "never closed}]\n', 'MALFORMED_JSON', 2, /before the array is closed/],
      ['[1', 'MALFORMED_JSON', 1, /before the array is closed/],
      ['[{"a": 1}]\n]', 'MALFORMED_JSON', 2, /"\]" after the end of the array/],
    ];
    for (const [content, code, line, message] of cases) {
      const err = await fatal(content, 'json');
      assert.equal(err.code, code, content);
      assert.equal(err.line, line, content);
      assert.match(err.message, message, content);
    }
    // What was read before the damage is kept; resuming meets the same damage.
    const truncated = Buffer.from('[\n{"a": 1},\n{"a": 2},\n{"a": 3');
    const { records, error } = await assertResumable(truncated, 'json');
    assert.equal(records.length, 2);
    assert.equal(error?.code, 'MALFORMED_JSON');
    assert.equal(error?.line, 4);
  });

  it('stops at an element larger than maxRecordBytes', async () => {
    const err = await fatal(`[{"a": 1}, {"a": "${'x'.repeat(5000)}`, 'json', { maxRecordBytes: 1024 });
    assert.equal(err.code, 'MALFORMED_JSON');
    assert.match(err.message, /element starting on line 1 is larger than 1 KiB: is a string never closed\?/);
    assert.equal(err.records.length, 1);
  });
});

describe('random files (model-based)', () => {
  const pieces = ['a', 'Zoë', '😀', '漢', ' ', ',', ';', '"', '\n', '\r\n', '\r', '\uFFFD', '[', ']', '{', '}', '\\', ':'];
  type Expected = [number, number, Record<string, unknown> | string];

  /** A file built piece by piece, tracking newlines so each record's expected line is known. */
  class Writer {
    parts: Buffer[] = [];
    newlines = 0;
    write(x: string | Buffer) {
      const b = typeof x === 'string' ? Buffer.from(x) : x;
      this.parts.push(b);
      for (const c of b) if (c === 0x0a) this.newlines++;
    }
    get line() {
      return this.newlines + 1;
    }
    bytes() {
      return Buffer.concat(this.parts);
    }
  }

  it('CSV', async () => {
    const rand = prng(2024);
    const text = (max: number) => Array.from({ length: rand(max + 1) }, () => pieces[rand(pieces.length)]!).join('');
    for (let n = 0; n < 40; n++) {
      const delimiter = [',', ';', '\t'][rand(3)]!;
      const columns = ['id', 'name', 'note', 'x'].slice(0, 1 + rand(4));
      const w = new Writer();
      const eol = () => (rand(2) ? '\n' : '\r\n');
      const field = (v: string) => (v === '' || /["\r\n]/.test(v) || v.includes(delimiter) || rand(3) === 0 ? `"${v.replaceAll('"', '""')}"` : v);
      if (rand(2)) w.write('\uFEFF');
      w.write(columns.join(delimiter));
      const expected: Expected[] = [];
      const records = 1 + rand(10);
      for (let r = 1; r <= records; r++) {
        w.write(eol());
        while (rand(4) === 0) w.write(eol()); // blank lines
        const line = w.line;
        const kind = rand(8);
        if (kind === 0) {
          const count = columns.length > 1 && rand(2) ? columns.length - 1 : columns.length + 1;
          w.write(Array.from({ length: count }, () => field(text(3))).join(delimiter));
          expected.push([r, line, 'COLUMN_COUNT']);
        } else if (kind === 1) {
          // One column too many, and bytes that are not UTF-8: the encoding is reported first.
          w.write(Array.from(columns, () => field(text(3))).join(delimiter) + delimiter);
          w.write(Buffer.from([0xff, 0xfe]));
          expected.push([r, line, 'INVALID_UTF8']);
        } else {
          const values = Object.fromEntries(columns.map((c) => [c, text(4)]));
          w.write(columns.map((c) => field(values[c]!)).join(delimiter));
          expected.push([r, line, values]);
        }
      }
      if (rand(2)) w.write(eol());
      const buf = w.bytes();
      const { records: read_, error } = await assertResumable(buf, 'csv', { delimiter });
      assert.equal(error, undefined);
      assert.deepEqual(summary(read_), [['header', columns], ...expected], JSON.stringify(buf.toString()));
    }
  });

  it('NDJSON', async () => {
    const rand = prng(7);
    const text = (max: number) => Array.from({ length: rand(max + 1) }, () => pieces[rand(pieces.length)]!).join('');
    for (let n = 0; n < 40; n++) {
      const w = new Writer();
      if (rand(2)) w.write('\uFEFF');
      const expected: Expected[] = [];
      const records = 1 + rand(10);
      for (let r = 1; r <= records; r++) {
        while (rand(4) === 0) w.write(['\n', '\r\n', '  \n'][rand(3)]!);
        const line = w.line;
        const kind = rand(8);
        if (kind === 0) {
          w.write(`{"a": ${text(2).replaceAll('\n', '')}`);
          expected.push([r, line, 'INVALID_JSON']);
        } else if (kind === 1) {
          w.write(JSON.stringify([text(2)]));
          expected.push([r, line, 'NOT_AN_OBJECT']);
        } else if (kind === 2) {
          w.write('{"a": "');
          w.write(Buffer.from([0xc3]));
          w.write('"}');
          expected.push([r, line, 'INVALID_UTF8']);
        } else {
          const value = { a: text(4), n: rand(100), nested: { b: [text(2)] } };
          w.write(JSON.stringify(value));
          expected.push([r, line, value]);
        }
        if (r < records || rand(2)) w.write(rand(2) ? '\n' : '\r\n');
      }
      const buf = w.bytes();
      const { records: read_, error } = await assertResumable(buf, 'ndjson');
      assert.equal(error, undefined);
      assert.deepEqual(summary(read_), expected, JSON.stringify(buf.toString()));
    }
  });

  it('JSON array', async () => {
    const rand = prng(99);
    const text = (max: number) => Array.from({ length: rand(max + 1) }, () => pieces[rand(pieces.length)]!).join('');
    const space = () => [' ', '', '\n', '\r\n  ', '\t'][rand(5)]!;
    for (let n = 0; n < 40; n++) {
      const w = new Writer();
      if (rand(2)) w.write('\uFEFF');
      w.write(space() + '[' + space());
      const expected: Expected[] = [];
      const records = rand(10);
      for (let r = 1; r <= records; r++) {
        if (r > 1) w.write(space() + ',' + space());
        const line = w.line;
        const kind = rand(8);
        if (kind === 0) {
          w.write(['{"a": tru}', '{"a": [1, 2}]', '{"a" 1}', '{"a": "x", }'][rand(4)]!); // delimited, but not JSON
          expected.push([r, line, 'INVALID_JSON']);
        } else if (kind === 1) {
          w.write(JSON.stringify([text(3), 1, -2.5, true, null][rand(5)]));
          expected.push([r, line, 'NOT_AN_OBJECT']);
        } else if (kind === 2) {
          w.write('{"a": "');
          w.write(Buffer.from([0xed, 0xa0, 0x80]));
          w.write('"}');
          expected.push([r, line, 'INVALID_UTF8']);
        } else {
          const value = { a: text(4), list: [text(2), { deep: [[text(1)]] }], n: rand(1000) };
          w.write(JSON.stringify(value, null, rand(2) ? 2 : undefined));
          expected.push([r, line, value]);
        }
      }
      w.write(space() + ']' + space());
      const buf = w.bytes();
      const { records: read_, error } = await assertResumable(buf, 'json');
      assert.equal(error, undefined);
      assert.deepEqual(summary(read_), expected, JSON.stringify(buf.toString()));
    }
  });
});

describe('UTF-8 checking', () => {
  const samples: number[][] = [
    [0xc0, 0x80], // overlong
    [0xe0, 0x80, 0x80], // overlong
    [0xed, 0xa0, 0x80], // a surrogate
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
    [0xe2, 0x82], // cut short
    [0x80], // a lone continuation byte
  ];

  it('finds exactly the invalid bytes that Node rejects', () => {
    for (const s of samples) assert.notDeepEqual(invalidUtf8Offsets(Buffer.from(s)), [], s.join(' '));
    assert.deepEqual(invalidUtf8Offsets(Buffer.from('aé✓😀\uFFFD')), []);
    const rand = prng(7);
    for (let n = 0; n < 3000; n++) {
      const buf = Buffer.from(Array.from({ length: 1 + rand(12) }, () => (rand(3) === 0 ? rand(128) : 0x80 + rand(128))));
      assert.equal(invalidUtf8Offsets(buf).length === 0, isUtf8(buf), buf.toString('hex'));
    }
  });

  it('finds the same bytes however the stream is cut', () => {
    const rand = prng(11);
    for (let n = 0; n < 300; n++) {
      const buf = Buffer.concat(Array.from({ length: 20 }, () => (rand(4) === 0 ? Buffer.from(samples[rand(samples.length)]!) : Buffer.from('a😀é✓'.slice(rand(4))))));
      const expected = invalidUtf8Offsets(buf);
      const checker = new Utf8Checker();
      for (let i = 0; i < buf.length; ) {
        const len = 1 + rand(5);
        checker.feed(buf.subarray(i, i + len), i);
        i += len;
      }
      checker.finish();
      const found: number[] = [];
      for (let at = checker.firstInvalid(0, buf.length); at !== -1; at = checker.firstInvalid(Math.floor(at / 256) + 1, buf.length)) found.push(Math.floor(at / 256));
      assert.deepEqual(found, expected, buf.toString('hex'));
    }
  });
});

describe('reading', () => {
  it('exports the codes', () => {
    assert.deepEqual([...recordErrorCodes], ['COLUMN_COUNT', 'INVALID_JSON', 'NOT_AN_OBJECT', 'INVALID_UTF8']);
    assert.deepEqual([...fatalCodes], ['EMPTY_FILE', 'BAD_HEADER', 'UNTERMINATED_QUOTE', 'MALFORMED_CSV', 'NOT_AN_ARRAY', 'MALFORMED_JSON']);
  });

  it('reads a Node stream, and stops it when the reader stops early', async () => {
    const stream = Readable.from([Buffer.from('a\n1\n2\n3\n'), Buffer.from('4\n5\n')]);
    const records: SourceRecord[] = [];
    for await (const batch of readRecords(stream, { format: 'csv', start: initialPosition })) {
      records.push(...batch);
      break;
    }
    assert.deepEqual(summary(records).slice(0, 2), [['header', ['a']], [1, 2, { a: '1' }]]);
    assert.ok(stream.destroyed);
  });

  it('refuses text chunks', async () => {
    await assert.rejects(eachRecord(readRecords(Readable.from(['a\n1\n'], { objectMode: true }), { format: 'csv', start: initialPosition })).next(), TypeError);
  });

  it('hands out records in bounded arrays whatever the chunk size', async () => {
    const buf = Buffer.from(`{"a":1}\n`.repeat(100_000));
    let largest = 0;
    for await (const batch of readRecords(whole(buf), { format: 'ndjson', start: initialPosition })) largest = Math.max(largest, batch.length);
    assert.ok(largest <= Math.ceil((64 * 1024) / 8), `arrays of up to ${largest} records`);
  });
});

describe('format detection', () => {
  it('goes by the last extension', () => {
    assert.equal(detectFormat('/x/Users.CSV'), 'csv');
    assert.equal(detectFormat('/x/users.tsv'), 'csv');
    assert.equal(detectFormat('s3://b/k.jsonl'), 'ndjson');
    assert.equal(detectFormat('file:///k.NDJSON'), 'ndjson');
    assert.equal(detectFormat('store://k.json'), 'json');
    assert.equal(detectFormat('/x/data.csv.gz'), undefined);
    assert.equal(detectFormat('/x/data.bin'), undefined);
    assert.equal(detectFormat('/x/csv'), undefined);
    assert.equal(detectFormat('/x/data.constructor'), undefined);
  });
});

describe('throughput (printed, never asserted)', () => {
  const N = 200_000;
  const objects = function* () {
    for (let i = 0; i < N; i++) yield { email: `user${i}@example.com`, name: `User Number ${i}`, role: 'member', status: 'active', signup_date: '2024-01-01' };
  };
  const files: Record<Format, () => Buffer> = {
    csv: () => Buffer.from(['email,name,role,status,signup_date', ...Array.from(objects(), (o) => `${o.email},"${o.name}",${o.role},${o.status},${o.signup_date}`)].join('\n')),
    ndjson: () => Buffer.from(Array.from(objects(), (o) => JSON.stringify(o)).join('\n')),
    json: () => Buffer.from(`[\n${Array.from(objects(), (o) => JSON.stringify(o)).join(',\n')}\n]`),
  };
  for (const format of ['csv', 'ndjson', 'json'] as const) {
    it(`parses ${N.toLocaleString()} ${format} rows`, async () => {
      const buf = files[format]();
      const chunks = Array.from({ length: Math.ceil(buf.length / 2 ** 20) }, (_, i) => buf.subarray(i * 2 ** 20, (i + 1) * 2 ** 20));
      const t0 = performance.now();
      let rows = 0;
      for await (const batch of readRecords(Readable.from(chunks), { format, start: initialPosition })) for (const r of batch) if (r.kind === 'row') rows++;
      const seconds = (performance.now() - t0) / 1000;
      console.log(`# ${format}: ${Math.round(rows / seconds).toLocaleString('en')} rows/s (${(buf.length / 2 ** 20 / seconds).toFixed(0)} MiB/s)`);
      assert.equal(rows, N);
    });
  }
});
