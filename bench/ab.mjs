// A/B of two Ferry builds (or one build under two environments) on small uploads, in alternating
// pairs: A, B, A, B, … each a fresh server (and, with AB_REDIS=1, a fresh redis-server of its own).
// On a noisy machine one run of each tells little; the direction across pairs is what to read.
//
//   AB_CLI_A, AB_CLI_B     entries to run (default: this tree's dist/launcher.cjs for both)
//   AB_ENV_A, AB_ENV_B     extra environment per side, "K=V K=V" (e.g. AB_ENV_B="UV_THREADPOOL_SIZE=2")
//   AB_PAIRS (4)           pairs
//   AB_ROUNDS (5), AB_WARMUP_ROUNDS (2)   rounds per server; the first ones warm it up and are not counted
//   AB_COUNT (400), AB_KIB (64), AB_CONCURRENCY (16)   uploads per round, their size, how many at a time
//   AB_ONE_REQUEST=1       creation-with-upload (one POST) instead of POST + PATCH
//   AB_REDIS=1             distributed mode: each server on its own redis-server (no `ferry worker`)
//
// Per run it prints uploads/s (mean of the counted rounds) and CPU per upload of the server's event
// loop (its main thread), of its other threads (libuv's pool, V8's helpers) and of redis-server, all
// from /proc. One upload per run is downloaded and its sha256 compared with what was sent.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLK_TCK, cpuSeconds } from './lib/procstat.mjs';
import { startRedis } from './lib/redis.mjs';
import * as tus from './lib/tus-client.mjs';
import { envNumber, mapConcurrent, sha256, sleep } from './lib/util.mjs';
import { FERRY_CLI, startFerryVariant } from './lib/variants.mjs';

const pairs = envNumber('AB_PAIRS', 4, { min: 1 });
const rounds = envNumber('AB_ROUNDS', 5, { min: 1 });
const warmup = envNumber('AB_WARMUP_ROUNDS', 2);
const count = envNumber('AB_COUNT', 400, { min: 1 });
const size = envNumber('AB_KIB', 64, { min: 1 }) * 1024;
const concurrency = envNumber('AB_CONCURRENCY', 16, { min: 1 });
const oneRequest = process.env.AB_ONE_REQUEST === '1';
const withRedis = process.env.AB_REDIS === '1';
if (warmup >= rounds) throw new Error('AB_WARMUP_ROUNDS must be smaller than AB_ROUNDS');

const sides = ['A', 'B'].map((side) => ({
  side,
  cli: path.resolve(process.env[`AB_CLI_${side}`] || FERRY_CLI),
  env: parseEnv(process.env[`AB_ENV_${side}`] ?? ''),
}));

function parseEnv(text) {
  return Object.fromEntries(
    text
      .split(/\s+/)
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        if (at < 1) throw new Error(`not K=V: ${pair}`);
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
  );
}

/** CPU seconds of `pid`'s main thread (the event loop) alone. */
const mainThreadSeconds = (pid) => {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
};

async function run({ side, cli, env }) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `ferry-ab-${side}-`));
  const redis = withRedis ? await startRedis(tmp, `ab-${side}`) : null;
  const ferry = await startFerryVariant(tmp, {
    name: `ab-${side}`,
    cli,
    cwd: path.dirname(path.dirname(cli)),
    env,
    redis,
    // Embedded Ferry processes in-process: each round starts once the last one's files are processed.
    processing: redis ? null : 'in-process',
  });
  const agent = tus.makeAgent(concurrency);
  const bodies = Array.from({ length: count }, () => randomBytes(size));
  const upload = oneRequest ? ferry.uploadBufferInCreation : ferry.uploadBuffer;
  const counted = { seconds: 0, main: 0, all: 0, redis: 0 };
  try {
    for (let round = 0; round < rounds; round++) {
      await ferry.settle?.();
      await sleep(500);
      const before = {
        main: mainThreadSeconds(ferry.pid),
        all: cpuSeconds(ferry.pid),
        redis: redis?.cpuSeconds() ?? 0,
      };
      const t0 = performance.now();
      const refs = await mapConcurrent(bodies, concurrency, (body) => upload(body, { agent }));
      const seconds = (performance.now() - t0) / 1000;
      if (round === 0) await ferry.verify(refs[0], { size, sha256: sha256(bodies[0]) });
      if (round < warmup) continue;
      counted.seconds += seconds;
      counted.main += mainThreadSeconds(ferry.pid) - before.main;
      counted.all += cpuSeconds(ferry.pid) - before.all;
      counted.redis += (redis?.cpuSeconds() ?? 0) - before.redis;
    }
  } finally {
    agent.destroy();
    await ferry.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  const uploads = count * (rounds - warmup);
  const us = (s) => Math.round((s / uploads) * 1e6);
  return {
    rate: uploads / counted.seconds,
    mainUs: us(counted.main),
    otherUs: us(counted.all - counted.main),
    redisUs: withRedis ? us(counted.redis) : undefined,
  };
}

const line = (r) =>
  `${r.rate.toFixed(0).padStart(5)} uploads/s  event loop ${r.mainUs} µs, other threads ${r.otherUs} µs` +
  (r.redisUs === undefined ? '' : `, redis ${r.redisUs} µs`) +
  ' per upload';

console.log(
  `A: ${sides[0].cli} ${JSON.stringify(sides[0].env)}\nB: ${sides[1].cli} ${JSON.stringify(sides[1].env)}\n` +
    `${pairs} pairs, ${rounds} rounds (${warmup} warm-up) of ${count} × ${size / 1024} KiB, ${concurrency} at a time, ` +
    `${oneRequest ? 'one POST each' : 'POST + PATCH'}, ${withRedis ? 'Redis' : 'embedded'}`,
);
const ratios = [];
for (let pair = 1; pair <= pairs; pair++) {
  const a = await run(sides[0]);
  console.log(`pair ${pair} A ${line(a)}`);
  const b = await run(sides[1]);
  console.log(`pair ${pair} B ${line(b)}`);
  ratios.push(b.rate / a.rate);
}
const faster = ratios.filter((r) => r > 1).length;
console.log(`B/A uploads/s per pair: ${ratios.map((r) => r.toFixed(2)).join(', ')}; B faster in ${faster} of ${pairs}`);
