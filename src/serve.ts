import { once } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { createFerry } from './main.js';
import { startPeriodicSweeps } from './sweeps.js';

/**
 * `ferry serve`: listen, and on SIGTERM/SIGINT shut down gracefully. Resolves with the exit code.
 *
 * Shutdown: stop accepting connections, ask every upload in flight to release its lock (its PATCH
 * then ends within the lock drain timeout, keeps the bytes that arrived and answers with the new
 * offset), close idle keep-alive connections, and exit 0 once nothing is left, or force the remaining
 * connections closed after FERRY_SHUTDOWN_TIMEOUT. A second signal exits at once.
 */
export async function serve(config: Config, logger: Logger): Promise<number> {
  const ferry = await createFerry(config, logger);
  const { server, locker } = ferry;
  // Embedded mode processes and sweeps here; with Redis that is `ferry worker`'s job (and a
  // `ferry sweep` CronJob's).
  if (!config.redisUrl) await ferry.startWorkers();
  const stopSweeps = config.redisUrl
    ? async () => undefined
    : startPeriodicSweeps(ferry.sweeper, config.sweepIntervalMs, logger);
  server.listen(config.port, config.host);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info(
    // The pool size as libuv read it at start (the launcher sets it, see launcher.cts; 4 is libuv's default).
    {
      host: config.host,
      port,
      data_dir: config.dataDir,
      thread_pool_size: Number(process.env.UV_THREADPOOL_SIZE || 4),
    },
    `ferry listening on http://${config.host}:${port}`,
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      stopping = true;
      logger.info({ signal, timeout_ms: config.shutdownTimeoutMs }, 'shutting down');
      const sweepIdle = setInterval(() => server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        logger.warn('shutdown timeout: closing the remaining connections');
        server.closeAllConnections();
      }, config.shutdownTimeoutMs);
      server.close(() => {
        clearInterval(sweepIdle);
        clearTimeout(deadline);
        void stopSweeps()
          .then(() => ferry.close())
          .finally(() => {
            logger.info('shut down');
            resolve(0);
          });
      });
      server.closeIdleConnections();
      locker.requestReleaseOfAll();
      // Event streams never end by themselves; clients reconnect (to another replica) with Last-Event-ID.
      ferry.eventStreams.closeAll();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
