import { FerryError } from '../errors.js';
import { parseDuration } from '../durations.js';

/**
 * The well-known upload metadata keys (API.md §3.2) every way in shares: `filename`/`name`,
 * `filetype`/`type`, `folder`, `tags` (comma-separated), `batch`, `retention`. Everything else is
 * the user's own metadata.
 */

export type Metadata = Readonly<Record<string, string | null>>;

const WELL_KNOWN_KEYS = new Set(['filename', 'name', 'filetype', 'type', 'folder', 'tags', 'batch', 'retention']);

/** Limits on what a client may put in the well-known keys (API.md leaves them to Ferry). */
export const METADATA_LIMITS = { nameLength: 1024, folderLength: 512, tags: 32, tagLength: 128, userKeys: 64 };

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/** The client's file name without control characters; never used as a path, only shown and sent back. */
export function declaredName(metadata: Metadata): string | undefined {
  const name = (metadata.filename ?? metadata.name ?? undefined)?.replace(CONTROL_CHARACTERS, '').trim();
  return name ? name : undefined;
}

/**
 * A folder is a label with `/` separators, never a path: control characters go, and empty, `.` and
 * `..` segments are dropped, so `../../etc` becomes `etc` and `a//b/` becomes `a/b`.
 */
export function sanitizeFolder(folder: string): string | undefined {
  const segments = folder
    .replace(CONTROL_CHARACTERS, '')
    .split(/[/\\]+/)
    .map((segment) => segment.trim())
    .filter((segment) => segment !== '' && segment !== '.' && segment !== '..');
  return segments.length > 0 ? segments.join('/') : undefined;
}

const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]{1,127}\/[a-z0-9!#$&^_.+-]{1,127}$/i;

/** Types clients declare when they know nothing better (Uppy's default): no claim about the bytes. */
export const UNSPECIFIC_TYPES: ReadonlySet<string> = new Set([
  'application/octet-stream',
  'binary/octet-stream',
  'application/x-download',
]);

/** The client's declared media type, if it is a syntactically valid `type/subtype`. */
export function declaredMediaType(metadata: Metadata): string | undefined {
  const value = metadata.filetype ?? metadata.type ?? undefined;
  return value && MEDIA_TYPE.test(value) ? value.toLowerCase() : undefined;
}

export interface DescribedFile {
  readonly name: string | undefined;
  readonly mimeType: string | undefined;
  readonly folder: string | null;
  readonly tags: readonly string[];
  readonly batch: string | null;
  /** Undefined when the client asked for none (the default applies). */
  readonly retentionMs: number | undefined;
  /** The metadata without the well-known keys. */
  readonly userMetadata: Metadata;
}

/**
 * Reads the well-known keys. Values beyond the limits, or a `retention` that is not a duration, are
 * `invalid_metadata` (400). User metadata is built with own properties only, so a `__proto__` key is
 * kept as data and never touches a prototype.
 */
export function describeFile(metadata: Metadata): DescribedFile {
  const userEntries = Object.entries(metadata).filter(([key]) => !WELL_KNOWN_KEYS.has(key));
  if (userEntries.length > METADATA_LIMITS.userKeys) {
    throw new FerryError(
      'invalid_metadata',
      `at most ${METADATA_LIMITS.userKeys} metadata keys besides the well-known ones`,
    );
  }
  const name = declaredName(metadata);
  if (name !== undefined && name.length > METADATA_LIMITS.nameLength) {
    throw new FerryError('invalid_metadata', `filename may have at most ${METADATA_LIMITS.nameLength} characters`);
  }
  const rawFolder = nonEmpty(metadata.folder);
  if (rawFolder !== null && rawFolder.length > METADATA_LIMITS.folderLength) {
    throw new FerryError('invalid_metadata', `folder may have at most ${METADATA_LIMITS.folderLength} characters`);
  }
  const tags = [
    ...new Set(
      (metadata.tags ?? '')
        .replace(CONTROL_CHARACTERS, '')
        .split(',')
        .map((tag) => tag.trim())
        .filter(Boolean),
    ),
  ];
  if (tags.length > METADATA_LIMITS.tags || tags.some((tag) => tag.length > METADATA_LIMITS.tagLength)) {
    throw new FerryError(
      'invalid_metadata',
      `at most ${METADATA_LIMITS.tags} tags of at most ${METADATA_LIMITS.tagLength} characters each`,
    );
  }
  return {
    name,
    mimeType: declaredMediaType(metadata),
    folder: rawFolder === null ? null : (sanitizeFolder(rawFolder) ?? null),
    tags,
    batch: nonEmpty(metadata.batch?.replace(CONTROL_CHARACTERS, '')),
    retentionMs: parseRetention(metadata.retention),
    userMetadata: Object.fromEntries(userEntries),
  };
}

/** `3d`, `12h`… or whole seconds (`86400`). */
function parseRetention(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : parseDuration(value);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms <= 0) {
    throw new FerryError('invalid_metadata', 'retention must be a duration such as 3d, 12h or 3600 (seconds)');
  }
  return ms;
}

function nonEmpty(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}
