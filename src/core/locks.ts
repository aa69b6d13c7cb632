import type { RequestRelease } from './ports.js';

/**
 * Calls a lock holder's release callback on behalf of a waiter. The holder's callback must never
 * break the waiter, so whatever it throws or rejects with is dropped here.
 */
export function askToRelease(requestRelease: RequestRelease): void {
  try {
    void Promise.resolve(requestRelease()).catch(() => undefined);
  } catch {
    // ignored on purpose: see above
  }
}
