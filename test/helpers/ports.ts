/**
 * Loopback port helpers for tests.
 *
 * `freePort()` asks the kernel for an unused TCP port on 127.0.0.1 (listen on port 0, read the
 * port, close). There is an unavoidable race between closing and the caller binding the port;
 * on a test machine it is negligible.
 */
import { createServer } from 'node:net';

/** Resolve with a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: unexpected server address'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
