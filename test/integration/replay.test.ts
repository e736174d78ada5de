import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import type { AuditEntry } from '../../src/api/audit';
import { countUsers, getRun, repoRoot, startRun, uniqueId, useStackWithWorker, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/** The rejected rows of a run, as the API gives them to download. */
async function rejected(stack: Stack, runId: string): Promise<{ type: string; body: string }> {
  const res = await stack.app.inject({ method: 'GET', url: `/runs/${runId}/rejected` });
  assert.equal(res.statusCode, 200, res.body);
  return { type: String(res.headers['content-type']), body: res.body };
}

/** Replays with the admin key, or with `key`. */
async function replay(stack: Stack, runId: string, source: string, key?: string) {
  const request = { method: 'POST' as const, url: `/runs/${runId}/replay`, payload: { source } };
  const res = key ? await stack.injectAs(key, request) : await stack.app.inject(request);
  assert.equal(res.statusCode, 202, res.body);
  return res.json<{ runId: string; replayOf: string }>();
}

describe('quarantine and replay', () => {
  const fixture = useStackWithWorker();

  it("downloads a CSV import's rejected rows in its own columns and delimiter; a replay takes only the fixed rows and the first run counts them", async () => {
    const p = uniqueId('rp');
    const csv = [
      'Email;Name;Role;Status;Notes',
      `${p}.1@example.com;One;user;active;kept`,
      `not-an-email;Two;user;active;fix my email`,
      `${p}.3@example.com;Three;superuser;active;fix my role`,
      `${p}.4@example.com;Four;admin;inactive;kept`,
      `${p}.5@example.com;"Five; with a semicolon";root;active;left broken`,
      `${p}.1@example.com;One again;user;active;a duplicate`,
    ].join('\n');
    const first = await startRun(fixture.stack, 'import', { source: await writeFixture('first.csv', csv), dataset: 'users', delimiter: ';' });
    const run = await waitForRun(fixture.stack, first);
    assert.equal(run.status, 'partial');
    assert.equal(run.result!.counts.failed, 4);
    const { rows: before } = await fixture.stack.pool.query<{ updated_at: Date }>('SELECT updated_at FROM users WHERE email = $1', [`${p}.1@example.com`]);

    const file = await rejected(fixture.stack, first);
    assert.equal(file.type, 'text/csv; charset=utf-8');
    assert.equal(
      file.body,
      [
        '_row;Email;Name;Role;Status;Notes',
        '2;not-an-email;Two;user;active;fix my email',
        `3;${p}.3@example.com;Three;superuser;active;fix my role`,
        `5;${p}.5@example.com;"Five; with a semicolon";root;active;left broken`,
        // A repeat of row 1, refused with the row as it was read.
        `6;${p}.1@example.com;One again;user;active;a duplicate`,
        '',
      ].join('\n'),
    );

    // The person fixes two rows in a spreadsheet, leaves one broken, and drops the duplicate.
    const fixed = [
      '_row;Email;Name;Role;Status;Notes',
      `2;${p}.2@example.com;Two;user;active;fixed`,
      `3;${p}.3@example.com;Three;moderator;active;fixed`,
      `5;${p}.5@example.com;"Five; with a semicolon";root;active;still broken`,
    ].join('\n');
    // Started by another key: the replay is that key's run, audited as a start.
    const fixer = uniqueId('fixer');
    const again = await replay(fixture.stack, first, await writeFixture('fixed.csv', fixed), await fixture.stack.createKey(fixer, ['read', 'run']));
    assert.equal(again.replayOf, first);
    const replayed = await waitForRun(fixture.stack, again.runId);
    assert.equal(replayed.status, 'partial');
    assert.equal(replayed.startedBy, fixer);
    const audit = (await fixture.stack.app.inject({ method: 'GET', url: `/audit?runId=${again.runId}` })).json<{ entries: AuditEntry[] }>().entries;
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor, e.details]),
      [['start', fixer, { kind: 'import', replayOf: first }]],
    );
    assert.deepEqual([replayed.result!.counts.processed, replayed.result!.counts.succeeded, replayed.result!.counts.failed], [3, 2, 1]);
    assert.deepEqual(replayed.replays?.replayOf, first);

    assert.equal(await countUsers(fixture.stack.pool, p), 4);
    const { rows: after } = await fixture.stack.pool.query<{ updated_at: Date }>('SELECT updated_at FROM users WHERE email = $1', [`${p}.1@example.com`]);
    assert.deepEqual(after, before, 'rows the first run accepted are not touched again');

    const view = await getRun(fixture.stack, first);
    assert.deepEqual(view.replays, { rejectedRows: 4, acceptedLater: 2, runs: [again.runId] });

    // The replay's own rejected row goes out with the first run's row number, so a second replay credits the first run.
    const still = await rejected(fixture.stack, again.runId);
    assert.equal(still.body.split('\n')[1], `5;${p}.5@example.com;"Five; with a semicolon";root;active;still broken`);
    const last = await replay(fixture.stack, again.runId, await writeFixture('fixed-2.csv', still.body.replace(';root;', ';admin;')));
    assert.equal(last.replayOf, first);
    assert.equal((await waitForRun(fixture.stack, last.runId)).status, 'success');
    assert.deepEqual((await getRun(fixture.stack, first)).replays, { rejectedRows: 4, acceptedLater: 3, runs: [again.runId, last.runId] });
  });

  it('gives NDJSON rejects back as NDJSON records, unreadable lines as they were', async () => {
    const p = uniqueId('rpn');
    const ndjson = [JSON.stringify({ email: `${p}.1@example.com`, name: 'One' }), '{"email": broken', JSON.stringify({ email: `${p}.3@example.com`, name: '' })].join('\n');
    const first = await startRun(fixture.stack, 'import', { source: await writeFixture('first.ndjson', ndjson), dataset: 'users' });
    assert.equal((await waitForRun(fixture.stack, first)).result!.counts.failed, 2);
    const file = await rejected(fixture.stack, first);
    assert.equal(file.type, 'application/x-ndjson');
    const [broken, record, end] = file.body.split('\n');
    assert.equal(broken, '{"email": broken');
    assert.deepEqual(JSON.parse(record!), { _row: 3, email: `${p}.3@example.com`, name: '' });
    assert.equal(end, '');

    const again = await replay(fixture.stack, first, await writeFixture('fixed.ndjson', JSON.stringify({ _row: 3, email: `${p}.3@example.com`, name: 'Three' })));
    assert.equal((await waitForRun(fixture.stack, again.runId)).status, 'success');
    assert.equal((await getRun(fixture.stack, first)).replays?.acceptedLater, 1);
  });

  it('gives JSON array rejects back as a JSON array', async () => {
    const p = uniqueId('rpj');
    const json = JSON.stringify([{ email: `${p}.1@example.com`, name: 'One' }, { email: 'bad', name: 'Two' }]);
    const first = await startRun(fixture.stack, 'import', { source: await writeFixture('first.json', json), dataset: 'users' });
    assert.equal((await waitForRun(fixture.stack, first)).result!.counts.failed, 1);
    const file = await rejected(fixture.stack, first);
    assert.equal(file.type, 'application/json');
    assert.deepEqual(JSON.parse(file.body), [{ _row: 2, email: 'bad', name: 'Two' }]);
  });

  it('the CLI downloads the rejected rows, and replay uploads the fixed file', async () => {
    const p = uniqueId('rpcli');
    const csv = ['email,name', `${p}.1@example.com,One`, `not-an-email,Two`].join('\n');
    const first = await startRun(fixture.stack, 'import', { source: await writeFixture('cli-first.csv', csv), dataset: 'users' });
    assert.equal((await waitForRun(fixture.stack, first)).result!.counts.failed, 1);
    await fixture.stack.app.listen({ port: 0, host: '127.0.0.1' });
    const env = { ...process.env, BATCHFLOW_API_URL: `http://127.0.0.1:${(fixture.stack.app.server.address() as { port: number }).port}` };
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: repoRoot, env });

    const file = path.join(path.dirname(await writeFixture('marker', '')), `${p}-fix-me.csv`);
    await cli('rejected', first, '--out', file);
    assert.equal(await fs.readFile(file, 'utf8'), '_row,email,name\n2,not-an-email,Two\n');
    await fs.writeFile(file, `_row,email,name\n2,${p}.2@example.com,Two\n`);
    const replayed = await cli('replay', first, file);
    assert.match(replayed.stderr, /uploaded .*-fix-me\.csv \(\d+ bytes, sha256 [0-9a-f]{64}\) as store:\/\/uploads\/.*-fix-me\.csv/);
    assert.match(replayed.stderr, new RegExp(`started replay \\S+ of ${first}`));
    assert.equal(await countUsers(fixture.stack.pool, p), 2);
    assert.equal((await getRun(fixture.stack, first)).replays?.acceptedLater, 1);
  });

  it('refuses runs that are not imports', async () => {
    const runId = await startRun(fixture.stack, 'bulk-update', { dataset: 'users', where: { field: 'email', op: 'eq', value: 'nobody@example.com' }, set: { status: 'inactive' } });
    await waitForRun(fixture.stack, runId);
    const res = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${runId}/rejected` });
    assert.equal(res.statusCode, 409);
    assert.match(res.json<{ message: string }>().message, /only imports have input rows/);
  });
});
