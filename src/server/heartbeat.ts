// Heartbeat: every interval, a protocol ping frame and the ESCAI JSON ping to
// every connection; a sweep terminates connections silent for longer than
// interval + timeout. Any inbound frame (message, ping, pong) counts as alive.
// One timer pair per node, not per connection.
import { isoNow } from '../protocol/messages.js';
import type { RealtimeNode } from './node.js';

export class Heartbeat {
  readonly #node: RealtimeNode;
  readonly #intervalMs: number;
  readonly #deadlineMs: number;
  #pingTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(node: RealtimeNode) {
    this.#node = node;
    this.#intervalMs = node.config.heartbeatInterval * 1000;
    this.#deadlineMs = this.#intervalMs + node.config.heartbeatTimeout * 1000;
  }

  start(): void {
    this.#pingTimer = setInterval(() => this.#ping(), this.#intervalMs);
    // Sweep often enough that a dead connection outlives its deadline by at most a quarter of the timeout.
    const sweepMs = Math.max(10, Math.min(this.#intervalMs, this.#node.config.heartbeatTimeout * 1000) / 4);
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#pingTimer.unref();
    this.#sweepTimer.unref();
    this.#node.heartbeatRunning = true;
  }

  stop(): void {
    clearInterval(this.#pingTimer);
    clearInterval(this.#sweepTimer);
    this.#node.heartbeatRunning = false;
  }

  #ping(): void {
    const timestamp = isoNow();
    // One buffer for every connection this tick (a string would be encoded again per send).
    const frame = Buffer.from(JSON.stringify({ type: 'ping', timestamp }));
    for (const conn of this.#node.connections.values()) {
      if (!conn.isOpen) continue;
      conn.ping();
      conn.send(frame);
      conn.lastPing = timestamp;
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const conn of this.#node.connections.values()) {
      if (now - conn.lastSeen <= this.#deadlineMs) continue;
      this.#node.log.info({ connectionId: conn.id, userId: conn.userId, silentMs: Math.round(now - conn.lastSeen) }, 'heartbeat timeout; terminating');
      conn.terminate();
      // Clean up now rather than waiting for the socket's close event.
      this.#node.detach(conn);
    }
  }
}
