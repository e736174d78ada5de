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

/**
 * The message of a zod `unrecognized_keys` issue, as zod words it (`Unrecognized key: "dryrun"`),
 * with the key that was meant for a near miss, else the keys there are. It names the key itself:
 * not every reader shows the issue's path (the API does, as `params.dryrun`).
 */
function unrecognizedKeysMessage(keys: readonly string[], known: readonly string[]): string {
  const meant = keys.map((k) => suggestKey(k, known));
  if (keys.length === 1) return `Unrecognized key: "${keys[0]}"${meant[0] ? `; did you mean "${meant[0]}"?` : ` (known: ${known.join(', ')})`}`;
  const each = keys.map((k, i) => (meant[i] ? `"${k}" (did you mean "${meant[i]}"?)` : `"${k}"`));
  return `Unrecognized keys: ${each.join(', ')} (known: ${known.join(', ')})`;
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
