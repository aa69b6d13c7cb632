// Ferry-only workloads: what the tus checksum and concatenation extensions cost.
//
// Stock @tus/server + FileStore supports neither and plain has no protocol, so these run on
// Ferry alone and are compared with Ferry's own `large` run of the same bench (same file,
// same rounds): that ratio is the cost of the extension, free of machine-to-machine noise.
import * as tus from './tus-client.mjs';
import { bufferChecksum } from './checksums.mjs';

/** Variants that can run these workloads (only Ferry declares them). */
const supports = (extension) => (v) => v.extensions?.includes(extension) ?? false;

/**
 * Workload definitions in the shape run.mjs uses, to be run right after `large`.
 * `checksums` maps algorithm -> Upload-Checksum value of the large file.
 */
export function extensionWorkloads({ config, largeFile, large, checksums }) {
  const workloads = {};
  for (const algorithm of config.checksumAlgorithms) {
    workloads[`checksum-${algorithm}`] = {
      label: `large + ${algorithm} checksum (${config.largeMiB} MiB, 1 PATCH)`,
      applies: supports('checksum'),
      vsFerryLarge: true,
      run: async (v, agent) => [await v.uploadFile(largeFile, large.size, { agent, checksum: checksums[algorithm] })],
      verify: (v, refs) => v.verify(refs[0], large),
      bytes: large.size,
      uploads: 1,
    };
  }
  if (config.parts > 0) {
    workloads.parallel = {
      label: `parallel (${config.largeMiB} MiB as ${config.parts} partials + final POST)`,
      applies: supports('concatenation'),
      vsFerryLarge: true,
      // Timed from the first POST to the final 201, like a client sees it; the join alone
      // (the final POST) is kept as joinS. refs[0] is the final upload, then the partials,
      // so verify checks the joined file and cleanup deletes all of them.
      run: async (v, agent) => {
        const r = await v.uploadParallel(largeFile, large.size, { agent, parts: config.parts });
        return { refs: [{ url: r.url }, ...r.partUrls.map((url) => ({ url }))], extra: { joinS: r.joinS } };
      },
      verify: (v, refs) => v.verify(refs[0], large),
      bytes: large.size,
      uploads: 1,
    };
  }
  return workloads;
}

/**
 * Untimed end-to-end check of the extensions on the warm-up file, so a broken server fails in
 * seconds: every checksum algorithm accepted and the bytes stored, a wrong checksum refused
 * with 460 (otherwise the checksum workloads would time a server that ignores the header),
 * and a parallel upload joined correctly.
 */
export async function checkExtensions(v, { config, warmFile, warm, warmChecksums, agent }) {
  const refs = [];
  if (supports('checksum')(v)) {
    for (const algorithm of config.checksumAlgorithms) {
      const ref = await v.uploadFile(warmFile, warm.size, { agent, checksum: warmChecksums[algorithm] });
      refs.push(ref);
      await v.verify(ref, warm);
    }
    const body = Buffer.from('checksum check');
    const url = await tus.tusCreate(v.endpoint, body.length, { agent });
    refs.push({ url });
    const res = await tus.request(url, {
      method: 'PATCH',
      agent,
      headers: {
        'Tus-Resumable': '1.0.0',
        'Content-Type': 'application/offset+octet-stream',
        'Upload-Offset': '0',
        'Content-Length': String(body.length),
        'Upload-Checksum': bufferChecksum(Buffer.from('something else'), 'crc32c'),
      },
      body,
    });
    if (res.status !== 460) throw new Error(`${v.name}: a PATCH with a wrong checksum got ${res.status}, not 460`);
  }
  if (supports('concatenation')(v) && config.parts > 0) {
    const r = await v.uploadParallel(warmFile, warm.size, { agent, parts: config.parts });
    refs.push({ url: r.url }, ...r.partUrls.map((url) => ({ url })));
    await v.verify({ url: r.url }, warm);
  }
  // No cleanup on failure: the bench stops, and the temp dir goes with whatever was stored.
  // A Ferry that processes completed files: let it finish before the DELETEs (lib/processing.mjs).
  if (v.settle) await v.settle();
  await v.cleanup(refs);
}
