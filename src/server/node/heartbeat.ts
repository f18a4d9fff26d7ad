// Heartbeat: every interval, a protocol ping frame and the ESCAI JSON ping to
// every connection; a sweep terminates connections silent for longer than
// interval + timeout (terminating closes them: the lifecycle removes every
// trace at once). Any inbound frame (message, ping, pong) counts as alive.
// One timer pair per node, not per connection.
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import { ServerMessages } from '../../protocol/server-messages.js';
import type { Connection } from '../connection/connection.js';

export class Heartbeat {
  readonly #connections: { values(): IterableIterator<Connection> };
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #pingTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(deps: { connections: { values(): IterableIterator<Connection> }; config: Pick<Config, 'heartbeatInterval' | 'heartbeatTimeout'>; log: Logger }) {
    this.#connections = deps.connections;
    this.#log = deps.log;
    this.#intervalMs = deps.config.heartbeatInterval * 1000;
    this.#timeoutMs = deps.config.heartbeatTimeout * 1000;
  }

  get running(): boolean {
    return this.#pingTimer !== undefined;
  }

  start(): void {
    this.#pingTimer = setInterval(() => this.#ping(), this.#intervalMs);
    // Sweep often enough that a dead connection outlives its deadline by at most a quarter of the timeout.
    const sweepMs = Math.max(10, Math.min(this.#intervalMs, this.#timeoutMs) / 4);
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#pingTimer.unref();
    this.#sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.#pingTimer);
    clearInterval(this.#sweepTimer);
    this.#pingTimer = undefined;
  }

  #ping(): void {
    const message = ServerMessages.ping();
    // One buffer for every connection this tick (a string would be encoded again per send).
    const frame = Buffer.from(JSON.stringify(message));
    for (const conn of this.#connections.values()) conn.heartbeat(frame, message.timestamp);
  }

  #sweep(): void {
    const deadline = performance.now() - this.#intervalMs - this.#timeoutMs;
    for (const conn of [...this.#connections.values()]) {
      if (conn.lastSeen >= deadline) continue;
      this.#log.info({ connectionId: conn.id, userId: conn.userId, silentMs: Math.round(performance.now() - conn.lastSeen) }, 'heartbeat timeout; terminating');
      conn.terminate();
    }
  }
}
