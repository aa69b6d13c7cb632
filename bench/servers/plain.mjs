// Reference server: the cheapest reasonable way to receive an upload with node:http.
// PUT /upload/<name> streams the body into <BENCH_DATA_DIR>/<name> and answers 204.
// Everything tus adds (protocol checks, metadata, locking, web streams) is absent here,
// so the other variants' ratios against this one show what that machinery costs.
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { dataDir, serve } from './common.mjs';

const dir = dataDir();

const server = http.createServer(async (req, res) => {
  const m = req.url.match(/^\/upload\/([A-Za-z0-9._-]+)$/);
  if (req.method !== 'PUT' || !m || m[1].startsWith('.')) {
    res.writeHead(404).end();
    return;
  }
  try {
    await pipeline(req, createWriteStream(path.join(dir, m[1])));
    res.writeHead(204).end();
  } catch (err) {
    if (!res.headersSent) res.writeHead(500).end(String(err.message));
  }
});

serve(server, 'plain');
