/**
 * Ferry's command-line entry (`ferry`, `npm start`, the image): sizes libuv's thread pool to the
 * machine, then runs the CLI (cli.ts) with the same arguments.
 *
 * The pool does Ferry's file work (every open, write and close of an upload's bytes and records).
 * libuv gives it 4 threads whatever the machine; on one or two CPUs those threads outnumber the CPUs,
 * and waking and descheduling them cost more than the file calls themselves: on a 2-CPU machine,
 * with 2 threads small uploads ran 12–27% and large ones about 10% faster in the bench (README,
 * Performance). So: as many threads as CPUs, at least 2 (a thread stuck in a slow DNS lookup must not
 * stop all file work), at most libuv's 4. A `UV_THREADPOOL_SIZE` in the environment is left as set.
 *
 * CommonJS on purpose: libuv fixes the size when the pool starts, and Node starts it to read an ES
 * module entry and its imports, before any of their code runs. Only a CommonJS entry runs first.
 */
// A CommonJS module imports with require (verbatimModuleSyntax forbids `import … from` here).
// eslint-disable-next-line @typescript-eslint/no-require-imports
import os = require('node:os');

if (!process.env.UV_THREADPOOL_SIZE) {
  process.env.UV_THREADPOOL_SIZE = String(Math.min(4, Math.max(2, os.availableParallelism())));
}
void import('./cli.js');
