// The commands the orchestrator (bench/run.ts) sends to its load generators,
// typed at both ends (bench/load-subscribers.ts, bench/load-producer.ts).
import type { Kind, SubscribeSpec } from './wire.js';

export interface ConnectArg {
  kind: Kind;
  /** Server base URL (http://host:port). */
  base: string;
  /** Global index of this generator's first connection (names and sampling). */
  first: number;
  count: number;
  /** Connections in flight at once. */
  concurrency: number;
  /** Every `sampleEvery`-th connection (global index) parses frames for latency; 0 = none. */
  sampleEvery: number;
  /** Subscription of connection i: specs[i % specs.length]. */
  specs: SubscribeSpec[];
  /** Distinct users the connections are spread over (ESCAI tokens are signed per user). */
  users: number;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  firstError?: string;
  elapsedMs: number;
  /** Per-connect time (socket opened → subscription confirmed), µs. */
  connectUs: number[];
}

export interface Reading {
  deliveries: number;
  elapsedMs: number;
  /** Latency samples since the mark, µs (capped). */
  latencyUs: number[];
  /** Subscribers closed by the server (e.g. slow consumers) since connect. */
  closed: number;
}

export type SubscriberApi = {
  connect: { arg: ConnectArg; result: ConnectResult };
  /** Starts a measurement window. */
  mark: { arg: null; result: null };
  /** Ends it: deliveries and latencies since the mark. */
  read: { arg: null; result: Reading };
  /** Deliveries since connect (to see when a backlog has drained). */
  total: { arg: null; result: number };
};

export interface ProducerConnectArg {
  kind: Kind;
  base: string;
}

export interface RunArg {
  /** Events per second, open loop (sent on a 1 ms timer, each stamped with its send time). */
  rate: number;
  seconds: number;
  /** Events go to agents[seq % agents.length]; each agent's events alternate confidence 0.7 / 0.3. */
  agents: string[];
}

export interface RunResult {
  published: number;
  errors: number;
  firstError?: string;
}

export type ProducerApi = {
  connect: { arg: ProducerConnectArg; result: null };
  run: { arg: RunArg; result: RunResult };
};
