import type { FileRecord } from '../ports.js';

/** A file as the API and webhooks show it (API.md §3.3): snake_case, times in ISO 8601. */
export interface FileJson {
  readonly id: string;
  readonly name: string;
  readonly size: number | null;
  readonly received_bytes: number;
  readonly mime_type: string;
  readonly detected_type: string | null;
  readonly folder: string | null;
  readonly tags: readonly string[];
  readonly metadata: Readonly<Record<string, string | null>>;
  readonly batch: string | null;
  readonly status: FileRecord['status'];
  readonly checksums: FileRecord['checksums'];
  readonly protocol: string;
  readonly created_at: string;
  readonly completed_at: string | null;
  readonly expires_at: string | null;
  /** Only once the file is `completed`: its bytes are served after processing approved them. */
  readonly download_url: string | null;
  readonly error: FileRecord['error'];
}

/**
 * `downloadUrl` is where the bytes are (a signed URL, so it works without a key); it is shown only
 * once the file is `completed`.
 */
export function fileJson(file: FileRecord, downloadUrl: string): FileJson {
  return {
    id: file.id,
    name: file.name,
    size: file.size,
    received_bytes: file.receivedBytes,
    mime_type: file.mimeType,
    detected_type: file.detectedType,
    folder: file.folder,
    tags: file.tags,
    metadata: file.metadata,
    batch: file.batch,
    status: file.status,
    checksums: file.checksums,
    protocol: file.protocol,
    created_at: file.createdAt,
    completed_at: file.completedAt,
    expires_at: file.expiresAt,
    download_url: file.status === 'completed' ? downloadUrl : null,
    error: file.error,
  };
}
