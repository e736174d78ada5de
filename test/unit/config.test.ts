import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, requireDatabaseUrl, shippedDatasetsDir, shippedSchedulesFile } from '../../src/config';

describe('config', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    assert.equal(c.temporal.address, 'localhost:7233');
    assert.equal(c.api.port, 3000);
    assert.equal(c.s3, undefined);
    assert.equal(c.parallelBatches, 2);
    assert.throws(() => requireDatabaseUrl(c), /DATABASE_URL: required/);
  });

  it('names each bad variable', () => {
    assert.throws(() => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', S3_ENDPOINT: 'not a url', BATCHFLOW_PARALLEL_BATCHES: '0' }), (err: Error) => {
      assert.match(err.message, /PORT: /);
      assert.match(err.message, /BATCHFLOW_PARALLEL_BATCHES: /);
      assert.match(err.message, /DATABASE_URL: must be a postgres:\/\/ URL/);
      assert.match(err.message, /S3_ENDPOINT: /);
      return true;
    });
  });

  it('configures S3 from the environment', () => {
    const c = loadConfig({ S3_BUCKET: 'b', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's' });
    assert.deepEqual(c.s3, { bucket: 'b', allowedBuckets: ['b'], endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', credentials: { accessKeyId: 'k', secretAccessKey: 's' }, forcePathStyle: true });
  });

  it('reads dataset declarations from the shipped directory, or from BATCHFLOW_DATASETS', () => {
    assert.deepEqual(loadConfig({}).datasetDirs, [shippedDatasetsDir]);
    assert.deepEqual(loadConfig({ BATCHFLOW_DATASETS: ['/etc/a', 'relative'].join(path.delimiter) }).datasetDirs, ['/etc/a', path.resolve('relative')]);
  });
});

describe('config: schedules file', () => {
  it('is the shipped file by default, another path when given, and none with off', () => {
    assert.equal(loadConfig({}).schedulesFile, shippedSchedulesFile);
    assert.equal(loadConfig({ BATCHFLOW_SCHEDULES: 'ops/schedules.yaml' }).schedulesFile, path.resolve('ops/schedules.yaml'));
    assert.equal(loadConfig({ BATCHFLOW_SCHEDULES: 'off' }).schedulesFile, undefined);
  });
});
