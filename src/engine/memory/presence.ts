// Presence on one node: the registry is this process, there are no remote
// connections, user slots are a local count, and every lease is this node's.
import type { ConnectionSummary, NodeReport, Presence } from '../presence.js';

export class MemoryPresence implements Presence {
  #report: NodeReport | undefined;
  #onClose: (connectionId: string) => void = () => {};
  readonly #userSlots = new Map<string, number>();

  async reportNode(report: NodeReport): Promise<void> {
    this.#report = report;
  }

  async nodes(): Promise<NodeReport[]> {
    return this.#report ? [this.#report] : [];
  }

  setConnection(_connectionId: string, _summary: ConnectionSummary | null): void {
    // The node lists its own connections; there are no remote ones.
  }

  async remoteConnections(): Promise<ConnectionSummary[]> {
    return [];
  }

  async claimUserSlot(userId: string, cap: number): Promise<boolean> {
    const used = this.#userSlots.get(userId) ?? 0;
    if (used >= cap) return false;
    this.#userSlots.set(userId, used + 1);
    return true;
  }

  async requestClose(_nodeId: string, connectionId: string): Promise<void> {
    this.#onClose(connectionId); // one node: every request is for this one
  }

  onCloseRequest(handler: (connectionId: string) => void): void {
    this.#onClose = handler;
  }

  async holdLease(): Promise<boolean> {
    return true; // the only node
  }

  async releaseLease(): Promise<void> {}

  releaseUserSlot(userId: string): void {
    const used = (this.#userSlots.get(userId) ?? 0) - 1;
    if (used > 0) this.#userSlots.set(userId, used);
    else this.#userSlots.delete(userId);
  }
}
