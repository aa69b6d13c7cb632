import { FerryError } from '../errors.js';
import { parseDuration } from '../durations.js';

/**
 * The well-known upload metadata keys (API.md §3.2) every way in shares: `filename`/`name`,
 * `filetype`/`type`, `folder`, `tags` (comma-separated), `batch`, `retention`. Everything else is
 * the user's own metadata.
 */

export type Metadata = Readonly<Record<string, string | null>>;

const WELL_KNOWN_KEYS = new Set(['filename', 'name', 'filetype', 'type', 'folder', 'tags', 'batch', 'retention']);

export function declaredName(metadata: Metadata): string | undefined {
  return metadata.filename ?? metadata.name ?? undefined;
}

const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]{1,127}\/[a-z0-9!#$&^_.+-]{1,127}$/i;

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

/** Reads the well-known keys; a `retention` that is not a duration is `invalid_metadata`. */
export function describeFile(metadata: Metadata): DescribedFile {
  const userMetadata: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (!WELL_KNOWN_KEYS.has(key)) userMetadata[key] = value;
  }
  return {
    name: declaredName(metadata),
    mimeType: declaredMediaType(metadata),
    folder: nonEmpty(metadata.folder),
    tags: [
      ...new Set(
        (metadata.tags ?? '')
          .split(',')
          .map((tag) => tag.trim())
          .filter(Boolean),
      ),
    ],
    batch: nonEmpty(metadata.batch),
    retentionMs: parseRetention(metadata.retention),
    userMetadata,
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
