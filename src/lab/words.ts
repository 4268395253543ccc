// Splits a command line into words the way a POSIX shell would, minus everything that makes a
// shell dangerous or unpredictable: no variable expansion, no globbing, no command substitution.
// Used to compare rules written by lab authors with rules as iptables-save prints them.

/**
 * 'shell': POSIX rules. 'iptables': how iptables-restore reads iptables-save output, where a
 * backslash inside double quotes escapes any character (iptables-save writes `it\'s` for `it's`).
 */
export type WordDialect = 'shell' | 'iptables';

/** Characters a backslash escapes inside double quotes (POSIX); elsewhere it stays literal. */
const ESCAPABLE_IN_DOUBLE_QUOTES = new Set(['"', '\\', '$', '`', '\n']);

export function splitWords(text: string, dialect: WordDialect = 'shell'): string[] {
  const words: string[] = [];
  let word = '';
  // A word exists once any character or quote was seen: `""` is one empty word.
  let inWord = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated single quote at column ${i + 1} in: ${text}`);
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new Error(`unterminated double quote at column ${i + 1} in: ${text}`);
        const c = text[j]!;
        if (c === '"') break;
        if (
          c === '\\' &&
          j + 1 < text.length &&
          (dialect === 'iptables' || ESCAPABLE_IN_DOUBLE_QUOTES.has(text[j + 1]!))
        ) {
          // A backslash-newline inside double quotes is a line continuation: both vanish.
          if (text[j + 1] !== '\n' || dialect === 'iptables') word += text[j + 1];
          j += 2;
        } else {
          word += c;
          j++;
        }
      }
      inWord = true;
      i = j + 1;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) throw new Error(`trailing backslash at column ${i + 1} in: ${text}`);
      // Outside quotes a backslash makes the next character literal; backslash-newline joins lines.
      if (text[i + 1] !== '\n') {
        word += text[i + 1];
        inWord = true;
      }
      i += 2;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
