import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DiskBlobStore } from '../../src/adapters/disk/disk-blob-store.js';
import { blobStoreContract } from './blob-store.contract.js';

// Disk-only behaviour (the crash marker, ids that would leave the directory) is tested in
// test/unit/disk-blob-store.test.ts.
blobStoreContract(
  'DiskBlobStore (temp directory)',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-blob-contract-'));
    const store = new DiskBlobStore(dir);
    await store.init();
    return {
      store,
      leftovers: () => readdir(dir),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
  { keepsEveryByteOfAFailedBody: true },
);
