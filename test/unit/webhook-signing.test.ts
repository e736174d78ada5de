import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newWebhookSecret, signWebhook, verifyWebhook, webhookHeaders } from '../../src/notifications/signing';

// The Standard Webhooks specification's published test vector.
const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const timestamp = 1614265330;
const body = '{"test": 2432232314}';
const at = new Date(timestamp * 1000);

describe('webhook signing (Standard Webhooks)', () => {
  it('reproduces the specification test vector', () => {
    assert.equal(signWebhook(secret, id, timestamp, body), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('puts id, timestamp and signature in the three headers', () => {
    assert.deepEqual(webhookHeaders(secret, id, body, at), {
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('verifies a delivery, and refuses a changed body, another id, another secret or an old timestamp', () => {
    const h = { id, timestamp: String(timestamp), signature: signWebhook(secret, id, timestamp, body) };
    assert.equal(verifyWebhook(secret, h, body, { now: at }), true);
    assert.equal(verifyWebhook(secret, h, body.replace('2', '3'), { now: at }), false);
    assert.equal(verifyWebhook(secret, { ...h, id: 'msg_other' }, body, { now: at }), false);
    assert.equal(verifyWebhook(newWebhookSecret(), h, body, { now: at }), false);
    assert.equal(verifyWebhook(secret, h, body, { now: new Date((timestamp + 301) * 1000) }), false);
  });

  it('accepts any of several signatures (key rotation)', () => {
    const h = { id, timestamp: String(timestamp), signature: `v1,bm90IGl0 ${signWebhook(secret, id, timestamp, body)}` };
    assert.equal(verifyWebhook(secret, h, body, { now: at }), true);
  });

  it('makes secrets in the whsec_ form with a 32-byte key', () => {
    const s = newWebhookSecret();
    assert.match(s, /^whsec_[A-Za-z0-9+/]+=*$/);
    assert.equal(Buffer.from(s.slice(6), 'base64').length, 32);
  });
});
