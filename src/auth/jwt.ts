// Token verification with jose: algorithms pinned (HS256 with the shared
// secret; RS/ES only through a configured JWKS), exp/nbf with an explicit
// clock tolerance, optional iss/aud. Every failure becomes a catalogue code.
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { EscaiError } from '../protocol/codes.js';
import { Principal, type RoleTable, type Signing } from './permissions.js';

const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'];

export interface VerifierOptions {
  /** HS256 shared secret (at least 32 bytes). */
  secret?: string | undefined;
  /** The secret before the last rotation: it still verifies until `previousSecretUntil` (ms since the epoch). */
  previousSecret?: string | undefined;
  previousSecretUntil?: number | undefined;
  /** JWKS URL for RS/ES tokens. */
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Seconds of clock skew accepted on exp/nbf. */
  clockToleranceSec: number;
  roles: RoleTable;
}

export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
  /**
   * Fetches the JWKS again; when the set changed, forgets the verified
   * tokens it signed and answers which of `principals` (JWKS-signed ones)
   * no longer verify: their key left the set. Empty without a JWKS, when
   * the set is unchanged, or when it cannot be fetched (a JWKS that is
   * down retires nothing).
   */
  retired(principals: Iterable<Principal>): Promise<Set<Principal>>;
}

/** Verified tokens kept, and for how long at most (a token past its exp is never served from here). */
const VERIFIED_CACHE_SIZE = 10_000;
const VERIFIED_CACHE_MS = 5 * 60_000;

export function createVerifier(options: VerifierOptions): TokenVerifier {
  const secretKey = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  const algorithms = [...(secretKey ? ['HS256'] : []), ...(jwks ? ASYMMETRIC_ALGS : [])];
  if (algorithms.length === 0) throw new Error('a JWT secret or a JWKS URL is required');

  // One key per algorithm family, so an HS256 token can never be checked against a public key.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secretKey) return secretKey;
    if (jwks && header.alg !== 'HS256') return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed('algorithm not allowed');
  };

  const verifyOptions = {
    algorithms,
    // A token without exp could never be revoked (one shared secret): refused.
    requiredClaims: ['exp'],
    clockTolerance: options.clockToleranceSec,
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  const previousKey = options.previousSecret ? new TextEncoder().encode(options.previousSecret) : undefined;
  const previousSigning: Signing | undefined = previousKey ? { via: 'previous-secret', retiresAt: options.previousSecretUntil ?? 0 } : undefined;
  /** The JWKS as last checked by `retired` (its JSON), to see whether it changed, and how many changes it has seen. */
  let checkedJwks: string | undefined;
  let generation = 0;
  /**
   * The JWKS generation each JWKS-signed principal was last known good in:
   * the one current when its verification started, then the one a check
   * found it in. A principal from an older generation is checked again, so
   * one that verified against a set fetched before a key left (a refresh
   * racing the check) is caught at the next check.
   */
  const goodIn = new WeakMap<Principal, number>();

  // Verified tokens, kept until their exp (at most VERIFIED_CACHE_MS): a reconnect storm, or many tabs of
  // one dashboard, verify each token once, and its connections share one Principal. Bounded; tokens that
  // only the previous secret verifies are not kept, so a rotation's end is never outlived.
  const verified = new Map<string, { principal: Principal; untilMs: number }>();
  const remember = (token: string, principal: Principal) => {
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
    const untilMs = Math.min((principal.expiresAt ?? 0) * 1000, Date.now() + VERIFIED_CACHE_MS);
    if (untilMs > Date.now()) verified.set(token, { principal, untilMs });
  };

  return {
    async verify(token: string): Promise<Principal> {
      const known = verified.get(token);
      if (known !== undefined) {
        if (Date.now() < known.untilMs) return known.principal;
        verified.delete(token);
      }
      let payload: JWTPayload;
      let alg: string | undefined;
      const startedIn = generation;
      try {
        ({
          payload,
          protectedHeader: { alg },
        } = await jwtVerify(token, getKey, verifyOptions));
      } catch (err) {
        // Key rotation: a token signed with the previous secret verifies until its grace window ends.
        const rotated = err instanceof errors.JWSSignatureVerificationFailed && previousKey !== undefined && Date.now() < (options.previousSecretUntil ?? 0);
        if (!rotated) throw toAuthError(err);
        try {
          ({ payload } = await jwtVerify(token, previousKey, { ...verifyOptions, algorithms: ['HS256'] }));
        } catch (again) {
          throw toAuthError(again);
        }
        return principalFromClaims(payload, options.roles, previousSigning);
      }
      const viaJwks = jwks !== undefined && alg !== 'HS256';
      const principal = principalFromClaims(payload, options.roles, viaJwks ? { via: 'jwks', token } : undefined);
      if (viaJwks) goodIn.set(principal, startedIn);
      // Not kept when the set changed meanwhile: it may have verified against a key that has just left.
      if (!viaJwks || startedIn === generation) remember(token, principal);
      return principal;
    },

    async retired(principals: Iterable<Principal>): Promise<Set<Principal>> {
      const gone = new Set<Principal>();
      if (!jwks) return gone;
      try {
        await jwks.reload();
      } catch {
        return gone; // unreachable or invalid: keep what verified (jose keeps the last good set too)
      }
      const set = jwks.jwks();
      if (set === undefined) return gone;
      const text = JSON.stringify(set);
      if (text !== checkedJwks) {
        // A new set: verifications of the old one are forgotten, and every principal is checked against it.
        checkedJwks = text;
        generation++;
        for (const [token, entry] of verified) if (entry.principal.signing?.via === 'jwks') verified.delete(token);
      }
      const local = createLocalJWKSet(set);
      const checked = new Map<string, boolean>();
      for (const principal of principals) {
        if (principal.signing?.via !== 'jwks' || goodIn.get(principal) === generation) continue;
        const token = principal.signing.token;
        let ok = checked.get(token);
        if (ok === undefined) {
          // Only the signature is asked about (jose checks it before the claims): expiry is the token lifetime's business.
          ok = await jwtVerify(token, local, { algorithms: ASYMMETRIC_ALGS }).then(
            () => true,
            (err: unknown) =>
              !(
                err instanceof errors.JWKSNoMatchingKey ||
                err instanceof errors.JWSSignatureVerificationFailed ||
                err instanceof errors.JWKSMultipleMatchingKeys
              ),
          );
          checked.set(token, ok);
        }
        if (ok) goodIn.set(principal, generation);
        else gone.add(principal);
      }
      return gone;
    },
  };
}

function toAuthError(err: unknown): EscaiError {
  if (err instanceof errors.JWTExpired) return new EscaiError('TOKEN_EXPIRED', 'Token has expired');
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf') {
    return new EscaiError('TOKEN_NOT_YET_VALID', 'Token is not valid yet (nbf)');
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new EscaiError('TOKEN_INVALID', `Token claim "${err.claim}" check failed`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new EscaiError('TOKEN_INVALID', 'Token algorithm is not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new EscaiError('TOKEN_INVALID', 'Token signature is invalid');
  return new EscaiError('TOKEN_INVALID', 'Token is malformed');
}

function stringList(value: unknown, claim: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new EscaiError('TOKEN_INVALID', `Token claim "${claim}" must be a list of strings`);
  }
  return value;
}

/** The latest time a claim may name: the last second of year 9999 (past it, dates cannot be written). */
const MAX_CLAIM_TIME = 253_402_300_799;

function principalFromClaims(payload: JWTPayload, roles: RoleTable, signing?: Signing): Principal {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
    throw new EscaiError('TOKEN_INVALID', 'Token has no "sub" (user id)');
  }
  // Times the server will turn into dates and timers: refused when absurd, so nothing downstream throws.
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    const value = payload[claim];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_CLAIM_TIME)) {
      throw new EscaiError('TOKEN_INVALID', `Token claim "${claim}" is not a time between 1970 and 9999`);
    }
  }
  return new Principal(payload.sub, stringList(payload['roles'], 'roles'), stringList(payload['permissions'], 'permissions'), roles, payload.exp, signing);
}

export interface TokenClaims {
  sub: string;
  roles?: string[];
  permissions?: string[];
  /** Lifetime in seconds from now (default 3600). */
  expiresInSec?: number;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 token: for the dev-mode admin token, the CLI and tests. */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const jwt = new SignJWT({ roles: claims.roles ?? [], permissions: claims.permissions ?? [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.expiresInSec ?? 3600));
  if (claims.issuer) jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** The token of an HTTP request: `Authorization: Bearer …` first, then `?token=`. */
export function tokenFromRequest(authorization: string | undefined, url: URL | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m) return m[1];
  }
  const q = url?.searchParams.get('token');
  return q || undefined;
}
