import express from 'express';
import type { Logger } from 'pino';

export interface ReadinessCheck {
  readonly name: string;
  readonly check: () => Promise<void>;
}

/** `/healthz`: the process answers. `/readyz`: every dependency answers (storage now, Redis later). */
export function healthRoutes(checks: readonly ReadinessCheck[], logger: Logger): express.Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ data: { status: 'ok' } });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      checks.map(async ({ name, check }) => {
        try {
          await check();
          return [name, 'ok'] as const;
        } catch (error) {
          logger.warn({ err: error, check: name }, 'readiness check failed');
          return [name, 'unavailable'] as const;
        }
      }),
    );
    const ready = results.every(([, state]) => state === 'ok');
    res
      .status(ready ? 200 : 503)
      .json({ data: { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) } });
  });
  return router;
}
