import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import type { InspectReport } from '../../src/inspect/inspect';
import { createStorage } from '../../src/storage';
import { countUsers, importsDir, repoRoot, uniqueId, useStackWithWorker, writeFixture } from '../helpers/stack';

const exec = promisify(execFile);

const partnerFile = (p: string) =>
  ['Mail,Customer Name,Joined On,Newsletter', `${p}.1@example.com,Ada Lovelace,31/12/2023,yes`, `${p}.2@example.com,Grace Hopper,2024-02-29,no`, `${p}.3@example.com,Alan Turing,01/07/2024,yes`].join('\n');

describe('inspect', () => {
  const fixture = useStackWithWorker();

  it('POST /inspect reads an upload in the object store and maps it onto a dataset', async () => {
    const p = uniqueId('insp');
    const { store } = createStorage(fixture.stack.config);
    const { uri } = await store.put(`uploads/${p}`, Buffer.from(partnerFile(p)));
    const res = await fixture.stack.app.inject({ method: 'POST', url: '/inspect', payload: { source: uri, dataset: 'users' } });
    assert.equal(res.statusCode, 200, res.body);
    const report = res.json<InspectReport>();
    assert.equal(report.format, 'csv', 'sniffed: an upload has no extension');
    assert.deepEqual(report.columns.map((c) => [c.header, c.type]), [
      ['Mail', 'email'],
      ['Customer Name', 'text'],
      ['Joined On', 'date'],
      ['Newsletter', 'boolean'],
    ]);
    assert.deepEqual(report.dataset!.mapping, { Mail: 'email', 'Customer Name': 'name', 'Joined On': 'signup_date' });
    const signup = report.dataset!.columns.find((c) => c.column === 'signup_date')!;
    assert.deepEqual([signup.status, signup.failing, signup.suggest], ['fails', 2, [{ date: ['D/M/YYYY'] }]]);
  });

  it('says what is wrong with the request: an unknown dataset, a missing file, an unreadable one', async () => {
    const post = (payload: object) => fixture.stack.app.inject({ method: 'POST', url: '/inspect', payload });
    const unknown = await post({ source: await writeFixture('x.csv', 'a\n1\n'), dataset: 'nope' });
    assert.deepEqual([unknown.statusCode, unknown.json<{ field: string }>().field], [400, 'dataset']);
    const missing = await post({ source: path.join(importsDir(), 'does-not-exist.csv') });
    assert.deepEqual([missing.statusCode, missing.json<{ error: string }>().error], [404, 'SOURCE_NOT_FOUND']);
    const empty = await post({ source: await writeFixture('empty.csv', '') });
    assert.deepEqual([empty.statusCode, empty.json<{ error: string }>().error], [400, 'MALFORMED_FILE']);
  });

  it('the CLI saves the mapping, and an import with it loads the file', async () => {
    const p = uniqueId('inspcli');
    const file = await writeFixture('partner.csv', partnerFile(p).replace('31/12/2023', '2023-12-31').replace('01/07/2024', '2024-07-01'));
    const mapping = path.join(path.dirname(file), `${p}-mapping.json`);
    await fixture.stack.app.listen({ port: 0, host: '127.0.0.1' });
    const address = fixture.stack.app.server.address() as { port: number };
    const env = { ...process.env, BATCHFLOW_API_URL: `http://127.0.0.1:${address.port}` };
    const cli = (...args: string[]) => exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: repoRoot, env });

    const inspected = await cli('inspect', file, '--dataset', 'users', '--save-mapping', mapping);
    // The file is uploaded, as an import's is, and inspected in the object store.
    assert.match(inspected.stderr, /uploaded .*partner\.csv \(\d+ bytes, sha256 [0-9a-f]{64}\) as store:\/\/uploads\/.*partner\.csv/);
    assert.match(inspected.stdout, /^store:\/\/uploads\/\S+partner\.csv: csv/);
    assert.match(inspected.stdout, /^ {2}Joined On: date \[YYYY-MM-DD\] 100% sure, 0% blank/m);
    assert.match(inspected.stdout, /^ {2}ok {6}signup_date from "Joined On"$/m);
    assert.deepEqual(JSON.parse(await fs.readFile(mapping, 'utf8')), { Mail: 'email', 'Customer Name': 'name', 'Joined On': 'signup_date' });
    // --server-path: the API reads the path where it is, nothing is uploaded.
    const inPlace = await cli('inspect', file, '--server-path');
    assert.doesNotMatch(inPlace.stderr, /uploaded/);
    assert.ok(inPlace.stdout.startsWith(`${file}: csv`), inPlace.stdout);

    await cli('import', file, '--dataset', 'users', '--mapping', mapping);
    assert.equal(await countUsers(fixture.stack.pool, p), 3);
  });
});
