// The connection registry: the only writer of this node's connections and of
// the per-user index. A user with a connection here makes the node follow the
// user's notification stream; others may watch the registry change.
import type { ConnectionSummary } from '../../engine/presence.js';
import { userStream } from '../../protocol/constants.js';
import type { SubscriptionView } from '../../protocol/server-messages.js';
import type { Connection } from '../connection/connection.js';
import type { Interest } from '../delivery/subscription-index.js';

/** A connection as admin views list it, cluster-wide (the one place it is built). */
export function summarize(conn: Connection, nodeId: string, subscriptions: SubscriptionView[]): ConnectionSummary {
  return {
    connection_id: conn.id,
    node_id: nodeId,
    user_id: conn.userId,
    session_id: conn.sessionId,
    connected_at: new Date(conn.connectedAtMs).toISOString(),
    subscriptions,
  };
}

export type RegistryListener = (change: { added?: Connection; removed?: Connection; size: number }) => void;

/** What the rest of the server may read of the registry. */
export interface ConnectionsView {
  readonly size: number;
  get(connectionId: string): Connection | undefined;
  values(): IterableIterator<Connection>;
  /** Calls `listener` after every add and remove; returns a function that stops it. */
  onChange(listener: RegistryListener): () => void;
}

export class ConnectionRegistry implements ConnectionsView {
  readonly #byId = new Map<string, Connection>();
  readonly #byUser = new Map<string, Set<Connection>>();
  readonly #listeners = new Set<RegistryListener>();
  readonly #interest: Interest;
  #totalEver = 0;

  constructor(interest: Interest) {
    this.#interest = interest;
  }

  get size(): number {
    return this.#byId.size;
  }

  get userCount(): number {
    return this.#byUser.size;
  }

  get totalEver(): number {
    return this.#totalEver;
  }

  get(connectionId: string): Connection | undefined {
    return this.#byId.get(connectionId);
  }

  has(conn: Connection): boolean {
    return this.#byId.get(conn.id) === conn;
  }

  values(): IterableIterator<Connection> {
    return this.#byId.values();
  }

  /** The user's connections on this node. */
  ofUser(userId: string): ReadonlySet<Connection> | undefined {
    return this.#byUser.get(userId);
  }

  /** Registers a connection. Resolves once the engine delivers the user's notifications to this node. */
  add(conn: Connection): Promise<void> {
    this.#byId.set(conn.id, conn);
    this.#totalEver++;
    let userConns = this.#byUser.get(conn.userId);
    if (!userConns) this.#byUser.set(conn.userId, (userConns = new Set()));
    userConns.add(conn);
    // Counted per connection: the engine follows the stream while any of the user's connections is here.
    const following = this.#interest.follow(userStream(conn.userId));
    following.catch(() => {}); // the engine re-subscribes when it is back; the caller decides whether to wait
    this.#notify({ added: conn, size: this.#byId.size });
    return following;
  }

  /** Unregisters a connection; false when it was not registered. */
  remove(conn: Connection): boolean {
    if (this.#byId.get(conn.id) !== conn) return false;
    this.#byId.delete(conn.id);
    const userConns = this.#byUser.get(conn.userId)!;
    userConns.delete(conn);
    if (userConns.size === 0) this.#byUser.delete(conn.userId);
    this.#interest.unfollow(userStream(conn.userId));
    this.#notify({ removed: conn, size: this.#byId.size });
    return true;
  }

  onChange(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(change: Parameters<RegistryListener>[0]): void {
    for (const listener of this.#listeners) listener(change);
  }
}
