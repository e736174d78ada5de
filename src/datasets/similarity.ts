/**
 * Edit distance between two strings (insertions, deletions, substitutions), giving up once it
 * exceeds `max`: near-duplicate checks only care whether two values are close.
 */
export function levenshtein(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  if (a.length > b.length) [a, b] = [b, a];
  let previous = new Array<number>(a.length + 1);
  let current = new Array<number>(a.length + 1);
  for (let i = 0; i <= a.length; i++) previous[i] = i;
  for (let j = 1; j <= b.length; j++) {
    current[0] = j;
    let rowMin = j;
    const bj = b.charCodeAt(j - 1);
    for (let i = 1; i <= a.length; i++) {
      const cost = a.charCodeAt(i - 1) === bj ? 0 : 1;
      current[i] = Math.min(previous[i]! + 1, current[i - 1]! + 1, previous[i - 1]! + cost);
      if (current[i]! < rowMin) rowMin = current[i]!;
    }
    if (rowMin > max) return max + 1;
    [previous, current] = [current, previous];
  }
  return previous[a.length]!;
}

/** 1 for equal strings, down to 0: one minus the edit distance over the longer length. */
export function similarity(a: string, b: string, atLeast = 0): number {
  const longest = Math.max(a.length, b.length);
  if (longest === 0) return 1;
  // Below `atLeast` the exact figure does not matter: stop counting edits there.
  const d = levenshtein(a, b, Math.floor((1 - atLeast) * longest));
  return 1 - d / longest;
}
