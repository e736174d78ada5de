import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressLine } from '../../src/cli/progress';
import { users } from '../helpers/datasets';
import { copyText, loadStatements } from '../../src/db/loader';

describe('COPY text encoding', () => {
  it('escapes what COPY would misread and writes NULL as \\N', () => {
    assert.equal(copyText('a\tb\nc\\d\re'), 'a\\tb\\nc\\\\d\\re');
    assert.equal(copyText(null), '\\N');
    assert.equal(copyText(undefined), '\\N');
    assert.equal(copyText(12.5), '12.5');
    assert.equal(copyText('plain'), 'plain');
  });
});

describe('load statements', () => {
  it('upserts only the columns the file has, on the dataset key', () => {
    const sql = loadStatements(users, ['email', 'name'], 'upsert');
    assert.match(sql.load, /ON CONFLICT \("email"\) DO UPDATE SET "name" = EXCLUDED\."name", updated_at = now\(\)/);
    assert.doesNotMatch(sql.load, /"role"/);
    assert.match(sql.copy, /^COPY "_bf_stage_users" \(_row, _line, "email", "name"\) FROM STDIN$/);
  });

  it('upsert leaves rows of earlier batches alone; skip-existing and insert do nothing on conflict', () => {
    assert.match(loadStatements(users, ['email', 'name'], 'upsert').load, /DO UPDATE SET .* WHERE NOT EXISTS \(SELECT first_row, last_row FROM import_batches b WHERE b\.xid = t\.xmin AND b\.execution_id = \$1\)/);
    assert.match(loadStatements(users, ['email', 'name'], 'skip-existing').load, /DO NOTHING RETURNING 1/);
    assert.match(loadStatements(users, ['email', 'name'], 'insert').load, /DO NOTHING RETURNING 1/);
  });
});

describe('progress line', () => {
  it('shows a bar from bytes, counts, rate and ETA', () => {
    const line = progressLine({
      step: 'importing',
      counts: { processed: 1500, succeeded: 1490, failed: 10, skipped: 0 },
      bytesRead: 512 * 1024,
      bytesTotal: 1024 * 1024,
      rowsPerSecond: 300,
      etaSeconds: 5,
      startedAt: '',
      updatedAt: '',
      cancelRequested: false,
    }, 10);
    assert.equal(line, '[#####.....]  50% importing: 1,500 rows (1,490 ok, 10 rejected, 0 skipped) 512.0 KiB/1.0 MiB 300 rows/s eta 5s');
  });
});
