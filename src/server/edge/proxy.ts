// Client addresses behind proxies. The address every per-address limit keys
// on (the REST budget, the socket cap, the handshake rate) comes from here,
// for HTTP (Fastify's `trustProxy`) and for the WebSocket gate alike, through
// the same library Fastify uses (@fastify/proxy-addr): X-Forwarded-For is
// walked from the right, past the proxies trusted, and the first address that
// is not one of them is the client. Only the entries trusted proxies wrote
// are believed; whatever a client put on the left is never reached.
import type { IncomingMessage } from 'node:http';
import proxyaddr from '@fastify/proxy-addr';
import type { Config } from '../../config/config.js';

/** The `trustProxy` setting: off, a hop count (the nearest n peers are proxies), or the proxies' addresses and CIDRs. */
export type TrustProxySetting = Config['trustProxy'];

/** Whether the address `addr`, `hop` steps from the socket (0: the socket's peer), is a trusted proxy. */
export type TrustFunction = (addr: string, hop: number) => boolean;

/** The trust function of a setting (throws a TypeError naming a bad address); undefined when nothing is trusted. */
export function compileTrust(setting: TrustProxySetting): TrustFunction | undefined {
  if (setting === false) return undefined;
  if (typeof setting === 'number') return (_addr, hop) => hop < setting;
  return proxyaddr.compile([...setting]);
}

/** The client's address: the socket's, or, with trusted proxies, the nearest X-Forwarded-For entry they did not write. */
export function clientAddress(req: IncomingMessage, trust: TrustFunction | undefined): string {
  if (trust !== undefined) {
    const addr = proxyaddr(req, trust);
    if (addr) return addr;
  }
  return req.socket.remoteAddress ?? 'unknown';
}
