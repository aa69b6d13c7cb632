import type { EventFilter, FileEvent, FileQuery, FileRecord } from '../ports.js';

/**
 * What the registry's and the event bus's filters mean, shared by every adapter so embedded and
 * distributed mode can never disagree on which files or events a query selects.
 */

export function fileMatchesQuery(record: FileRecord, query: FileQuery): boolean {
  return (
    record.tenant === query.tenant &&
    (query.folder === undefined || record.folder === query.folder) &&
    (query.tag === undefined || record.tags.includes(query.tag)) &&
    (query.batch === undefined || record.batch === query.batch) &&
    (query.status === undefined || record.status === query.status)
  );
}

export function eventMatchesFilter(filter: EventFilter, event: FileEvent): boolean {
  return (
    event.tenant === filter.tenant &&
    (filter.fileId === undefined || event.fileId === filter.fileId) &&
    (filter.batch === undefined || event.batch === filter.batch)
  );
}

/** The page sizes a registry accepts (FileQuery.limit). */
export function checkPageLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RangeError(`limit must be 1…1000: ${limit}`);
}
