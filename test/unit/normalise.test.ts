import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { col } from '../../src/datasets';
import { UNDECIDED } from '../../src/datasets/dataset';
import { compileNormalisers, type Normaliser } from '../../src/datasets/normalise';

const run = (steps: Normaliser[], value: string) => compileNormalisers(steps)!(value);

describe('normalisers', () => {
  it('trim, collapse spaces and case', () => {
    assert.equal(run(['trim'], '  Ada Lovelace \t'), 'Ada Lovelace');
    assert.equal(run(['collapse_spaces'], '  Ada \t  King   Lovelace '), 'Ada King Lovelace');
    assert.equal(run(['lower'], 'ÉLODIE'), 'élodie');
    assert.equal(run(['upper'], 'gb-wls'), 'GB-WLS');
    assert.equal(run(['collapse_spaces', 'title'], "  o'neil-SMITH  van   der berg "), "O'Neil-Smith Van Der Berg");
  });

  it('phone numbers in many styles to E.164, national ones read in the declared region', () => {
    const gb: Normaliser[] = [{ phone: 'GB' }];
    for (const written of ['020 7946 0958', '(020) 7946 0958', '020-7946-0958', '+44 20 7946 0958', '0044 20 7946 0958', '+442079460958', ' 02079460958 ']) {
      assert.equal(run(gb, written), '+442079460958', written);
    }
    assert.equal(run(gb, '07911 123456'), '+447911123456');
    assert.equal(run([{ phone: 'US' }], '(415) 555-2671'), '+14155552671');
    assert.equal(run(gb, '+1 415 555 2671'), '+14155552671', 'an international number keeps its country');
    assert.deepEqual(run(gb, '12345'), { failure: 'must be a phone number (national numbers are read as GB)' });
    assert.deepEqual(run(['phone'], '020 7946 0958'), { failure: 'must be a phone number with its country code (+44 …)' });
    assert.equal(run(['phone'], '+33 1 23 45 67 89'), '+33123456789');
  });

  it('dates in declared formats to ISO; other values pass through for validation to refuse', () => {
    const steps: Normaliser[] = [{ date: ['DD/MM/YYYY', 'D MMM YYYY', 'YYYY.MM.DD'] }];
    assert.equal(run(steps, '31/12/2023'), '2023-12-31');
    assert.equal(run(steps, '5 Jan 2024'), '2024-01-05');
    assert.equal(run(steps, '29 February 2024'), '2024-02-29');
    assert.equal(run(steps, '2024.07.14'), '2024-07-14');
    assert.equal(run(steps, '2024-07-14'), '2024-07-14', 'ISO passes through');
    assert.equal(run(steps, '31/02/2024'), '31/02/2024', 'a day that does not exist is left for validation');
    assert.equal(run(steps, '12/31/2023'), '12/31/2023');
    assert.equal(run([{ date: ['D/M/YYYY HH:mm'] }], '5/1/2024 09:30'), '2024-01-05T09:30:00');
  });

  it('decimal comma, thousands separators and yes/no', () => {
    assert.equal(run(['decimal_comma'], '1.234,56'), '1234.56');
    assert.equal(run(['decimal_comma'], '12,5'), '12.5');
    assert.equal(run(['decimal_comma'], '1 234 567,8'), '1234567.8');
    assert.equal(run(['decimal_comma'], '-0,25'), '-0.25');
    assert.equal(run(['decimal_comma'], '1,2,3'), '1,2,3');
    assert.equal(run(['thousands'], '1,234,567'), '1234567');
    assert.equal(run(['thousands'], '1,234.50'), '1234.50');
    assert.equal(run(['thousands'], '12,34'), '12,34');
    for (const [v, b] of [['yes', 'true'], ['Y', 'true'], ['1', 'true'], ['on', 'true'], ['No', 'false'], ['n', 'false'], ['0', 'false'], ['OFF', 'false'], ['maybe', 'maybe']]) assert.equal(run(['yes_no'], v!), b);
  });

  it('run before a column validates: the schema and the quick check give the same normal form', () => {
    const phone = col.text({ description: 'phone', normalise: [{ phone: 'GB' }] });
    assert.equal(phone.schema.parse('020 7946 0958'), '+442079460958');
    assert.equal(phone.quick!('020 7946 0958'), '+442079460958');
    assert.equal(phone.schema.safeParse('not a phone').error?.issues[0]?.message, 'must be a phone number (national numbers are read as GB)');
    assert.equal(phone.quick!('not a phone'), UNDECIDED);

    const day = col.date({ description: 'day', normalise: [{ date: ['DD/MM/YYYY'] }] });
    assert.equal(day.schema.parse('31/12/2023'), '2023-12-31');
    assert.equal(day.quick!('31/12/2023'), '2023-12-31');
    assert.equal(day.schema.safeParse('12/31/2023').error?.issues[0]?.message, 'must be a date as YYYY-MM-DD or DD/MM/YYYY');

    const price = col.number({ sql: 'numeric', description: 'price', normalise: ['decimal_comma'] });
    assert.equal(price.schema.parse('1.234,56'), 1234.56);
    const flag = col.boolean({ description: 'flag', normalise: ['yes_no'] });
    assert.equal(flag.schema.parse('Yes'), true);
    assert.equal(flag.quick!('no'), false);
    assert.equal(flag.schema.safeParse('maybe').error?.issues[0]?.message, 'must be true or false');
    const name = col.text({ required: true, description: 'name', normalise: ['collapse_spaces', 'title'] });
    assert.equal(name.quick!('  ada   LOVELACE '), 'Ada Lovelace');
    assert.equal(name.schema.safeParse('   ').error?.issues[0]?.message, 'required', 'blank after normalising is missing');
  });
});
