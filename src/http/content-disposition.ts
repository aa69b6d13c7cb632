/**
 * `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 8187), safe for
 * any client-supplied name: quotes, backslashes and control characters never reach the header.
 */
export function contentDisposition(name: string | undefined): string {
  if (!name) return 'attachment';
  const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_');
  const ascii = cleaned.replace(/[^\x20-\x7e]/g, '_').replace(/["%]/g, '_');
  const encoded = encodeURIComponent(cleaned).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
