// A connection's life on this node, in order: opened (registered, token
// watched, greeted, or resumed with its replay), changed (admin views and the
// live session record follow), closed (session parked, then every trace
// removed). The node's one ConnectionHooks object: every connection reports
// here, and here alone teardown happens.
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import type { Presence } from '../../engine/presence.js';
import type { SessionState } from '../../engine/sessions.js';
import { ServerMessages } from '../../protocol/server-messages.js';
import { FlushScheduler } from '../connection/batching.js';
import { Connection, type Admission, type ConnectionHooks, type StateChange } from '../connection/connection.js';
import type { NodeCounters } from './counters.js';
import type { Decoded } from '../connection/decode.js';
import { handleMessage, type HandlerContext } from './handlers.js';
import { summarize, type ConnectionRegistry } from './registry.js';
import type { SessionKeeper } from './sessions.js';
import type { SubscriptionManager } from '../delivery/subscription-manager.js';
import type { SubscriptionIndex } from '../delivery/subscription-index.js';
import type { TokenLifetime } from './token-lifetime.js';

export interface LifecycleDeps {
  config: Config;
  nodeId: string;
  counters: NodeCounters;
  registry: ConnectionRegistry;
  index: SubscriptionIndex<Connection>;
  subscriptions: SubscriptionManager;
  sessions: SessionKeeper;
  tokens: TokenLifetime;
  presence: Pick<Presence, 'setConnection' | 'releaseUserSlot'>;
  handlers: HandlerContext;
  log: Logger;
}

export class ConnectionLifecycle implements ConnectionHooks {
  readonly #deps: LifecycleDeps;
  /** Flushes the batches of every connection that asked for batched frames. */
  readonly #batcher: FlushScheduler;

  constructor(deps: LifecycleDeps) {
    this.#deps = deps;
    this.#batcher = new FlushScheduler(deps.config.batchMaxDelay);
  }

  /**
   * Registers an accepted socket and greets it. With a parked `session` of
   * the same user, restores its subscriptions and replays what it missed
   * before anything else is sent (the greeting is the connection's first
   * queued task: messages the client sends meanwhile wait behind it).
   */
  open(ws: WebSocket, admission: Admission, session?: SessionState): Connection {
    const { config, counters, registry, tokens, sessions, log } = this.#deps;
    const conn = new Connection(ws, admission, config, counters, this, this.#batcher);
    // Held from the start: nothing (a notification, a replayed event) may overtake the greeting.
    conn.hold();
    const following = registry.add(conn);
    tokens.watch(conn);
    const welcome = ServerMessages.connectionEstablished({
      connection_id: conn.id,
      session_id: conn.sessionId,
      user_id: conn.userId,
      heartbeat_interval: config.heartbeatInterval,
      resumed: false,
    });
    conn.enqueue(async () => {
      // The user's notifications reach this node before the client hears it is connected.
      await following.catch(() => {});
      if (session) {
        await sessions.resume(conn, session, welcome);
        this.changed(conn);
      } else {
        // Listed cluster-wide before the client hears it is connected (an admin on another node can find it then).
        this.#publishPresence(conn);
        conn.release([{ frame: JSON.stringify(welcome) }]);
      }
    });
    log.debug({ connectionId: conn.id, userId: conn.userId, sessionId: conn.sessionId, resumed: session !== undefined }, 'connection opened');
    return conn;
  }

  /** The connection's subscriptions changed: refresh the admin view and the live session record. */
  changed(conn: Connection): void {
    if (!this.#deps.registry.has(conn)) return;
    this.#publishPresence(conn);
    this.#deps.sessions.saveLive(conn);
  }

  /** The connection as cluster-wide admin views list it. */
  #publishPresence(conn: Connection): void {
    if (!conn.isOpen) return;
    this.#deps.presence.setConnection(conn.id, summarize(conn, this.#deps.nodeId, this.#deps.subscriptions.describe(conn)));
  }

  // ---- ConnectionHooks ------------------------------------------------------------

  stateChanged(conn: Connection, change: StateChange): void {
    if (change.reason === 'SLOW_CONSUMER') {
      this.#deps.counters.slowConsumerCloses++;
      this.#deps.log.warn({ connectionId: conn.id, userId: conn.userId }, 'slow consumer: send buffer over the cap; closing with 4008');
    } else if (change.reason === 'POLICY_VIOLATION') {
      this.#deps.log.warn({ connectionId: conn.id, userId: conn.userId }, 'inbound limits exceeded; closing with 1008');
    }
    if (change.newState === 'closed') this.#closed(conn);
  }

  message(conn: Connection, decoded: Decoded): Promise<void> {
    return handleMessage(this.#deps.handlers, conn, decoded);
  }

  pong(conn: Connection, confirmed: boolean): void {
    this.#deps.sessions.pong(conn, confirmed);
  }

  socketError(conn: Connection, err: Error): void {
    this.#deps.log.debug({ err, connectionId: conn.id }, 'socket error');
  }

  /**
   * Parks the session (it needs the subscriptions), removes every trace of
   * the connection, and leaves the registry last: whoever watches the
   * registry sees a connection gone only once nothing of it is left here.
   */
  #closed(conn: Connection): void {
    const { registry, sessions, index, tokens, presence, log } = this.#deps;
    if (!registry.has(conn)) return;
    sessions.park(conn);
    index.removeAll(conn);
    tokens.forget(conn);
    presence.setConnection(conn.id, null);
    if (conn.holdsUserSlot) presence.releaseUserSlot(conn.userId);
    registry.remove(conn);
    log.debug({ connectionId: conn.id, userId: conn.userId }, 'connection closed');
  }
}
