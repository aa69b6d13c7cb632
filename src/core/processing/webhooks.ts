import { createHmac } from 'node:crypto';
import type { Clock, Job } from '../ports.js';

/** Sends a webhook request; resolves with the HTTP status (the adapter owns the HTTP client). */
export interface WebhookTransport {
  post(url: string, body: string, headers: Readonly<Record<string, string>>): Promise<number>;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (API.md §3.8), as Stripe signs. */
export function webhookSignature(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

export interface WebhookDelivererOptions {
  readonly url: string;
  readonly secret: string;
  readonly transport: WebhookTransport;
  readonly clock: Clock;
  /**
   * Turns a file record into its public JSON form (the same the REST API answers with), as of the
   * event's time, so every attempt of a delivery carries the same body.
   */
  readonly present: (file: Record<string, unknown>, at: string) => unknown;
}

/**
 * Delivers one event to the user's backend. The body is the same on every attempt; the signature is
 * made fresh each time (receivers reject old timestamps). Anything but a 2xx throws, and the job
 * queue retries with backoff. `Ferry-Delivery` (the event id) lets receivers drop duplicates.
 */
export class WebhookDeliverer {
  constructor(private readonly options: WebhookDelivererOptions) {}

  readonly handle = async (job: Job): Promise<void> => {
    const { deliveryId, event, fileId, at, file } = job.data as {
      deliveryId: string;
      event: string;
      fileId: string;
      at: string;
      file: Record<string, unknown>;
    };
    const body = JSON.stringify({ event, file_id: fileId, at, file: this.options.present(file, at) });
    const timestamp = Math.floor(this.options.clock.now().getTime() / 1000);
    const status = await this.options.transport.post(this.options.url, body, {
      'Content-Type': 'application/json',
      'Ferry-Signature': webhookSignature(this.options.secret, timestamp, body),
      'Ferry-Delivery': deliveryId,
      'Ferry-Event': event,
    });
    if (status < 200 || status > 299) throw new Error(`webhook answered ${status}`);
  };
}
