import type { Readable } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';
import { HEAD_BYTES, type ArrivalDigests } from '../uploads/arrival-digests.js';
import { FileChecksummer } from '../uploads/checksums.js';
import type { ByteRange, FileRecord } from '../ports.js';
import { UNSPECIFIC_TYPES } from '../files/well-known-metadata.js';
import { typeAllowed } from '../tenancy.js';

/** What a step may change on the file. */
export type FileFindings = Partial<Pick<FileRecord, 'detectedType' | 'checksums'>>;

export interface StepContext {
  /** The file as the earlier steps left it. */
  readonly file: FileRecord;
  /** Digests taken as the bytes arrived, when they were (a small file sent whole in one body). */
  readonly arrived?: ArrivalDigests;
  read(range?: ByteRange): Readable;
}

/** A step's verdict: findings to record, or a reason the file fails (its bytes are then removed). */
export type StepResult =
  | { readonly ok: true; readonly findings?: FileFindings }
  | { readonly ok: false; readonly code: string; readonly message: string };

/**
 * One step of processing. Steps run in order on every completed file; each must be idempotent (a
 * crash re-runs the whole list). Adding a step means adding an object to the list in `defaultSteps`.
 */
export interface ProcessingStep {
  readonly name: string;
  run(context: StepContext): Promise<StepResult>;
}

/** Common non-canonical names for the types file-type reports. */
const TYPE_ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'audio/mp3': 'audio/mpeg',
  'application/x-zip-compressed': 'application/zip',
  'application/x-pdf': 'application/pdf',
  'video/x-m4v': 'video/mp4',
};

const canonicalType = (type: string) => TYPE_ALIASES[type] ?? type;

/**
 * Sniffs the real type from the leading bytes and compares it with the declared one. A declared
 * specific type that the bytes contradict fails the file (`type_mismatch`): a program uploaded as
 * `image/png` is refused. Formats file-type cannot recognise (plain text, CSV, JSON…) have no
 * detected type and pass; so does a declared `application/octet-stream`.
 */
export const detectType: ProcessingStep = {
  name: 'detect-type',
  async run({ file, arrived, read }) {
    const size = file.size ?? file.receivedBytes;
    const head =
      arrived?.head ??
      (size === 0 ? Buffer.alloc(0) : await readAll(read({ start: 0, end: Math.min(size, HEAD_BYTES) - 1 })));
    const detected = (await fileTypeFromBuffer(head))?.mime ?? null;
    const declared = canonicalType(file.mimeType);
    if (detected && !UNSPECIFIC_TYPES.has(declared) && canonicalType(detected) !== declared) {
      return {
        ok: false,
        code: 'type_mismatch',
        message: `declared as ${file.mimeType} but the content is ${detected}`,
      };
    }
    return { ok: true, findings: { detectedType: detected } };
  },
};

/**
 * Enforces an allow-list of media types (`image/*,application/pdf`) against the detected type, or
 * the declared one when the bytes say nothing. `*` allows everything.
 */
export function enforceAllowedTypes(allowed: readonly string[]): ProcessingStep {
  return {
    name: 'allowed-types',
    async run({ file }) {
      // The upload's own list (its tenant's, narrowed by a token) wins over the global one.
      const patterns = file.allowedTypes ?? allowed;
      const type = canonicalType(file.detectedType ?? file.mimeType);
      return typeAllowed(type, patterns)
        ? { ok: true }
        : { ok: false, code: 'type_not_allowed', message: `${type} is not an allowed type` };
    },
  };
}

/** sha256 (hex) and crc32c (base64 of the big-endian value, as GCS writes it) in one pass. */
export const computeChecksums: ProcessingStep = {
  name: 'checksums',
  async run({ file, arrived, read }) {
    if (arrived) return { ok: true, findings: { checksums: { sha256: arrived.sha256, crc32c: arrived.crc32c } } };
    const checksums = new FileChecksummer();
    if ((file.size ?? file.receivedBytes) > 0) {
      for await (const chunk of read()) checksums.update(chunk as Buffer);
    }
    return { ok: true, findings: { checksums: checksums.digest() } };
  },
};

export function defaultSteps(allowedTypes: readonly string[]): ProcessingStep[] {
  return [detectType, enforceAllowedTypes(allowedTypes), computeChecksums];
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
