import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspectRequestSchema } from '../../src/inspect/inspect';
import { jobKinds } from '../../src/jobs';
import { issuePath, suggestKey } from '../../src/jobs/strict';
import { shipped } from '../helpers/datasets';

describe('strict params', () => {
  it('suggests the key that was meant: case, separators, one or two edits', () => {
    const known = ['dryRun', 'requiresConfirmation', 'maxRecords', 'batchSize', 'set', 'where'];
    assert.equal(suggestKey('dryrun', known), 'dryRun');
    assert.equal(suggestKey('DRY_RUN', known), 'dryRun');
    assert.equal(suggestKey('batch-size', known), 'batchSize');
    assert.equal(suggestKey('requireConfirmation', known), 'requiresConfirmation');
    assert.equal(suggestKey('maxRecord', known), 'maxRecords');
    assert.equal(suggestKey('wehre', known), 'where');
    assert.equal(suggestKey('sett', known), 'set');
    assert.equal(suggestKey('colour', known), undefined);
    assert.equal(suggestKey('x'.repeat(1000), known), undefined);
  });

  const users = { dataset: 'users', where: { field: 'id', op: 'not_null' }, set: { status: 'active' } };
  const cases: [kind: keyof typeof jobKinds, params: object, field: string, suggestion: string | undefined][] = [
    ['import', { source: '/x.csv', dataset: 'users', batch_size: 10 }, 'batch_size', 'batchSize'],
    ['import', { source: '/x.csv', dataset: 'users', maxerrors: 1 }, 'maxerrors', 'maxErrors'],
    ['bulk-update', { ...users, dryrun: true }, 'dryrun', 'dryRun'],
    ['bulk-update', { ...users, requireConfirmation: true }, 'requireConfirmation', 'requiresConfirmation'],
    ['bulk-update', { ...users, maxrecords: 5 }, 'maxrecords', 'maxRecords'],
    ['bulk-update', { ...users, preconditions: { minmatches: 1 } }, 'preconditions.minmatches', 'minMatches'],
    ['cleanup', { rules: ['expired_sessions'], dry_run: true }, 'dry_run', 'dryRun'],
    ['cleanup', { rules: [{ name: 'x', dataset: 'users', where: { field: 'id', op: 'not_null' }, batchsize: 10 }] }, 'rules.0.batchsize', 'batchSize'],
    ['custom', { step: 'validate_data', dataset: 'users', batchsize: 10 }, 'batchsize', 'batchSize'],
    ['pipeline', { steps: [{ name: 'a', kind: 'cleanup', params: {} }], maxparallel: 1 }, 'maxparallel', 'maxParallel'],
    ['pipeline', { steps: [{ name: 'a', kind: 'cleanup', params: {}, depends_on: [] }] }, 'steps.0.depends_on', 'dependsOn'],
    ['pipeline', { steps: [{ name: 'a', kind: 'bulk-update', params: { ...users, dryrun: true } }] }, 'steps.0.params.dryrun', 'dryRun'],
    ['pipeline', { steps: [{ name: 'a', kind: 'import', params: { source: '/x.csv', dataset: 'users', unknownThing: 1 } }] }, 'steps.0.params.unknownThing', undefined],
    ['dedupe', { dataset: 'users', exact: ['email'], dryrun: true }, 'dryrun', 'dryRun'],
    ['dedupe', { dataset: 'users', similar: { fields: ['name'], treshold: 0.9 }, blockBy: [['name']] }, 'similar.treshold', 'threshold'],
    ['dedupe', { dataset: 'users', exact: ['email'], blockBy: [[{ field: 'name', prefix: 3, eachword: true }]] }, 'blockBy.0.0.eachword', 'eachWord'],
    ['dedupe', { dataset: 'users', exact: ['email'], merge: { keep: { by: 'id', ordr: 'desc' } } }, 'merge.keep.ordr', 'order'],
  ];
  for (const [kind, params, field, suggestion] of cases) {
    it(`${kind}: ${field} is refused${suggestion ? `, suggesting ${suggestion}` : ''}`, () => {
      const parsed = jobKinds[kind].schema.safeParse(params);
      assert.ok(!parsed.success, 'refused');
      const issue = parsed.error.issues.find((i) => issuePath(i).join('.') === field);
      assert.ok(issue, `an issue at ${field}: ${JSON.stringify(parsed.error.issues)}`);
      if (suggestion) assert.match(issue.message, new RegExp(`^Unrecognized key: "${field.split('.').pop()}"; did you mean "${suggestion}"\\?$`));
      else assert.match(issue.message, new RegExp(`^Unrecognized key: "${field.split('.').pop()}" \\(known: `));
    });
  }

  it('the inspect body refuses a misspelt key, suggesting the one meant', () => {
    const parsed = inspectRequestSchema.safeParse({ source: '/x.csv', dataSet: 'users' });
    assert.equal(parsed.error?.issues[0]?.message, 'Unrecognized key: "dataSet"; did you mean "dataset"?');
  });

  it('filters and set name their unknown keys, columns and operators, with a suggestion', () => {
    // Columns are the declared dataset's: the kind's check finds them, as the API and the first activity run it.
    const kind = jobKinds['bulk-update'];
    const params = kind.schema.parse({ dataset: 'users', where: { and: [{ fiel: 'status', op: 'eq', value: 'x' }, { field: 'stauts', op: 'eq', value: 'active' }, { field: 'status', op: 'not_nul' }] }, set: { rol: 'admin' } });
    const byField = Object.fromEntries(kind.check(params, shipped).map((i) => [i.path.join('.'), i.message]));
    assert.match(byField['where.and.0.fiel']!, /unknown key.*did you mean "field"\?/);
    assert.match(byField['where.and.1.field']!, /must be a column of users; did you mean "status"\?/);
    assert.match(byField['where.and.2.op']!, /did you mean "not_null"\?/);
    assert.match(byField['set.rol']!, /did you mean "role"\?/);
  });

  it('parsed params (defaults filled in) parse again: workflows re-check their input', () => {
    for (const [kind, params] of [['bulk-update', users], ['cleanup', {}], ['import', { source: '/x.csv', dataset: 'users' }]] as const) {
      const once = jobKinds[kind].schema.parse(params);
      assert.deepEqual(jobKinds[kind].schema.parse(once), once);
    }
  });
});
