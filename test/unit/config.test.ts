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
    assert.equal(c.maxAttempts, 25);
    assert.equal(c.runRetentionMs, 30 * 24 * 3600 * 1000);
    assert.deepEqual(c.log, { level: 'info', format: 'json' });
    assert.deepEqual(c.metrics, { host: '127.0.0.1', apiPort: 9464, workerPort: 9465, temporalPort: 9466 });
    assert.throws(() => requireDatabaseUrl(c), /DATABASE_URL: required/);
  });

  it('local import sources: one dedicated folder, $BATCHFLOW_DATA_DIR/imports, unless configured', () => {
    assert.deepEqual(loadConfig({ BATCHFLOW_DATA_DIR: '/srv/batchflow' }).localSourceDirs, ['/srv/batchflow/imports']);
    assert.deepEqual(loadConfig({ BATCHFLOW_LOCAL_SOURCE_DIRS: '/a:/b/' }).localSourceDirs, ['/a', '/b']);
  });

  it('s3:// import sources: the configured bucket, unless BATCHFLOW_S3_SOURCE_BUCKETS lists them', () => {
    assert.deepEqual(loadConfig({}).s3SourceBuckets, []);
    assert.deepEqual(loadConfig({ S3_BUCKET: 'store' }).s3SourceBuckets, ['store']);
    assert.deepEqual(loadConfig({ S3_BUCKET: 'store', BATCHFLOW_S3_SOURCE_BUCKETS: 'store, partner-drop' }).s3SourceBuckets, ['store', 'partner-drop']);
  });

  it('reads the retry bound, the run retention and the lock timeout', () => {
    const c = loadConfig({ BATCHFLOW_MAX_ATTEMPTS: '5', BATCHFLOW_RUN_RETENTION: '12h', BATCHFLOW_LOCK_TIMEOUT: '2m' });
    assert.deepEqual([c.maxAttempts, c.runRetentionMs, c.lockTimeoutMs], [5, 12 * 3600 * 1000, 120_000]);
    assert.equal(loadConfig({}).lockTimeoutMs, 30_000);
    assert.throws(() => loadConfig({ BATCHFLOW_RUN_RETENTION: 'a month' }), /BATCHFLOW_RUN_RETENTION: must be a duration/);
  });

  it('names each bad variable', () => {
    const bad = { PORT: 'eighty', DATABASE_URL: 'mysql://x', S3_ENDPOINT: 'not a url', BATCHFLOW_PARALLEL_BATCHES: '0', LOG_FORMAT: 'xml', BATCHFLOW_WORKER_METRICS_PORT: '70000' };
    assert.throws(() => loadConfig(bad), (err: Error) => {
      assert.match(err.message, /LOG_FORMAT: /);
      assert.match(err.message, /BATCHFLOW_WORKER_METRICS_PORT: /);
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

  it('reads the upstream origins cache refreshes may call, and only BATCHFLOW_SECRET_* as header values', () => {
    const c = loadConfig({ BATCHFLOW_UPSTREAM_ORIGINS: 'https://api.example.com, http://127.0.0.1:*', BATCHFLOW_SECRET_PRODUCT_API: 'Bearer s3cr3t', DATABASE_URL: 'postgres://u:pw@db/x' });
    assert.deepEqual(c.upstream.origins, [
      { protocol: 'https:', hostname: 'api.example.com', port: '443' },
      { protocol: 'http:', hostname: '127.0.0.1', port: '*' },
    ]);
    assert.deepEqual([...c.upstream.secrets], [['BATCHFLOW_SECRET_PRODUCT_API', 'Bearer s3cr3t']]);
    assert.ok(!JSON.stringify(c).includes('s3cr3t'), 'printing the config shows no secret');
    assert.deepEqual(loadConfig({}).upstream.origins, []);
    assert.throws(() => loadConfig({ BATCHFLOW_UPSTREAM_ORIGINS: 'api.example.com' }), /BATCHFLOW_UPSTREAM_ORIGINS: "api.example.com" is not an origin such as https:\/\/api.example.com/);
  });
});

describe('config: schedules file', () => {
  it('is the shipped file by default, another path when given, and none with off', () => {
    assert.equal(loadConfig({}).schedulesFile, shippedSchedulesFile);
    assert.equal(loadConfig({ BATCHFLOW_SCHEDULES: 'ops/schedules.yaml' }).schedulesFile, path.resolve('ops/schedules.yaml'));
    assert.equal(loadConfig({ BATCHFLOW_SCHEDULES: 'off' }).schedulesFile, undefined);
  });
});

describe('config: API keys, approval, rate limit, uploads', () => {
  it('defaults: four eyes, 600 requests a minute, 1 GiB uploads, the local key in the data directory', () => {
    const c = loadConfig({ BATCHFLOW_DATA_DIR: '/srv/bf' });
    assert.deepEqual([c.api.key, c.api.allowSelfApproval, c.api.rateLimitPerMinute, c.api.uploadMaxBytes], [undefined, false, 600, 1024 ** 3]);
    assert.equal(c.localKeyFile, '/srv/bf/admin-api-key');
  });

  it('reads each one, and names a bad one', () => {
    const c = loadConfig({ BATCHFLOW_API_KEY: 'bf_x', BATCHFLOW_ALLOW_SELF_APPROVAL: 'true', BATCHFLOW_RATE_LIMIT: '0', BATCHFLOW_UPLOAD_MAX_BYTES: '1000' });
    assert.deepEqual([c.api.key, c.api.allowSelfApproval, c.api.rateLimitPerMinute, c.api.uploadMaxBytes], ['bf_x', true, 0, 1000]);
    assert.throws(() => loadConfig({ BATCHFLOW_ALLOW_SELF_APPROVAL: 'yes', BATCHFLOW_RATE_LIMIT: '-1', BATCHFLOW_UPLOAD_MAX_BYTES: 'big' }), (err: Error) => {
      assert.match(err.message, /BATCHFLOW_ALLOW_SELF_APPROVAL: /);
      assert.match(err.message, /BATCHFLOW_RATE_LIMIT: /);
      assert.match(err.message, /BATCHFLOW_UPLOAD_MAX_BYTES: /);
      return true;
    });
  });
});
