import type { Logger } from 'pino';
import type { ExpirySweeper } from './core/lifecycle/expiry-sweeper.js';

/**
 * Runs the expiry sweeper every `intervalMs` (never two at once in this process; the sweeper's own
 * lock keeps replicas apart). A failed sweep is logged and tried again next time. Returns a stop
 * function that waits for a sweep under way.
 */
export function startPeriodicSweeps(
  sweeper: ExpirySweeper,
  intervalMs: number,
  logger: Logger,
  /** Upkeep run before each sweep (distributed mode: rebuild registry indexes Redis lost). */
  upkeep: () => Promise<void> = async () => undefined,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = upkeep()
      .then(() => sweeper.sweepOnce())
      .then((result) => {
        if (result.expired + result.forgotten + result.expiredFiles + result.forgottenFiles > 0) {
          logger.info(result, 'expired uploads and files swept');
        }
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
