// Lab text into HTML, SVG and Markdown: everything a reader sees goes through here, never raw
// into markup. A lab's words stay words: no tag, no link, no fence a lab writes becomes markup.

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export const escapeHtml = escapeXml;

/** A link target a handout may print: http(s) only (no javascript:, data:, file: …), normalised
 * by the URL parser; undefined for anything else, which the handout then prints as text. */
export function safeUrl(url: string | undefined): string | undefined {
  if (typeof url !== 'string') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  return parsed.href;
}

/** Text inside Markdown prose, one line: the characters that start markup anywhere (emphasis,
 * links, images, HTML tags, entities, code spans, tables, strikethrough) are backslash-escaped, as
 * is a first character that would start a block (heading, list, quote, rule); line breaks become
 * spaces, so nothing starts a block of its own. */
export function mdText(s: string): string {
  return s
    .replace(/\s*\n\s*/g, ' ')
    .replace(/[\\`*_[\]<>&|~!{}#]/g, (c) => `\\${c}`)
    .replace(/^([-+=>:])/, '\\$1')
    .replace(/^(\d+)([.)])/, '$1\\$2');
}

/** An inline code span holding `s` literally: its fence is one backtick longer than any run of
 * backticks inside. */
export function mdCode(s: string): string {
  const text = s.replace(/\n/g, ' ');
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') || longest > 0 ? ' ' : '';
  return `${ticks}${pad}${text}${pad}${ticks}`;
}

/** A fenced code block holding `lines` literally: the fence is longer than any run of backticks
 * in them, so no line closes it early. */
export function mdFence(lines: string[], lang = 'sh'): string[] {
  const body = lines.flatMap((l) => l.split('\n'));
  const longest = Math.max(0, ...body.map((l) => Math.max(0, ...[...l.matchAll(/`+/g)].map((m) => m[0].length))));
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  return [`${ticks}${lang}`, ...body, ticks];
}

/** A link target inside Markdown's `(…)`: the URL parser's form, with the characters Markdown
 * would read (parentheses, brackets, quotes, backslash, spaces, angle brackets) percent-encoded. */
export function mdUrl(href: string): string {
  return href.replace(/[()[\]<>"'\\`*_ ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
