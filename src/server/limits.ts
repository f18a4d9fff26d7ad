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
