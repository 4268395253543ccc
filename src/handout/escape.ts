// Text into HTML and SVG: everything a reader sees goes through here, never raw into markup.

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export const escapeHtml = escapeXml;
