import { z } from 'zod';

/**
 * Objects that refuse unknown keys, and say which known key a misspelt one was meant to be: a
 * typo in a safety flag (`dryrun` for `dryRun`) must never be dropped silently and run the real thing.
 */

/** Lower-case, without `_` and `-`: `batch_size`, `BatchSize` and `batchSize` compare equal. */
const fold = (key: string) => key.toLowerCase().replace(/[_-]/g, '');

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) between two short strings. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key a caller most likely meant: the same but for case, `_` or `-`, or one or two edits away. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  if (key.length > 100) return undefined;
  const folded = fold(key);
  const exact = known.find((k) => fold(k) === folded);
  if (exact) return exact;
  const allowed = folded.length <= 4 ? 1 : 2;
  let best: { key: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(folded, fold(k));
    if (d <= allowed && (!best || d < best.d)) best = { key: k, d };
  }
  return best?.key;
}

/** `unknown key` with, for a near miss, the key that was probably meant. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const meant = suggestKey(key, known);
  return meant ? `unknown key; did you mean "${meant}"?` : `unknown key (known: ${known.join(', ')})`;
}

/**
 * The message of a zod `unrecognized_keys` issue: each key with its suggestion. The API names the
 * first key as the field (`params.dryrun`), so the message reads after it.
 */
function unrecognizedKeysMessage(keys: readonly string[], known: readonly string[]): string {
  if (keys.length === 1) return unknownKeyMessage(keys[0]!, known);
  const each = keys.map((k) => {
    const meant = suggestKey(k, known);
    return meant ? `"${k}" (did you mean "${meant}"?)` : `"${k}"`;
  });
  return `unknown keys ${each.join(', ')} (known: ${known.join(', ')})`;
}

/**
 * z.strictObject whose unknown-key message suggests the key that was meant. The message is worked
 * out from the schema that refused the key, so objects made with `.extend()` suggest their own keys.
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const def = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def;
      return unrecognizedKeysMessage(issue.keys, Object.keys(def?.shape ?? shape));
    },
  });
}

/** Where an issue is, an unknown key's own name included: `where.fiel`, not `where`. */
export function issuePath(issue: { path: readonly PropertyKey[]; code: string; keys?: readonly string[] }): PropertyKey[] {
  return issue.code === 'unrecognized_keys' && issue.keys?.length ? [...issue.path, issue.keys[0]!] : [...issue.path];
}
