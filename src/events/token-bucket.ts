// A token bucket on an injectable clock: `burst` tokens, refilled at `ratePerSecond`.

export interface Clock {
  /** Milliseconds (Date.now() in production, a number a test moves). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  private readonly clock: Clock;

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new Error(`token bucket needs a positive rate and a burst of at least 1 (got ${ratePerSecond}/s, ${burst})`);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    // A clock that steps back refills nothing (and never takes tokens away).
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.ratePerSecond);
    this.last = Math.max(this.last, now);
  }

  /** Takes one token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0: now). */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }

  /** Full again: forgetting this bucket loses nothing (a new one starts full). */
  isFull(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }
}
