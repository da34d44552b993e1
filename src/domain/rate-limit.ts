import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { RateLimiterMemory, RateLimiterPrisma, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { type CacheStore, cacheStore, countRoundTrip, RedisStore } from "../caching/store.ts";
import { RateLimitedError } from "../errors.ts";
import { config } from "../platform/config.ts";
import { db } from "../platform/db.ts";

type Backing = RateLimiterRedis | RateLimiterPrisma;

/**
 * A budget of points per key per window, kept in Redis so every function instance draws on the same budget.
 * Without Redis, a `shared` limit (what guards accounts and storage: sign-in guessing, sign-ups, registrations)
 * is kept in PostgreSQL instead (the rate_limits table), so that ten instances do not allow ten times the
 * guesses; the others (operation budgets, charged on every request) are counted by each instance alone. While
 * the store is unavailable each instance counts alone, which errs on the side of letting requests through.
 */
class Limiter {
  private readonly memory: RateLimiterMemory;
  private readonly backing?: Backing;
  private readonly store: CacheStore;
  private readonly durationSeconds: number;

  constructor(store: CacheStore, name: string, points: number, durationSeconds: number, shared = false) {
    this.store = store;
    this.durationSeconds = durationSeconds;
    this.memory = new RateLimiterMemory({ keyPrefix: name, points, duration: durationSeconds });
    if (this.store instanceof RedisStore) {
      this.backing = new RateLimiterRedis({
        storeClient: this.store.client,
        keyPrefix: `${config().redisKeyPrefix}:rl:${name}`,
        points,
        duration: durationSeconds,
        // Used only when a Redis command fails; a client still connecting (lazily, on first use) is waited for.
        insuranceLimiter: this.memory,
      });
    } else if (shared) {
      this.backing = new RateLimiterPrisma({
        storeClient: db(),
        tableName: "rateLimit",
        // The same names as in Redis: deployments sharing a database keep their counts apart as they would there.
        keyPrefix: `${config().redisKeyPrefix}:rl:${name}`,
        points,
        duration: durationSeconds,
        // Expired rows go with the cleanup function (functions/cleanup.ts), not a timer in every instance.
        clearExpiredByTimeout: false,
        insuranceLimiter: this.memory,
      });
    }
  }

  private limiter() {
    if (this.backing instanceof RateLimiterRedis) {
      if (!(this.store as RedisStore).available) return this.memory;
      countRoundTrip();
    }
    return this.backing ?? this.memory;
  }

  /** Takes `points` from the key's budget. @returns seconds to wait when the budget is spent, else 0. */
  async take(key: string, points = 1): Promise<number> {
    return (await this.spend(key, points)).wait;
  }

  /** Takes `points`, saying what is left: seconds to wait (0: taken), points remaining, seconds until the reset. */
  async spend(key: string, points: number): Promise<{ wait: number; remaining: number; resetSeconds: number }> {
    try {
      const taken = await this.limiter().consume(key, points);
      return { wait: 0, remaining: taken.remainingPoints, resetSeconds: Math.ceil(taken.msBeforeNext / 1000) };
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const wait = rejection.msBeforeNext / 1000;
      return { wait, remaining: 0, resetSeconds: Math.ceil(wait) };
    }
  }

  /** Gives back points taken (a reservation that was not needed). */
  async refund(key: string, points = 1): Promise<void> {
    await this.limiter().reward(key, points);
  }

  /** Whether the key holds points in its current window (a mark that has not expired). */
  async has(key: string): Promise<boolean> {
    return ((await this.limiter().get(key))?.consumedPoints ?? 0) > 0;
  }

  /** Marks the key for a whole window (however many points it held). */
  async mark(key: string): Promise<void> {
    await this.limiter().set(key, 1, this.durationSeconds);
  }
}

/**
 * Who an address is, for per-address limits. One IPv6 subscriber gets a whole /64 (2^64 addresses, and phones
 * move through them on their own): an IPv6 address counts as its network of RATE_LIMIT_IPV6_PREFIX bits (64 by
 * default), so a client cannot buy itself a fresh budget by changing the host part. IPv4 addresses count alone;
 * an IPv4 address mapped into IPv6 is that IPv4 address.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (isIP(address) !== 6) return address;
  const prefix = config().rateLimit.ipv6Prefix;
  const groups = ipv6Groups(address);
  // NAT64's well-known prefix carries an IPv4 client in its last 32 bits: that client is who it is.
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0)) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
  }
  const kept = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, prefix - i * 16));
    return bits === 0 ? 0 : group & (0xffff << (16 - bits)) & 0xffff;
  });
  return `${kept.map((group) => group.toString(16)).join(":")}/${prefix}`;
}

/** The eight 16-bit groups of an IPv6 address ("::" expanded, an IPv4 tail and a zone id read). */
function ipv6Groups(address: string): number[] {
  let text = address.split("%")[0] as string;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[0].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.map((group) => Number.parseInt(group, 16) || 0);
}

/** How long an address that signed in to an account keeps passing that account's wider limits. */
const KNOWN_FOR_SECONDS = 30 * 86_400;

function createLimiters(store: CacheStore) {
  const { rateLimit } = config();
  const login = rateLimit.loginWindowSeconds;
  return {
    store,
    operations: new Limiter(store, "op", rateLimit.viewerPoints, rateLimit.windowSeconds),
    anonymous: new Limiter(store, "anon", rateLimit.anonymousPoints, rateLimit.windowSeconds),
    loginPair: new Limiter(store, "login-pair", rateLimit.loginFailuresPerAccount, login, true),
    loginAccount: new Limiter(store, "login-acct", rateLimit.loginFailuresPerAccountFromNewAddresses, login, true),
    loginAddress: new Limiter(store, "login-addr", rateLimit.loginFailuresPerAddress, login, true),
    /** Addresses that signed in to an account (account|address hash), for KNOWN_FOR_SECONDS. */
    knownAddresses: new Limiter(store, "login-known", 1, KNOWN_FOR_SECONDS, true),
    signUps: new Limiter(store, "signup", rateLimit.signUpsPerAddress, 3600, true),
    registrations: new Limiter(store, "apq-bytes", rateLimit.registrationBytesPerHour, 3600, true),
    opsEvents: new Limiter(store, "ops-events", rateLimit.opsEventsPerMinute, 60, true),
    idempotencyAnswers: new Limiter(store, "idem-bytes", rateLimit.idempotencyAnswerBytesPerHour, 3600, true),
  };
}

let limiters: ReturnType<typeof createLimiters> | undefined;

/** The process's limiters, on the current cache store (rebuilt if the store was replaced). */
function all() {
  const store = cacheStore();
  if (limiters?.store !== store) limiters = createLimiters(store);
  return limiters;
}

/** Where a caller stands in its operations budget, after a charge: what apps are told (http/budget.ts). */
export interface Budget {
  /** Points per window. */
  limit: number;
  remaining: number;
  windowSeconds: number;
  /** Seconds until the window starts again. */
  resetSeconds: number;
}

/**
 * Charges an operation's cost to the viewer's budget (the client address's when signed out).
 * @returns the budget left. @throws RateLimitedError (HTTP 429, Retry-After) when the budget for this window is
 * spent.
 */
export async function chargeOperation(cost: number, viewerId: string | null, clientAddress: string): Promise<Budget> {
  const { operations, anonymous } = all();
  const { rateLimit } = config();
  const spent = viewerId
    ? await operations.spend(viewerId, cost)
    : await anonymous.spend(addressKey(clientAddress), cost);
  if (spent.wait > 0) throw new RateLimitedError(spent.wait);
  return {
    limit: viewerId ? rateLimit.viewerPoints : rateLimit.anonymousPoints,
    remaining: spent.remaining,
    windowSeconds: rateLimit.windowSeconds,
    resetSeconds: spent.resetSeconds,
  };
}

/** A login attempt's reservation in the limits it counts against. */
export interface LoginReservation {
  account: string;
  address: string;
  taken: { limiter: "loginPair" | "loginAccount" | "loginAddress"; key: string }[];
}

const knownKey = (account: string, address: string) =>
  `${account}:${createHash("sha256").update(address).digest("base64url").slice(0, 16)}`;

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
export async function reserveLoginAttempt(account: string, clientAddress: string): Promise<LoginReservation> {
  const limiters = all();
  const address = addressKey(clientAddress);
  const known = await limiters.knownAddresses.has(knownKey(account, address));
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
  await all().knownAddresses.mark(knownKey(reservation.account, reservation.address));
}

/**
 * Counts a sign-up attempt of the address (SIGNUP_MAX_PER_ADDRESS an hour), before anything is checked or
 * hashed: creating accounts, and probing which emails have one, cost the same.
 * @throws RateLimitedError
 */
export async function chargeSignUp(address: string): Promise<void> {
  const wait = await all().signUps.take(addressKey(address));
  if (wait > 0) throw new RateLimitedError(wait, "Too many sign-ups from your network");
}

/**
 * Charges an Automatic Persisted Queries registration's size to the caller's hourly budget of registered
 * bytes (APQ_REGISTRATION_BYTES_PER_HOUR): registrations are kept for weeks, in every instance's store.
 * @throws RateLimitedError
 */
export async function chargeRegistration(bytes: number, viewerId: string | null, clientAddress: string) {
  const wait = await all().registrations.take(viewerId ?? `address:${addressKey(clientAddress)}`, bytes);
  if (wait > 0) throw new RateLimitedError(wait, "Too many new persisted documents");
}

/**
 * Charges an answer kept for an Idempotency-Key to its owner's hourly budget of kept bytes
 * (IDEMPOTENCY_ANSWER_BYTES_PER_HOUR: the viewer's, or the address's when signed out). @returns false when the
 * budget is spent: the answer is then not kept (a repeat is told it was lost), the key still is.
 */
export async function chargeKeptAnswer(bytes: number, viewerId: string | null, clientAddress: string) {
  return (await all().idempotencyAnswers.take(viewerId ?? `address:${addressKey(clientAddress)}`, bytes)) === 0;
}

/** Counts an accepted operations event of a source (OPS_WEBHOOK_EVENTS_PER_MINUTE). @throws RateLimitedError */
export async function chargeOpsEvent(source: string): Promise<void> {
  const wait = await all().opsEvents.take(source);
  if (wait > 0) throw new RateLimitedError(wait, `Too many events from ${source}`);
}

/** Deletes the PostgreSQL-kept counters whose window has ended (the cleanup function). @returns how many. */
export async function deleteExpiredLimits(): Promise<number> {
  return (await db().rateLimit.deleteMany({ where: { expire: { lt: new Date() } } })).count;
}
