// "Did you mean …?" for a mistyped lab: the closest lab ids and file names by edit distance, and a
// lab whose id is the number typed without its leading zero (1 → 01).

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The lab names (an id '01' or a file name '01-bridge-forward-drop') closest to what was typed. */
export function suggestLabs(typed: string, names: string[]): string[] {
  const t = typed.toLowerCase();
  if (/^\d+$/.test(t)) {
    const same = names.filter((n) => /^\d+$/.test(n) && Number(n) === Number(t));
    if (same.length > 0) return same;
  }
  // A word of a file name ('masquerade' in 02-…-masquerade) names that lab.
  const byWord = names.filter((n) => t.length >= 4 && n.toLowerCase().split('-').includes(t));
  if (byWord.length > 0) return byWord.slice(0, 3);
  const scored = names
    .map((n) => ({ n, d: editDistance(t, n.toLowerCase()) }))
    .filter(({ n, d }) => d <= Math.max(1, Math.floor(Math.min(t.length, n.length) / 3)));
  const best = Math.min(...scored.map((s) => s.d));
  return scored
    .filter((s) => s.d === best)
    .map((s) => s.n)
    .slice(0, 3);
}

/** ' (did you mean 01?)' or '' when nothing is close. */
export function didYouMean(typed: string, names: string[]): string {
  const found = suggestLabs(typed, names);
  return found.length > 0 ? `; did you mean ${found.join(' or ')}?` : '';
}
