// Roles, permissions and the Principal a verified token becomes.
//
// Permissions are strings: `websocket:connect`, `websocket:subscribe`,
// `websocket:admin`, `events:publish`, `agent:{id}:monitor`. The only wildcard
// is `agent:*:monitor` (every agent); a role mapped to `*` may do everything.

export const Permissions = {
  CONNECT: 'websocket:connect',
  SUBSCRIBE: 'websocket:subscribe',
  ADMIN: 'websocket:admin',
  PUBLISH: 'events:publish',
  MONITOR_ALL: 'agent:*:monitor',
} as const;

/** Role → permissions. `*` means every permission. Override or extend with the `roles` setting. */
export const DEFAULT_ROLES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  admin: Object.freeze(['*']),
  researcher: Object.freeze([Permissions.CONNECT, Permissions.SUBSCRIBE, Permissions.MONITOR_ALL]),
  developer: Object.freeze([Permissions.CONNECT, Permissions.SUBSCRIBE, Permissions.MONITOR_ALL, Permissions.PUBLISH]),
  viewer: Object.freeze([Permissions.CONNECT, Permissions.SUBSCRIBE]),
});

export type RoleTable = Readonly<Record<string, readonly string[]>>;

export function monitorPermission(agentId: string): string {
  return `agent:${agentId}:monitor`;
}

/**
 * Which key verified a token, when it can stop verifying before the token
 * expires: the previous HS secret (at its cut-off), or a JWKS key (when it
 * leaves the set; the token is kept to check it against the new set).
 */
export type Signing = { readonly via: 'previous-secret'; readonly retiresAt: number } | { readonly via: 'jwks'; readonly token: string };

/** Who is on the other end of a connection or request, as the token says. Immutable: a refreshed token makes a new one. */
export class Principal {
  readonly userId: string;
  readonly roles: readonly string[];
  /** Effective permissions: the roles' plus the token's own. */
  readonly permissions: ReadonlySet<string>;
  /** Token expiry, seconds since the epoch, when the token has one. */
  readonly expiresAt: number | undefined;
  /** Set when the key that verified the token can be retired while it lives (key rotation). */
  readonly signing: Signing | undefined;
  readonly #all: boolean;
  readonly #monitorAll: boolean;

  constructor(userId: string, roles: readonly string[], tokenPermissions: readonly string[], table: RoleTable, expiresAt?: number, signing?: Signing) {
    this.userId = userId;
    this.roles = roles;
    this.expiresAt = expiresAt;
    this.signing = signing;
    const perms = new Set<string>();
    let all = false;
    for (const role of roles) {
      const granted = Object.hasOwn(table, role) ? table[role] : undefined;
      for (const p of granted ?? []) {
        if (p === '*') all = true;
        else perms.add(p);
      }
    }
    // A token may add permissions but never the role-only `*`.
    for (const p of tokenPermissions) if (p !== '*') perms.add(p);
    this.permissions = perms;
    this.#all = all;
    this.#monitorAll = all || perms.has(Permissions.MONITOR_ALL);
  }

  /** Whether this principal may see every agent (`agent:*:monitor`, or a role with everything). */
  get monitorsAll(): boolean {
    return this.#monitorAll;
  }

  /** The agents named one by one in this principal's permissions (`agent:{id}:monitor`). */
  monitoredAgents(): Set<string> {
    const agents = new Set<string>();
    for (const p of this.permissions) {
      if (p.startsWith('agent:') && p.endsWith(':monitor') && p !== Permissions.MONITOR_ALL) agents.add(p.slice('agent:'.length, -':monitor'.length));
    }
    return agents;
  }

  has(permission: string): boolean {
    return this.#all || this.permissions.has(permission);
  }

  /**
   * May this principal see events of `agentId`? Exact id match or `agent:*:monitor`.
   * `key` is `monitorPermission(agentId)` when the caller already built it (fan-out does, once per event).
   */
  canMonitor(agentId: string, key?: string): boolean {
    return this.#monitorAll || this.permissions.has(key ?? monitorPermission(agentId));
  }
}
