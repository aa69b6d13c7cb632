/**
 * A loopback TCP proxy in front of several targets (e.g. Ferry replicas), like a load balancer
 * without sticky sessions: each new client connection goes to the next target in turn.
 *
 *   const proxy = await startRoundRobinProxy({ targetPorts: replicas.map((r) => r.port) });
 *   // point clients at proxy.url; Ferry derives Location from the Host header, so upload URLs
 *   // it returns point at the proxy too.
 *   proxy.connectionsPerTarget();   // [4, 4, 3]
 *   await proxy.close();
 *
 * A target that refuses the connection (a killed replica) is skipped: the next one is tried, and
 * the client is disconnected only when every target refused. Bytes are forwarded unchanged, except
 * with `closeAfterResponse` (the default), where the proxy rewrites the request head of each
 * connection to `Connection: close`: the server then answers with `Connection: close` and closes
 * the connection after its response, so a keep-alive client (Node's global agent keeps connections
 * alive since Node 19, and tus-js-client 4's Node http stack uses it) opens a new connection, and
 * therefore reaches the next target, for every request. Without it, consecutive requests of one
 * client would mostly reuse one connection and stay on one target.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface RoundRobinProxyOptions {
  /** Ports on 127.0.0.1 to spread connections over, in round-robin order. */
  targetPorts: readonly number[];
  /** Default 127.0.0.1. */
  targetHost?: string;
  /**
   * Rewrite each connection's (first) request to `Connection: close`, so every HTTP request gets a
   * connection of its own and consecutive requests go to different targets. Default true.
   */
  closeAfterResponse?: boolean;
  /** How long to wait for a target to accept before trying the next one. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Called with one line per routing decision or skipped target (e.g. `console.log`). */
  log?: (line: string) => void;
}

export interface RoundRobinProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Client connections forwarded to each target so far (same order as `targetPorts`). */
  connectionsPerTarget(): number[];
  /** Connection attempts each target refused so far (same order as `targetPorts`). */
  refusalsPerTarget(): number[];
  /** Client connections accepted so far (forwarded or not). */
  connections(): number;
  /** Stop listening and destroy every open socket. */
  close(): Promise<void>;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;

/** `Connection: close` instead of whatever the request head said about the connection. */
function withConnectionClose(head: Buffer): Buffer {
  const lines = head.toString('latin1').split('\r\n');
  const kept = lines.filter((line, i) => i === 0 || !/^(connection|keep-alive)\s*:/i.test(line));
  kept.splice(1, 0, 'Connection: close');
  return Buffer.from(kept.join('\r\n'), 'latin1');
}

export async function startRoundRobinProxy(opts: RoundRobinProxyOptions): Promise<RoundRobinProxy> {
  const targets = [...opts.targetPorts];
  if (targets.length === 0) throw new Error('round-robin-proxy: no targets');
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const rewrite = opts.closeAfterResponse ?? true;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
  const log = opts.log;
  const perTarget = targets.map(() => 0);
  const refusals = targets.map(() => 0);
  let next = 0;
  let conns = 0;
  const sockets = new Set<Socket>();

  /** Connects to the next target that accepts; undefined when every target refused. */
  async function connectNext(): Promise<{ socket: Socket; index: number } | undefined> {
    for (let tried = 0; tried < targets.length; tried++) {
      const index = next;
      next = (next + 1) % targets.length;
      const socket = await new Promise<Socket | undefined>((resolve) => {
        const s = connect({ host: targetHost, port: targets[index]!, allowHalfOpen: false });
        const timer = setTimeout(() => {
          s.destroy();
          resolve(undefined);
        }, connectTimeoutMs);
        s.once('connect', () => {
          clearTimeout(timer);
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', () => {
          clearTimeout(timer);
          s.destroy();
          resolve(undefined);
        });
      });
      if (socket) return { socket, index };
      refusals[index]!++;
      log?.(`[round-robin-proxy] target ${index} (port ${targets[index]}) refused; trying the next one`);
    }
    return undefined;
  }

  const server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (client) => {
    conns++;
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());

    void connectNext().then((target) => {
      if (!target || client.destroyed) {
        target?.socket.destroy();
        client.destroy();
        return;
      }
      const { socket: upstream, index } = target;
      perTarget[index]!++;
      log?.(`[round-robin-proxy] connection #${conns} → target ${index} (port ${targets[index]})`);
      sockets.add(upstream);
      // A target that ended its side normally (after a `Connection: close` response) lets the
      // pipe end the client once the response is flushed; any other close cuts the client at once.
      let upstreamEnded = false;
      upstream.once('end', () => (upstreamEnded = true));
      upstream.once('close', (hadError) => {
        sockets.delete(upstream);
        if (hadError || !upstreamEnded) client.destroy();
      });
      client.once('close', () => upstream.destroy());
      upstream.on('error', () => upstream.destroy());
      upstream.pipe(client);

      if (!rewrite) {
        client.pipe(upstream);
        client.resume();
        return;
      }
      // Buffer the request head, rewrite it, then forward everything else unchanged.
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(HEAD_END);
        if (end === -1) {
          if (head.length > MAX_HEAD_BYTES) client.destroy();
          return;
        }
        client.off('data', onData);
        client.pause();
        upstream.write(withConnectionClose(head.subarray(0, end)));
        upstream.write(head.subarray(end));
        client.pipe(upstream);
        client.resume();
      };
      client.on('data', onData);
      client.resume();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('round-robin-proxy: no address');
  const port = addr.port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connectionsPerTarget: () => [...perTarget],
    refusalsPerTarget: () => [...refusals],
    connections: () => conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        server.close(() => resolve());
      }),
  };
}
