import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { inspectSource, type InspectReport } from '../../src/inspect/inspect';
import type { SourceOpener } from '../../src/storage';
import { shipped } from '../helpers/datasets';

const memory = (text: string): SourceOpener => ({ open: () => Promise.resolve({ stream: Readable.from([Buffer.from(text)]), size: Buffer.byteLength(text) }) });

// A partner's file as it comes: every column in more than one style.
const messy = [
  'Customer ID;E-Mail;Full Name;Phone;Signed up;Balance;Active;Tier;Website;Last seen',
  '1;ada@example.com;Ada Lovelace;+44 20 7946 0958;2024-01-05;1.234,50;yes;gold;https://ada.example.com;2024-01-05T10:00:00Z',
  '2;grace@example.com;Grace  Hopper;020 7946 0959;05/02/2024;12,00;no;silver;https://grace.example.com;2024-01-06 11:30:00',
  '3;alan@example.com;Alan Turing;(020) 7946 0960;2024-03-01;3,50;Y;gold;http://alan.example.com;2024-01-07T09:00:00+01:00',
  '4;katherine@example.com;Katherine Johnson;020-7946-0961;31/12/2023;0,99;N;bronze;https://kj.example.com;2024-01-08T08:15:00Z',
  '5;BAD-EMAIL;Dorothy Vaughan;07911 123456;29/02/2024;1.000.000,25;1;silver;https://dv.example.com;2024-01-09T07:00:00Z',
  '6;mary@example.com;Mary Jackson;+447911123457;2024-02-29;7,10;0;gold;https://mj.example.com;',
  '7;annie@example.com;Annie Easley;;N/A;8,20;yes;bronze;https://ae.example.com;2024-01-11T12:00:00Z',
  '8;hedy@example.com; Hedy Lamarr;0113 496 0001;1/7/2024;9,30;no;silver;https://hl.example.com;2024-01-12T12:00:00Z',
  '9;joan@example.com;Joan Clarke;+44 113 496 0002;2024-07-14;10,40;yes;gold;https://jc.example.com;2024-01-13T12:00:00Z',
  '10;radia@example.com;Radia Perlman;0161 496 0000;14/07/2024;11,50;no;bronze;https://rp.example.com;2024-01-14T12:00:00Z',
].join('\n');

const byHeader = (r: InspectReport) => Object.fromEntries(r.columns.map((c) => [c.header, c]));

describe('inspect: type detection', () => {
  it('detects each column of a messy file, with formats, confidence, null rate and problems', async () => {
    const report = await inspectSource(memory(messy), shipped, { source: '/in/partner.csv', sampleRows: 1000, region: 'GB' });
    assert.deepEqual([report.format, report.delimiter, report.sampledRows, report.wholeFile], ['csv', ';', 10, true]);
    const c = byHeader(report);
    const summary = Object.fromEntries(report.columns.map((col) => [col.header, [col.type, col.confidence]]));
    assert.deepEqual(summary, {
      'Customer ID': ['integer', 1],
      'E-Mail': ['email', 0.9],
      'Full Name': ['text', 1],
      Phone: ['phone', 1],
      'Signed up': ['date', 1],
      Balance: ['decimal', 1],
      Active: ['boolean', 1],
      Tier: ['enum', 1],
      Website: ['url', 1],
      'Last seen': ['timestamp', 1],
    });
    assert.deepEqual(c['Signed up']!.formats, [
      { format: 'YYYY-MM-DD', count: 4 },
      { format: 'D/M/YYYY', count: 5 },
    ].sort((a, b) => b.count - a.count));
    assert.ok(c['Signed up']!.problems.includes('mixed date formats: D/M/YYYY (5), YYYY-MM-DD (4)'), c['Signed up']!.problems.join(' | '));
    assert.equal(c['Signed up']!.nullRate, 0.1);
    assert.deepEqual(c['Signed up']!.normalise, [{ date: ['D/M/YYYY'] }]);
    assert.match(c.Phone!.problems[0]!, /^phone numbers in 5 styles: /);
    assert.deepEqual(c.Phone!.normalise, [{ phone: 'GB' }]);
    assert.equal(c.Phone!.nullRate, 0.1);
    assert.deepEqual(c.Balance!.formats, [{ format: 'decimal comma', count: 10 }]);
    assert.deepEqual(c.Balance!.normalise, ['decimal_comma']);
    assert.match(c.Balance!.problems.join(' | '), /outlier.*1\.000\.000,25/);
    assert.deepEqual(c.Active!.normalise, ['yes_no']);
    assert.match(c.Active!.problems[0]!, /^booleans written 3 ways/);
    assert.deepEqual(c.Tier!.values, ['gold', 'silver', 'bronze']);
    assert.match(c['E-Mail']!.problems[0]!, /^1 value does not look like a email: "BAD-EMAIL"/);
    assert.deepEqual(c['Full Name']!.normalise, ['collapse_spaces']);
    assert.match(c['Last seen']!.problems[0]!, /^mixed timestamp formats/);
    assert.ok(c['Full Name']!.problems.includes('1 value has leading or trailing spaces'), c['Full Name']!.problems.join(' | '));
  });

  it('reads thousands separators and US dates, and says when day and month cannot be told apart', async () => {
    const csv = ['amount,when,count', '"1,234.50",01/05/2024,"1,200"', '"12,000.00",02/28/2024,"3,400,000"', '0.99,12/31/2023,12', '"1,000,000.00",03/04/2024,7'].join('\n');
    const c = byHeader(await inspectSource(memory(csv), shipped, { source: '/in/a.csv', sampleRows: 100 }));
    assert.deepEqual([c.amount!.type, c.amount!.normalise], ['decimal', ['thousands']]);
    assert.deepEqual([c.count!.type, c.count!.normalise], ['integer', ['thousands']]);
    assert.deepEqual([c.when!.type, c.when!.formats], ['date', [{ format: 'M/D/YYYY', count: 4 }]]);
    const codes = byHeader(await inspectSource(memory('code\n007\n012\n123\n'), shipped, { source: '/in/c.csv', sampleRows: 100 }));
    assert.deepEqual(codes.code!.problems, ['2 values have leading zeros, which a number drops: a code or identifier is text']);
    const ambiguous = byHeader(await inspectSource(memory('d\n01/02/2024\n03/04/2024\n'), shipped, { source: '/in/b.csv', sampleRows: 100 }));
    assert.deepEqual(ambiguous.d!.problems, ['no day is above 12: D/M/YYYY assumed, it may be M/D/YYYY']);
  });

  it('against a dataset: maps headers by alias, close name and type, and says which columns would fail and why', async () => {
    const report = await inspectSource(memory(messy), shipped, { source: '/in/partner.csv', sampleRows: 1000, dataset: 'users' });
    const d = report.dataset!;
    assert.deepEqual(d.mapping, { 'E-Mail': 'email', 'Full Name': 'name', 'Signed up': 'signup_date', 'Last seen': 'last_login_at' });
    const col = Object.fromEntries(d.columns.map((c) => [c.column, c]));
    assert.deepEqual([col.email!.status, col.email!.failing, col.email!.message, col.email!.examples], ['fails', 1, 'must be a valid email address', ['BAD-EMAIL']]);
    assert.deepEqual([col.signup_date!.status, col.signup_date!.failing, col.signup_date!.suggest], ['fails', 6, [{ date: ['D/M/YYYY'] }]]);
    assert.equal(col.last_login_at!.failing, 1, 'only "2024-01-06 11:30:00" lacks the T');
    assert.deepEqual([col.name!.status, col.role!.status], ['ok', 'absent']);
    assert.deepEqual(report.params, { source: '/in/partner.csv', format: 'csv', delimiter: ';', dataset: 'users', mapping: d.mapping });
    assert.ok(d.ignoredHeaders.includes('Tier'));
  });

  it('says when a required column has no header', async () => {
    const report = await inspectSource(memory('name\nAda\n'), shipped, { source: '/in/d.csv', sampleRows: 10, dataset: 'users' });
    const email = report.dataset!.columns.find((c) => c.column === 'email')!;
    assert.deepEqual([email.status, email.message], ['missing', 'required, and no header feeds it: add a mapping']);
  });

  it('sniffs NDJSON and JSON arrays, and counts repeated keys in the sample', async () => {
    const ndjson = '{"email":"a@example.com","name":"A"}\n{"email":"A@example.com","name":"B"}\n{"email":"c@example.com","name":"C"}\n';
    const report = await inspectSource(memory(ndjson), shipped, { source: 'store://uploads/x', sampleRows: 10, dataset: 'users' });
    assert.equal(report.format, 'ndjson');
    assert.equal(report.dataset!.duplicateKeys, 1);
    const json = await inspectSource(memory('[{"n": 1}, {"n": 2.5}]'), shipped, { source: 'store://uploads/y', sampleRows: 10 });
    assert.deepEqual([json.format, json.columns[0]!.type], ['json', 'decimal']);
  });
});
