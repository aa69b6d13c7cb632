import { Metadata } from '@tus/utils';
import { CHECKSUM_ALGORITHMS, isChecksumAlgorithm, type ExpectedChecksum } from '../../core/uploads/checksums.js';

/** Parsing of the tus request headers Ferry handles itself (checksum, concatenation, metadata). */

/** A tus length or offset header: a non-negative integer (at most 16 digits, so a safe integer). */
export const NON_NEGATIVE_INTEGER = /^\d{1,16}$/;

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DIGEST_LENGTH: Record<ExpectedChecksum['algorithm'], number> = { sha1: 20, md5: 16, crc32c: 4 };

/** `Upload-Checksum: <algorithm> <base64 digest>` (tus checksum extension). */
export function parseUploadChecksum(header: string): Parsed<ExpectedChecksum> {
  const [algorithm, encoded, ...rest] = header.trim().split(' ');
  if (!algorithm || !encoded || rest.length > 0 || !BASE64.test(encoded)) {
    return { ok: false, error: 'Upload-Checksum must be "<algorithm> <base64 digest>"' };
  }
  if (!isChecksumAlgorithm(algorithm)) {
    return { ok: false, error: `unsupported checksum algorithm; use one of ${CHECKSUM_ALGORITHMS.join(', ')}` };
  }
  const digest = Buffer.from(encoded, 'base64');
  if (digest.length !== DIGEST_LENGTH[algorithm]) {
    return { ok: false, error: `a ${algorithm} digest is ${DIGEST_LENGTH[algorithm]} bytes` };
  }
  return { ok: true, value: { algorithm, digest } };
}

export type UploadConcat =
  { readonly role: 'partial' } | { readonly role: 'final'; readonly partIds: readonly string[] };

/**
 * `Upload-Concat: partial` or `final;<url> <url> …` where each URL, absolute or relative, names an
 * upload under the tus path. Only the id at the end of each URL matters: a URL outside the tus path
 * is refused.
 */
export function parseUploadConcat(header: string, tusPath: string): Parsed<UploadConcat> {
  const value = header.trim();
  if (value === 'partial') return { ok: true, value: { role: 'partial' } };
  if (!value.startsWith('final;')) return { ok: false, error: 'Upload-Concat must be "partial" or "final;<urls>"' };
  const urls = value.slice('final;'.length).trim().split(/ +/).filter(Boolean);
  if (urls.length === 0) return { ok: false, error: 'a final upload needs at least one partial upload URL' };
  const partIds: string[] = [];
  for (const url of urls) {
    let pathname: string;
    try {
      pathname = new URL(url, 'http://relative.invalid').pathname;
    } catch {
      return { ok: false, error: `not a URL: ${url}` };
    }
    const prefix = `${tusPath}/`;
    const id = pathname.startsWith(prefix) ? pathname.slice(prefix.length).replace(/\/$/, '') : '';
    if (!id || id.includes('/')) return { ok: false, error: `not an upload URL of this server: ${url}` };
    partIds.push(id);
  }
  return { ok: true, value: { role: 'final', partIds } };
}

/**
 * `Upload-Metadata` as tus defines it (@tus/utils parses it). An empty header, which some clients
 * (tuspy among them) send, means no metadata (API.md §3.2).
 */
export function parseUploadMetadata(header: string | undefined): Parsed<Record<string, string | null>> {
  if (header === undefined || header.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: { ...Metadata.parse(header) } };
  } catch {
    return { ok: false, error: 'Upload-Metadata is invalid' };
  }
}
