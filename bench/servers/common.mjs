// Shared start-up for the reference servers, run as child processes of bench/run.mjs.
//
// Protocol with the parent: the data directory comes in BENCH_DATA_DIR; once listening,
// the server prints one JSON line {"listening":true,"port":N} on stdout. The parent keeps
// our stdin open; when it closes (the parent exited, even by a crash) we exit too, so no
// server outlives a benchmark.

export function serve(server, name) {
  // Node's default requestTimeout (300 s) would cut a slow large PATCH/PUT; the bench
  // decides when something takes too long, not the server.
  server.requestTimeout = 0;
  server.on('error', (err) => {
    console.error(`${name}: ${err.stack ?? err}`);
    process.exit(1);
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ listening: true, port: server.address().port }) + '\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
}

export function dataDir() {
  const dir = process.env.BENCH_DATA_DIR;
  if (!dir) {
    console.error('BENCH_DATA_DIR is not set');
    process.exit(2);
  }
  return dir;
}
