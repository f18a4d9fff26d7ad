// Rate limits: a token bucket refilled continuously, and a map of them by key
// (a user, an IP) that forgets idle keys so it cannot grow without bound.

export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly #rate: number;
  readonly #burst: number;

  /** `rate` tokens per second, at most `burst` saved up. */
  constructor(rate: number, burst: number, now = performance.now()) {
    this.#rate = rate / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes `n` tokens (default one); false, taking nothing, when the bucket holds fewer. */
  take(now = performance.now(), n = 1): boolean {
    this.#refill(now);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Tokens now (negative while in debt). */
  available(now = performance.now()): number {
    this.#refill(now);
    return this.#tokens;
  }

  /** Takes `n` tokens whatever the bucket holds, into debt if need be: for work already done (see KeyedBuckets.spend). */
  spend(n: number, now = performance.now()): void {
    this.#refill(now);
    this.#tokens -= n;
  }

  /** Whether the bucket is full again (an idle key can be forgotten). */
  full(now = performance.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.#burst;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate);
    this.#last = now;
  }
}

/** Token buckets by key, created on first use; full (idle) ones are dropped when the map passes `maxKeys`. */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;

  constructor(rate: number, burst: number, maxKeys = 100_000) {
    this.#rate = rate;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
  }

  take(key: string, n = 1, now = performance.now()): boolean {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxKeys) this.#forgetIdle(now);
      this.#buckets.set(key, (bucket = new TokenBucket(this.#rate, this.#burst, now)));
    }
    return bucket.take(now, n);
  }

  /** Whether the key has any tokens: work that cannot be sized before it is done asks this first, then spends. */
  available(key: string, now = performance.now()): boolean {
    const bucket = this.#buckets.get(key);
    return bucket === undefined || bucket.available(now) > 0;
  }

  /** Spends `n` tokens of the key, into debt if need be (the debt is paid back at the rate before `available` says yes again). */
  spend(key: string, n: number, now = performance.now()): void {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxKeys) this.#forgetIdle(now);
      this.#buckets.set(key, (bucket = new TokenBucket(this.#rate, this.#burst, now)));
    }
    bucket.spend(n, now);
  }

  get size(): number {
    return this.#buckets.size;
  }

  #forgetIdle(now: number): void {
    for (const [key, bucket] of this.#buckets) if (bucket.full(now)) this.#buckets.delete(key);
    // Still full of busy keys: drop the oldest (a key that comes back starts with a full bucket).
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < this.#maxKeys) break;
      this.#buckets.delete(key);
    }
  }
}
