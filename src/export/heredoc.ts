// Heredocs in exported scripts: the end marker is chosen so that no line of the body can end
// the heredoc early (a lab's text is data, never script).
const BASE = 'NFLAB_EOF';

/** A marker that is not a line of `body`: NFLAB_EOF, else NFLAB_EOF_1, _2, … */
export function heredocMarker(body: string): string {
  const lines = new Set(body.split('\n'));
  if (!lines.has(BASE)) return BASE;
  for (let i = 1; ; i++) if (!lines.has(`${BASE}_${i}`)) return `${BASE}_${i}`;
}

/** `head <<'MARKER'`, the body's lines, `MARKER`: a quoted heredoc, so nothing in it is expanded. */
export function quotedHeredoc(head: string, lines: string[]): string[] {
  const marker = heredocMarker(lines.join('\n'));
  return [`${head} <<'${marker}'`, ...lines, marker];
}
