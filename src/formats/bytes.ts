/**
 * Input chunks are worked through in slices of at most this many bytes, and the records of one
 * slice come out as one array: memory stays bounded whatever size of chunk the source delivers.
 */
export const SLICE_BYTES = 64 * 1024;

/** A chunk of the input as a Buffer (no copy). */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`readRecords needs the file's bytes (Buffer or Uint8Array chunks), got ${typeof chunk}: do not set an encoding on the stream`);
}

/** The input's chunks cut into slices of at most SLICE_BYTES, in order (no copies). */
export async function* slices(input: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  for await (const piece of input) {
    const chunk = toBuffer(piece);
    if (chunk.length <= SLICE_BYTES) {
      if (chunk.length > 0) yield chunk;
      continue;
    }
    for (let from = 0; from < chunk.length; from += SLICE_BYTES) yield chunk.subarray(from, from + SLICE_BYTES);
  }
}

/** "16 MiB", "1 KiB", "1000 bytes". */
export const formatSize = (bytes: number) =>
  bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;

/** A byte as text for a message: "x", or 0xFF when it is not printable ASCII. */
export const showByte = (b: number) => (b >= 0x20 && b < 0x7f ? `"${String.fromCharCode(b)}"` : `byte 0x${b.toString(16).toUpperCase().padStart(2, '0')}`);
