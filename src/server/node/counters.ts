// The node's running totals: plain numbers bumped where things happen (no
// allocation, no label lookup on the delivery path), read by /ws/health, the
// cluster registry and Prometheus at scrape time.

export interface NodeCounters {
  /** Frames written to clients. */
  messagesSent: number;
  /** Frames received from clients. */
  messagesReceived: number;
  /** Events accepted from producers through this node. */
  publications: number;
  /** Events written to client sockets (one per recipient). */
  deliveries: number;
  /** WebSocket handshakes refused before the 101. */
  handshakeRefusals: number;
  /** Inbound messages dropped by the rate limit. */
  rateLimited: number;
  /** Connections closed because their unsent bytes passed the cap (4008). */
  slowConsumerCloses: number;
}

export function createCounters(): NodeCounters {
  return { messagesSent: 0, messagesReceived: 0, publications: 0, deliveries: 0, handshakeRefusals: 0, rateLimited: 0, slowConsumerCloses: 0 };
}
