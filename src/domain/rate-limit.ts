import { createHash } from "node:crypto";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { RateLimitedError } from "../errors.ts";
import { type CacheStore, cacheStore, countRoundTrip, RedisStore } from "../platform/cache.ts";
import { config } from "../platform/config.ts";

/**
 * A budget of points per key per window, kept in Redis so every function instance draws on the same budget;
 * in process when there is no Redis, and while Redis is unavailable (then each instance counts alone, which
 * errs on the side of letting requests through).
 */
class Limiter {
  private readonly memory: RateLimiterMemory;
  private readonly redis?: RateLimiterRedis;
  private readonly store: CacheStore;

  constructor(store: CacheStore, name: string, points: number, durationSeconds: number) {
    this.store = store;
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

  /** Gives back points taken (a reservation that was not needed). */
  async refund(key: string, points = 1): Promise<void> {
    await this.limiter().reward(key, points);
  }
}

function createLimiters(store: CacheStore) {
  const { rateLimit } = config();
  const login = rateLimit.loginWindowSeconds;
  return {
    store,
    operations: new Limiter(store, "op", rateLimit.viewerPoints, rateLimit.windowSeconds),
    anonymous: new Limiter(store, "anon", rateLimit.anonymousPoints, rateLimit.windowSeconds),
    loginPair: new Limiter(store, "login-pair", rateLimit.loginFailuresPerAccount, login),
    loginAccount: new Limiter(store, "login-acct", rateLimit.loginFailuresPerAccountFromNewAddresses, login),
    loginAddress: new Limiter(store, "login-addr", rateLimit.loginFailuresPerAddress, login),
    signUps: new Limiter(store, "signup", rateLimit.signUpsPerAddress, 3600),
    registrations: new Limiter(store, "apq-bytes", rateLimit.registrationBytesPerHour, 3600),
    opsEvents: new Limiter(store, "ops-events", rateLimit.opsEventsPerMinute, 60),
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

/** A login attempt's reservation in the limits it counts against. */
export interface LoginReservation {
  account: string;
  address: string;
  taken: { limiter: "loginPair" | "loginAccount" | "loginAddress"; key: string }[];
}

const knownKey = (account: string, address: string) =>
  `${config().redisKeyPrefix}:login-known:${account}:${createHash("sha256").update(address).digest("base64url").slice(0, 16)}`;

/** How long an address that signed in to an account keeps passing that account's wider limits. */
const KNOWN_FOR_MS = 30 * 86_400_000;

/**
 * Reserves a login attempt before the password is checked (concurrent guesses cannot exceed a limit: each
 * attempt takes its place first, atomically in Redis), counted on the account (`account`: its id, or the
 * normalized login when there is no such account, so both of an account's logins share one count):
 * - per account and address (LOGIN_MAX_FAILURES_PER_ACCOUNT): one guesser, one account;
 * - per address (LOGIN_MAX_FAILURES_PER_ADDRESS): one guesser, many accounts;
 * - per account from addresses that never signed in to it (LOGIN_MAX_FAILURES_PER_ACCOUNT_FROM_NEW_ADDRESSES):
 *   many guessers, one account.
 * An address the account signed in from within 30 days counts only in the first: guessers elsewhere cannot
 * lock its owner out (one sharing the owner's very address can hold that address back for the rest of the
 * window, no longer). A successful login gives its reservation back.
 * @throws RateLimitedError when a limit is spent (nothing stays taken then).
 */
export async function reserveLoginAttempt(account: string, address: string): Promise<LoginReservation> {
  const limiters = all();
  const [known] = await limiters.store.mget([knownKey(account, address)]);
  const wanted: LoginReservation["taken"] = [
    { limiter: "loginPair", key: `${account}|${address}` },
    ...(known
      ? []
      : ([
          { limiter: "loginAddress", key: address },
          { limiter: "loginAccount", key: account },
        ] as const)),
  ];
  const reservation: LoginReservation = { account, address, taken: [] };
  for (const place of wanted) {
    const wait = await limiters[place.limiter].take(place.key);
    if (wait > 0) {
      await limiters[place.limiter].refund(place.key);
      await releaseLoginAttempt(reservation);
      throw new RateLimitedError(wait, "Too many failed sign-in attempts");
    }
    reservation.taken.push(place);
  }
  return reservation;
}

/** Gives a reservation back (the attempt succeeded, or another limit refused it). */
async function releaseLoginAttempt(reservation: LoginReservation): Promise<void> {
  const limiters = all();
  await Promise.all(reservation.taken.map((place) => limiters[place.limiter].refund(place.key)));
}

/** A successful login: its attempt does not count, and its address is known to the account from now on. */
export async function loginSucceeded(reservation: LoginReservation): Promise<void> {
  await releaseLoginAttempt(reservation);
  await all().store.set(knownKey(reservation.account, reservation.address), "1", KNOWN_FOR_MS);
}

/**
 * Counts a sign-up attempt of the address (SIGNUP_MAX_PER_ADDRESS an hour), before anything is checked or
 * hashed: creating accounts, and probing which emails have one, cost the same.
 * @throws RateLimitedError
 */
export async function chargeSignUp(address: string): Promise<void> {
  const wait = await all().signUps.take(address);
  if (wait > 0) throw new RateLimitedError(wait, "Too many sign-ups from your network");
}

/**
 * Charges an Automatic Persisted Queries registration's size to the caller's hourly budget of registered
 * bytes (APQ_REGISTRATION_BYTES_PER_HOUR): registrations are kept for weeks, in every instance's store.
 * @throws RateLimitedError
 */
export async function chargeRegistration(bytes: number, viewerId: string | null, clientAddress: string) {
  const wait = await all().registrations.take(viewerId ?? `address:${clientAddress}`, bytes);
  if (wait > 0) throw new RateLimitedError(wait, "Too many new persisted documents");
}

/** Counts an accepted operations event of a source (OPS_WEBHOOK_EVENTS_PER_MINUTE). @throws RateLimitedError */
export async function chargeOpsEvent(source: string): Promise<void> {
  const wait = await all().opsEvents.take(source);
  if (wait > 0) throw new RateLimitedError(wait, `Too many events from ${source}`);
}
