import type { WebhookTransport } from '../../core/processing/webhooks.js';

/** A receiver that neither answers nor fails within this long counts as a failed attempt. */
const TIMEOUT_MS = 10_000;

/**
 * Webhook requests over Node's fetch. Redirects are not followed: a signed delivery goes to the
 * configured URL or nowhere.
 */
export class FetchWebhookTransport implements WebhookTransport {
  async post(url: string, body: string, headers: Readonly<Record<string, string>>): Promise<number> {
    const response = await fetch(url, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    // The body is not needed; reading it lets the connection be reused.
    await response.arrayBuffer().catch(() => undefined);
    return response.status;
  }
}
