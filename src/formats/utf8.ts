import { isUtf8 } from 'node:buffer';

/** Offsets (within buf) of the bytes in [from, to) that are not part of a valid UTF-8 sequence. */
export function invalidUtf8Offsets(buf: Uint8Array, from = 0, to = buf.length): number[] {
  const bad: number[] = [];
  let i = from;
  while (i < to) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let ok = len > 0 && i + len <= to;
    if (ok) {
      // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
      const b1 = buf[i + 1]!;
      const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
      const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
      ok = b1 >= lo && b1 <= hi;
      for (let k = 2; ok && k < len; k++) ok = (buf[i + k]! & 0xc0) === 0x80;
    }
    if (ok) i += len;
    else bad.push(i++);
  }
  return bad;
}

/** Length of a multi-byte sequence cut off by the end of buf (0 if the end is a boundary). */
function cutSequenceLength(buf: Uint8Array): number {
  for (let back = 1; back <= Math.min(4, buf.length); back++) {
    const b = buf[buf.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/**
 * Watches a byte stream for invalid UTF-8, so a reader can reject exactly the records that hold
 * such bytes (decoding would silently turn them into U+FFFD). Valid input costs one native check
 * per chunk; only a chunk that fails is examined byte by byte. Chunks must be fed in file order,
 * before the records in them are asked about, and records asked about in file order.
 */
export class Utf8Checker {
  /** Invalid bytes seen and not yet passed, in file order, each as offset * 256 + byte value. */
  private bad: number[] = [];
  private head = 0;
  /** The start of a sequence the previous chunk cut off, and its file offset. */
  private carry: Buffer | undefined;
  private carryAt = 0;

  /** Notes the invalid bytes of `chunk`, which starts at file offset `at`. */
  feed(chunk: Buffer, at: number): void {
    let data = chunk;
    let dataAt = at;
    if (this.carry) {
      data = Buffer.concat([this.carry, chunk]);
      dataAt = this.carryAt;
      this.carry = undefined;
    }
    const cut = data.length - cutSequenceLength(data);
    if (cut < data.length) {
      this.carry = Buffer.from(data.subarray(cut)); // at most 3 bytes: copied so the chunk is not kept
      this.carryAt = dataAt + cut;
    }
    this.check(data, cut, dataAt);
  }

  /** The input has ended: a sequence still cut off is invalid. */
  finish(): void {
    if (this.carry) this.check(this.carry, this.carry.length, this.carryAt);
    this.carry = undefined;
  }

  private check(data: Buffer, to: number, at: number): void {
    if (to === 0 || isUtf8(to === data.length ? data : data.subarray(0, to))) return;
    if (this.head === this.bad.length) {
      this.bad.length = 0;
      this.head = 0;
    }
    for (const offset of invalidUtf8Offsets(data, 0, to)) this.bad.push((at + offset) * 256 + data[offset]!);
  }

  /**
   * The first invalid byte in [from, to) of the file, as offset * 256 + byte value, or -1. Bytes
   * before `from` are forgotten.
   */
  firstInvalid(from: number, to: number): number {
    const { bad } = this;
    if (this.head === bad.length) return -1; // the common case: nothing invalid pending
    const lo = from * 256;
    while (this.head < bad.length && bad[this.head]! < lo) this.head++;
    if (this.head > 1024 && this.head * 2 > bad.length) {
      bad.splice(0, this.head);
      this.head = 0;
    }
    const first = bad[this.head];
    return first !== undefined && first < to * 256 ? first : -1;
  }
}

/** Which byte is wrong, given firstInvalid's answer, and the likely cause. */
export function describeInvalidUtf8(found: number): string {
  const offset = Math.floor(found / 256);
  const byte = (found % 256).toString(16).toUpperCase().padStart(2, '0');
  return `byte 0x${byte} at byte offset ${offset} is not part of a UTF-8 character (is the file in another encoding, such as Windows-1252 or Latin-1? save it as UTF-8)`;
}

/** What an INVALID_UTF8 record says. */
export const invalidUtf8Message = (found: number) => `the record is not valid UTF-8: ${describeInvalidUtf8(found)}`;
