// Reference server: stock @tus/server + @tus/file-store with no options beyond the
// required ones, mounted on a bare node:http server at /files. This is what Ferry is
// built on, so ferry/bare-tus shows what Ferry's own layers add (or save).
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';
import { dataDir, serve } from './common.mjs';

const tus = new Server({
  path: '/files',
  datastore: new FileStore({ directory: dataDir() }),
});

const server = http.createServer((req, res) => {
  tus.handle(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) res.writeHead(500).end();
  });
});

serve(server, 'bare-tus');
