import { afterAll } from 'vitest';
import { startInProcessFerry } from '../helpers/in-process-ferry.js';
import { MOTO_CREDENTIALS, startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import { tusCoreSuite } from './tus-core.suite.js';
import { tusExtensionsSuite } from './tus-extensions.suite.js';

// The tus conformance suites with bytes and records in S3 (a real moto_server), embedded locks.
// The AWS SDK takes credentials from its standard chain, which reads the process environment.
process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;

let s3: MotoServer | undefined;
let instances = 0;
const startOnS3 = async (env: Record<string, string>) => {
  s3 ??= await startMoto();
  return startInProcessFerry({ ...env, ...s3.env, FERRY_S3_PREFIX: `suite${++instances}` });
};
afterAll(async () => {
  await stopAllMoto();
});

tusCoreSuite('embedded mode, S3', startOnS3);
tusExtensionsSuite('embedded mode, S3', startOnS3);
