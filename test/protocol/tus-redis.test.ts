import { afterAll } from 'vitest';
import { startInProcessFerry } from '../helpers/in-process-ferry.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import { tusCoreSuite } from './tus-core.suite.js';
import { tusExtensionsSuite } from './tus-extensions.suite.js';

// The same tus conformance suites against distributed mode: locks and records in a real redis-server.
let redis: RedisServer | undefined;
let instances = 0;
const startWithRedis = async (env: Record<string, string>) => {
  redis ??= await startRedis();
  return startInProcessFerry({ ...env, FERRY_REDIS_URL: redis.url, FERRY_REDIS_PREFIX: `suite${++instances}:` });
};
afterAll(async () => {
  await stopAllRedis();
});

tusCoreSuite('distributed mode, Redis + disk', startWithRedis);
tusExtensionsSuite('distributed mode, Redis + disk', startWithRedis);
