import type { Logger } from 'pino';
import type { ExpirySweeper } from './core/lifecycle/expiry-sweeper.js';

/**
 * Runs the expiry sweeper every `intervalMs` (never two at once in this process; the sweeper's own
 * lock keeps replicas apart). A failed sweep is logged and tried again next time. Returns a stop
 * function that waits for a sweep under way.
 */
export function startPeriodicSweeps(sweeper: ExpirySweeper, intervalMs: number, logger: Logger): () => Promise<void> {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = sweeper
      .sweepOnce()
      .then((result) => {
        if (result.expired > 0 || result.forgotten > 0) logger.info(result, 'expired uploads swept');
      })
      .catch((error: unknown) => logger.error({ err: error }, 'expiry sweep failed'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
