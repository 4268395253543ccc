// Long commands on paper: a command wider than the page is broken between two shell words with a
// `\` continuation, so what a student types from the printout is what the lab runs. A word is never
// split, quotes are respected, and a trailing `# comment` stays a comment.
//
// A here-document body (iptables-restore input) is wrapped the same way between its words. bash
// drops `\`+newline only in an *unquoted* here-document, so a wrapped body's `<<'EOF'` is printed as
// `<<EOF`; that is only done when the body has none of the characters an unquoted here-document
// would expand ($, `, \), otherwise its lines are left whole.

/** Characters per printed line: fits an A4 page in 8.5 pt monospace with room to spare. */
export const PRINT_WIDTH = 88;
const INDENT = '    ';
const CONTINUATION = ' \\';

/** Splits a command line into shell words (quotes kept inside their word), and a trailing comment. */
export function shellWords(line: string): { words: string[]; comment?: string } {
  const words: string[] = [];
  let word = '';
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      word += c;
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i]!;
      continue;
    }
    if (c === '\\' && i + 1 < line.length) {
      word += c + line[++i]!;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      word += c;
      continue;
    }
    if (c === ' ' || c === '\t') {
      if (word) {
        words.push(word);
        word = '';
      }
      continue;
    }
    if (c === '#' && word === '') {
      // Everything from here is a comment, printed as written (its leading spaces included).
      return { words, comment: line.slice(trailingSpaceStart(line, i)) };
    }
    word += c;
  }
  if (word) words.push(word);
  return { words };
}

/** Where the run of spaces before position i begins (so a comment keeps its own padding). */
function trailingSpaceStart(line: string, i: number): number {
  let j = i;
  while (j > 0 && line[j - 1] === ' ') j--;
  return j;
}

/** Packs words into lines of at most `width` characters joined by `\` continuations. */
function packWords(words: string[], width: number, comment?: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of words) {
    const candidate = current ? `${current} ${word}` : word;
    const prefix = lines.length > 0 ? INDENT : '';
    if (current && (prefix + candidate).length + CONTINUATION.length > width) {
      lines.push(prefix + current + CONTINUATION);
      current = word;
    } else {
      current = candidate;
    }
  }
  const last = (lines.length > 0 ? INDENT : '') + current;
  if (comment && (last + comment).length > width && current) {
    // The note goes on a continuation line of its own: typed, it is still a comment.
    lines.push(last + CONTINUATION);
    lines.push(INDENT + comment.trimStart());
  } else {
    lines.push(last + (comment ?? ''));
  }
  return lines;
}

/** One command line as printed lines. Lines that fit, or that cannot be broken, stay as they are. */
export function wrapLine(line: string, width = PRINT_WIDTH): string[] {
  if (line.length <= width) return [line];
  const { words, comment } = shellWords(line);
  if (words.length < 2) return [line];
  // Re-joining the words must give the line back (single spaces): otherwise leave it alone.
  if (words.join(' ') + (comment ?? '') !== line) return [line];
  return packWords(words, width, comment);
}

const HEREDOC = /^(.*<<)'([A-Za-z_][A-Za-z0-9_]*)'$/;

/**
 * A displayed command (possibly several lines: a command with a here-document) as printed lines,
 * none longer than `width` where a word boundary allows it.
 */
export function wrapCommand(display: string, width = PRINT_WIDTH): string[] {
  const lines = display.split('\n');
  const head = HEREDOC.exec(lines[0]!);
  if (lines.length > 1 && head) {
    const body = lines.slice(1, -1);
    const end = lines[lines.length - 1]!;
    const long = body.some((l) => l.length > width);
    const expandable = body.some((l) => /[$`\\]/.test(l));
    if (end === head[2] && long && !expandable) {
      return [...wrapLine(`${head[1]}${head[2]}`, width), ...body.flatMap((l) => wrapLine(l, width)), end];
    }
    return [...wrapLine(lines[0]!, width), ...body, end];
  }
  return lines.flatMap((l) => wrapLine(l, width));
}

/**
 * What a shell makes of printed lines: `\` continuations joined (the continuation line's indent
 * dropped), and an unquoted here-document delimiter written back as the quoted one. Tests use it to
 * compare a printout with the commands a lab runs.
 */
export function joinContinuations(lines: string[]): string[] {
  const out: string[] = [];
  let pending: string | undefined;
  for (const raw of lines) {
    const line = pending !== undefined ? `${pending} ${raw.trimStart()}` : raw;
    if (line.endsWith(CONTINUATION)) {
      pending = line.slice(0, -CONTINUATION.length);
      continue;
    }
    pending = undefined;
    out.push(line);
  }
  if (pending !== undefined) out.push(pending);
  return out.map((l) => l.replace(/<<([A-Za-z_][A-Za-z0-9_]*)$/, "<<'$1'"));
}
