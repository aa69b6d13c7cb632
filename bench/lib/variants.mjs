// The three servers under comparison, behind one interface so the workloads and the
// measurement code don't care which one they talk to:
//
//   upload(file|buffer) -> ref     store one upload (the timed part)
//   uploadParallel(file) -> refs   ferry only, with `extensions` (see lib/extensions.mjs)
//   verify(ref, expected)          sha256 of what the server stored == the source
//   cleanup(refs)                  remove stored uploads so the disk doesn't fill
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { startFerry, startReferenceServer, stopServer } from './servers.mjs';
import * as tus from './tus-client.mjs';
import { mapConcurrent, sha256File } from './util.mjs';

const benchDir = path.resolve(import.meta.dirname, '..');
const repoRoot = path.resolve(benchDir, '..');
export const FERRY_CLI = path.join(repoRoot, 'dist', 'cli.js');

export const VARIANT_NAMES = ['plain', 'bare-tus', 'ferry'];

export function mismatch(what, expected, got) {
  return new Error(
    `verification failed for ${what}: expected ${expected.size} B sha256 ${expected.sha256}, got ${got.size} B sha256 ${got.sha256}`,
  );
}

async function verifyDiskFile(file, expected) {
  const { size } = await stat(file);
  const got = { size, sha256: await sha256File(file) };
  if (got.size !== expected.size || got.sha256 !== expected.sha256) throw mismatch(file, expected, got);
}

/** Plain node:http PUT-to-file; files are named by the bench, so we know where they are. */
async function plain(tmp) {
  const dataDir = path.join(tmp, 'plain-data');
  await mkdir(dataDir);
  const srv = await startReferenceServer({
    script: path.join(benchDir, 'servers', 'plain.mjs'),
    dataDir,
    logFile: path.join(tmp, 'plain.log'),
  });
  let n = 0;
  const put = async (body, length, agent) => {
    const name = `u${++n}`;
    await tus.plainPut(`http://127.0.0.1:${srv.port}/upload/${name}`, body, length, { agent });
    return { path: path.join(dataDir, name) };
  };
  return {
    name: 'plain',
    protocol: 'plain',
    ...srv,
    // The plain server has no chunked mode: one PUT, whatever chunkSize says.
    uploadFile: (file, size, { agent }) => put(createReadStream(file), size, agent),
    uploadBuffer: (buf, { agent }) => put(buf, buf.length, agent),
    verify: (ref, expected) => verifyDiskFile(ref.path, expected),
    cleanup: (refs) => Promise.all(refs.map((r) => rm(r.path, { force: true }))),
    stop: () => stopServer(srv.child),
  };
}

/** Stock @tus/server + FileStore: the FileStore keeps <dir>/<id> and <dir>/<id>.json. */
async function bareTus(tmp) {
  const dataDir = path.join(tmp, 'bare-tus-data');
  await mkdir(dataDir);
  const srv = await startReferenceServer({
    script: path.join(benchDir, 'servers', 'bare-tus.mjs'),
    dataDir,
    logFile: path.join(tmp, 'bare-tus.log'),
  });
  const endpoint = `http://127.0.0.1:${srv.port}/files`;
  const ref = (url) => ({ url, path: path.join(dataDir, path.posix.basename(new URL(url).pathname)) });
  return {
    name: 'bare-tus',
    protocol: 'tus',
    ...srv,
    uploadFile: async (file, size, opts) => ref(await tus.tusUploadFile(endpoint, file, size, opts)),
    uploadBuffer: async (buf, opts) => ref(await tus.tusUploadBuffer(endpoint, buf, opts)),
    verify: (r, expected) => verifyDiskFile(r.path, expected),
    // Removing the files directly is cheaper than DELETE and the FileStore keeps no
    // state about an upload in memory once its requests are done.
    cleanup: (refs) =>
      Promise.all(refs.flatMap((r) => [rm(r.path, { force: true }), rm(`${r.path}.json`, { force: true })])),
    stop: () => stopServer(srv.child),
  };
}

/**
 * Ferry, as shipped: `node dist/cli.js serve`. We don't know (or want to depend on) its
 * storage layout, so verification downloads through GET and cleanup uses tus DELETE.
 * `startFerryVariant` also makes the ferry-s3 variant (lib/s3.mjs): another name, its own
 * data dir and log, extra environment (the S3 settings) and no extension workloads.
 */
export async function startFerryVariant(
  tmp,
  { name = 'ferry', env = {}, nodeArgs = [], extensions = ['checksum', 'concatenation'] } = {},
) {
  const dataDir = path.join(tmp, `${name}-data`);
  await mkdir(dataDir);
  const srv = await startFerry({
    cli: FERRY_CLI,
    cwd: repoRoot,
    dataDir,
    logFile: path.join(tmp, `${name}.log`),
    env,
    nodeArgs,
  });
  const endpoint = `http://127.0.0.1:${srv.port}/files/`;
  let deleteWorks = true;
  return {
    name,
    protocol: 'tus',
    ...srv,
    dataDir,
    endpoint,
    // tus extensions the ferry-only workloads (lib/extensions.mjs) need; stock @tus/server +
    // FileStore has neither, so bare-tus declares none.
    extensions,
    // opts.checksum (Upload-Checksum of the whole file) passes through to the single PATCH.
    uploadFile: async (file, size, opts) => ({ url: await tus.tusUploadFile(endpoint, file, size, opts) }),
    uploadBuffer: async (buf, opts) => ({ url: await tus.tusUploadBuffer(endpoint, buf, opts) }),
    // -> { url (final upload), partUrls, joinS }
    uploadParallel: (file, size, opts) => tus.tusUploadParallel(endpoint, file, size, opts),
    verify: async (ref, expected) => {
      const got = await tus.hashDownload(ref.url); // streamed and hashed, never buffered
      if (got.status !== 200) throw new Error(`verification failed: GET ${ref.url} answered ${got.status}`);
      if (got.size !== expected.size || got.sha256 !== expected.sha256) throw mismatch(ref.url, expected, got);
    },
    cleanup: async (refs) => {
      if (!deleteWorks) return; // everything goes with the temp dir at the end
      const agent = tus.makeAgent(8);
      try {
        const ok = await mapConcurrent(refs, 8, (r) => tus.tusDelete(r.url, { agent }));
        if (ok.includes(false)) {
          deleteWorks = false;
          console.error(`warning: ${name} did not answer DELETE with 204; uploads stay stored until the end`);
        }
      } finally {
        agent.destroy();
      }
    },
    stop: () => stopServer(srv.child),
  };
}

const ferry = (tmp) => startFerryVariant(tmp);

const factories = { plain, 'bare-tus': bareTus, ferry };

export function startVariant(name, tmp) {
  const f = factories[name];
  if (!f) throw new Error(`unknown variant ${name}; known: ${VARIANT_NAMES.join(', ')}`);
  return f(tmp);
}
