// Renders argv as a person would type it in bash: words quoted only where bash needs it.
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quoteWord(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellQuote(argv: readonly string[]): string {
  return argv.map(quoteWord).join(' ');
}
