import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../src/adapters/disk/disk-blob-store.js';
import { RecordLog } from '../../src/adapters/disk/record-log.js';
import { MemoryLocker } from '../../src/adapters/embedded/memory-locker.js';
import { systemClock, type UploadRecord } from '../../src/core/ports.js';
import type { ArrivalDigests } from '../../src/core/uploads/arrival-digests.js';
import { Uploads, type UploadObserver } from '../../src/core/uploads/uploads.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Uploads on real disk adapters, with an observer that notes the digests each completion brought. */
async function uploadsWith(digestOnArrival: boolean) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-uploads-'));
  const blobs = new DiskBlobStore(path.join(dir, 'blobs'));
  const state = new RecordLog<UploadRecord>(path.join(dir, 'uploads'), 'upload');
  await Promise.all([blobs.init(), state.init()]);
  cleanups.push(async () => {
    await state.close();
    await rm(dir, { recursive: true, force: true });
  });
  const completions: (ArrivalDigests | undefined)[] = [];
  const observer: UploadObserver = {
    validate: () => undefined,
    created: async () => undefined,
    received: () => undefined,
    completed: async (_upload, _justCompleted, digests) => {
      completions.push(digests);
    },
    expired: async () => undefined,
    removed: async () => undefined,
  };
  const uploads = new Uploads({
    blobs,
    state,
    locker: new MemoryLocker(),
    clock: systemClock,
    incompleteTtlMs: 60_000,
    digestOnArrival,
  });
  uploads.observe(observer);
  return { uploads, completions };
}

const body = (bytes: Buffer, chunk = 1000) =>
  Readable.from(
    Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) => bytes.subarray(i * chunk, (i + 1) * chunk)),
  );

describe('Uploads: digests on arrival', () => {
  it('with digestOnArrival, an upload completed by one body reports the sha256 and head of its bytes', async () => {
    const { uploads, completions } = await uploadsWith(true);
    const bytes = randomBytes(10_000);
    const upload = await uploads.create({ tenant: 'default', size: bytes.length, protocol: 'test' });
    await uploads.append(upload, 0, body(bytes));
    expect(completions).toHaveLength(1);
    expect(completions[0]).toMatchObject({
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      head: bytes.subarray(0, 4100),
    });
  });

  it('with digestOnArrival, an upload completed by its second body reports none', async () => {
    const { uploads, completions } = await uploadsWith(true);
    const bytes = randomBytes(10_000);
    const upload = await uploads.create({ tenant: 'default', size: bytes.length, protocol: 'test' });
    await uploads.append(upload, 0, body(bytes.subarray(0, 4000)));
    await uploads.append(upload, 4000, body(bytes.subarray(4000)));
    expect(completions).toEqual([undefined]);
  });

  it('without it (workers elsewhere process), an upload completed by one body reports none', async () => {
    const { uploads, completions } = await uploadsWith(false);
    const bytes = randomBytes(10_000);
    const upload = await uploads.create({ tenant: 'default', size: bytes.length, protocol: 'test' });
    await uploads.append(upload, 0, body(bytes));
    expect(completions).toEqual([undefined]);
  });
});
