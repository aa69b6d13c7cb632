import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createFerry, type Ferry } from '../../src/main.js';
import { TEST_SECRETS } from './secrets.js';

export interface InProcessFerry {
  readonly url: string;
  readonly dataDir: string;
  readonly ferry: Ferry;
  close(): Promise<void>;
}

/**
 * Ferry inside the test process on a free loopback port, with a fresh data directory and the same
 * composition root as `ferry serve`. `env` takes configuration variables as in production.
 */
export async function startInProcessFerry(env: Record<string, string> = {}): Promise<InProcessFerry> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-test-'));
  const config = loadConfig(
    { PORT: '0', HOST: '127.0.0.1', FERRY_DATA_DIR: dataDir, ...TEST_SECRETS, ...env },
    dataDir,
  );
  const ferry = await createFerry(config, pino({ level: 'silent' }));
  // As `ferry serve` does: embedded mode processes files in the server process.
  if (!config.redisUrl) await ferry.startWorkers();
  ferry.server.listen(0, '127.0.0.1');
  await once(ferry.server, 'listening');
  const { port } = ferry.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dataDir,
    ferry,
    async close() {
      ferry.server.closeAllConnections();
      await new Promise<void>((resolve) => ferry.server.close(() => resolve()));
      await ferry.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
