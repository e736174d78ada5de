import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capRaw, RAW_MAX_BYTES } from '../../src/db/queries';

describe("a row error's raw input", () => {
  it('is kept whole up to RAW_MAX_BYTES of JSON', () => {
    const raw = { email: 'a@example.com', name: 'n'.repeat(RAW_MAX_BYTES - 40) };
    assert.equal(capRaw(raw), raw);
    assert.equal(capRaw(null), null);
  });

  it('beyond that, is the start of its JSON, marked as cut, with the full size', () => {
    const raw = { name: 'é'.repeat(10_000) };
    const cut = capRaw(raw) as { cut: boolean; bytes: number; start: string };
    assert.equal(cut.cut, true);
    assert.equal(cut.bytes, Buffer.byteLength(JSON.stringify(raw)));
    assert.ok(Buffer.byteLength(cut.start) <= RAW_MAX_BYTES);
    assert.ok(cut.start.startsWith('{"name":"éé'));
    assert.doesNotMatch(cut.start, /\uFFFD/, 'cut on a character boundary');
  });
});
