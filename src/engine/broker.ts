// The engine seam. Everything above it (connections, subscriptions, REST)
// talks to a Broker and never knows which engine runs: the in-memory engine
// (one process, the reference implementation) or, later, Redis.
//
// A Broker owns streams: one per agent (`agent:{id}`), `system`, and one per
// user (`user:{id}`). Publishing appends to a stream, giving the event the
// stream's next offset (+1, no gaps) and its epoch (which changes whenever
// the stream's history is lost), and hands the publication to the node's
// handler, in offset order per stream.
import type { DeliveredEvent } from '../protocol/events.js';

/** An event without the fields the broker assigns. */
export type UnsequencedEvent = Omit<DeliveredEvent, 'offset' | 'epoch'>;

export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface Publication {
  stream: string;
  event: DeliveredEvent;
  /**
   * Recipients on this node, when the engine delivered synchronously inside
   * `publish` (the memory engine does); undefined otherwise.
   */
  localRecipients?: number;
  /** True when `publish` found the idempotency key and returned the original event. */
  duplicate?: boolean;
}

export interface HistoryQuery {
  /** Return events with offset > since (default: from the oldest kept). */
  since?: number;
  limit?: number;
}

export interface HistoryPage {
  events: DeliveredEvent[];
  position: StreamPosition;
  /** False when `since` is older than the oldest event kept: events were lost between. */
  complete: boolean;
}

/** Called for every publication, in offset order per stream. Returns the number of local recipients. */
export type PublicationHandler = (publication: Publication) => number;

export interface Broker {
  /** Engine name, for /readyz and logs. */
  readonly name: string;
  /** Registers the node's handler. Call once, before publishing. */
  start(handler: PublicationHandler): Promise<void>;
  /** Appends to the stream and delivers. With `idempotencyKey`, a repeat returns the original publication. */
  publish(stream: string, event: UnsequencedEvent, idempotencyKey?: string): Promise<Publication>;
  history(stream: string, query: HistoryQuery): Promise<HistoryPage>;
  position(stream: string): Promise<StreamPosition>;
  close(): Promise<void>;
}
