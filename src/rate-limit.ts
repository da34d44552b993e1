import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { type CacheStore, cacheStore, countRoundTrip, RedisStore } from "./cache.ts";
import { config } from "./config.ts";
import { RateLimitedError } from "./errors.ts";

/**
 * A budget of points per key per window, kept in Redis so every function instance draws on the same budget;
 * in process when there is no Redis, and while Redis is unavailable (then each instance counts alone, which
 * errs on the side of letting requests through).
 */
class Limiter {
  private readonly memory: RateLimiterMemory;
  private readonly redis?: RateLimiterRedis;
  private readonly store: CacheStore;
  readonly points: number;

  constructor(store: CacheStore, name: string, points: number, durationSeconds: number) {
    this.store = store;
    this.points = points;
    this.memory = new RateLimiterMemory({ keyPrefix: name, points, duration: durationSeconds });
    if (this.store instanceof RedisStore) {
      this.redis = new RateLimiterRedis({
        storeClient: this.store.client,
        keyPrefix: `${config().redisKeyPrefix}:rl:${name}`,
        points,
        duration: durationSeconds,
        // Used only when a Redis command fails; a client still connecting (lazily, on first use) is waited for.
        insuranceLimiter: this.memory,
      });
    }
  }

  private limiter() {
    if (this.redis && (this.store as RedisStore).available) {
      countRoundTrip();
      return this.redis;
    }
    return this.memory;
  }

  /** Takes `points` from the key's budget. @returns seconds to wait when the budget is spent, else 0. */
  async take(key: string, points = 1): Promise<number> {
    try {
      await this.limiter().consume(key, points);
      return 0;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return rejection.msBeforeNext / 1000;
      throw rejection;
    }
  }

  /** Seconds until the key's budget has room again, or 0 if it has. */
  async wait(key: string): Promise<number> {
    const state = await this.limiter().get(key);
    return state && state.consumedPoints >= this.points ? state.msBeforeNext / 1000 : 0;
  }

  async reset(key: string): Promise<void> {
    await this.limiter().delete(key);
  }
}

function createLimiters(store: CacheStore) {
  const { rateLimit } = config();
  return {
    store,
    operations: new Limiter(store, "op", rateLimit.viewerPoints, rateLimit.windowSeconds),
    anonymous: new Limiter(store, "anon", rateLimit.anonymousPoints, rateLimit.windowSeconds),
    loginAccount: new Limiter(store, "login-acct", rateLimit.loginFailuresPerAccount, rateLimit.loginWindowSeconds),
    loginAddress: new Limiter(store, "login-addr", rateLimit.loginFailuresPerAddress, rateLimit.loginWindowSeconds),
  };
}

let limiters: ReturnType<typeof createLimiters> | undefined;

/** The process's limiters, on the current cache store (rebuilt if the store was replaced). */
function all() {
  const store = cacheStore();
  if (limiters?.store !== store) limiters = createLimiters(store);
  return limiters;
}

/**
 * Charges an operation's cost to the viewer's budget (the client address's when signed out).
 * @throws RateLimitedError (HTTP 429, Retry-After) when the budget for this window is spent.
 */
export async function chargeOperation(cost: number, viewerId: string | null, clientAddress: string): Promise<void> {
  const { operations, anonymous } = all();
  const wait = viewerId ? await operations.take(viewerId, cost) : await anonymous.take(clientAddress, cost);
  if (wait > 0) throw new RateLimitedError(wait);
}

/**
 * Refuses a login attempt while the account or the client address has too many recent failures.
 * @throws RateLimitedError
 */
export async function assertLoginAllowed(login: string, clientAddress: string): Promise<void> {
  const { loginAccount, loginAddress } = all();
  const wait = Math.max(await loginAccount.wait(login), await loginAddress.wait(clientAddress));
  if (wait > 0) throw new RateLimitedError(wait, "Too many failed sign-in attempts");
}

export async function recordLoginFailure(login: string, clientAddress: string): Promise<void> {
  const { loginAccount, loginAddress } = all();
  await Promise.all([loginAccount.take(login), loginAddress.take(clientAddress)]);
}

/** A successful login clears the account's failures (the address keeps its count). */
export async function clearLoginFailures(login: string): Promise<void> {
  await all().loginAccount.reset(login);
}
