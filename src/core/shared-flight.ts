import { randomUUID } from 'node:crypto';
import { CacheError } from './errors.js';
import { MAX_TTL_SECONDS } from './keys.js';
import { describeValue } from './options.js';
import { SingleFlight } from './single-flight.js';
import type { Cache, EntryOptions, SingleFlightMode } from './types.js';

// One upstream call per key across every process sharing a server: the
// first caller takes a lock next to the entry and calls upstream; the others
// wait for a message on the cache's flight channel (pub/sub, so no keyspace
// events and no polling), then read what it stored. The lock is a token
// under a TTL the holder beats every lockTtl/3; the result is written by a
// script that stores only while the token still holds the lock, so a holder
// that lost it (paused past its TTL) never overwrites a newer result.


/** The settings of a shared single-flight, checked. */
export interface SharedFlight {
  /** Milliseconds a lock lives without a heartbeat. */
  lockTtlMs: number;
  /** Milliseconds a waiter waits, from its first failed lock attempt, before calling upstream itself. */
  maxWaitMs: number;
}

/** How a holder's flight ended, as its waiters are told. */
export type FlightOutcome = 'stored' | 'unstored' | 'failed';

/** What a backend that can lock across processes offers the engine (`Cache[FLIGHT_LOCKS]`). */
export interface FlightLocks {
  /** Takes the lock for `token`: `undefined` when taken, else the holder's token and the milliseconds its lock has left. */
  acquire(key: string, tenantId: string | undefined, token: string, ttlMs: number): Promise<{ holder: string; leftMs: number } | undefined>;
  /** Extends the lock while `token` holds it; `false` once it does not. */
  beat(key: string, tenantId: string | undefined, token: string, ttlMs: number): Promise<boolean>;
  /** Deletes the lock if `token` holds it, and tells the waiters how the flight ended. */
  release(key: string, tenantId: string | undefined, token: string, outcome: FlightOutcome): Promise<void>;
  /**
   * Writes the entry (`set`, or `writeEntry` with grace and tags) only while
   * `token` holds the lock, releases it in the same step and tells the
   * waiters `'stored'`; `false` when the lock was lost (nothing written).
   */
  commit(op: 'set' | 'writeEntry', key: string, value: unknown, options: EntryOptions | undefined, token: string): Promise<boolean>;
  /**
   * Calls `heard` with each outcome published for `key`'s lock (and `'down'`
   * when the channel is lost); a `'stored'` message may carry the value
   * (`stored()` decodes a private copy each call). Resolves once subscribed,
   * with the function that stops listening.
   */
  listen(key: string, tenantId: string | undefined, heard: (outcome: FlightOutcome | 'down', token: string, stored?: () => unknown) => void): Promise<() => void>;
}

/** Where a backend exposes its `FlightLocks`; backends without it (memory: one process) run shared flights per process. */
export const FLIGHT_LOCKS: unique symbol = Symbol('cachekit.flightLocks');

/** The locks of `cache`, or `undefined` when it has none (then 'shared' is per process). */
export function locksOf(cache: Cache): FlightLocks | undefined {
  return (cache as Cache & { [FLIGHT_LOCKS]?: () => FlightLocks | undefined })[FLIGHT_LOCKS]?.();
}

/** Default `lockTtl`, seconds. */
export const DEFAULT_LOCK_TTL = 30;
// A waiter re-checks the lock at least this often: it notices a hung server (the check times out)
// or a holder whose message was lost, without waiting out a lockTtl.
const SAFETY_POLL_MS = 1000;
// A waiter checks the lock this long after it should have expired (clocks of one server: no skew).
const EXPIRY_MARGIN_MS = 5;

/**
 * Checks `singleFlight`, `lockTtl` and `maxWait` (the last two need
 * `'shared'`) and returns the shared flight they describe, `undefined` for
 * `'local'`. `mode` is the wrapper's default.
 */
export function sharedFlightOf(where: string, o: { singleFlight?: unknown; lockTtl?: unknown; maxWait?: unknown }, mode: SingleFlightMode = 'local'): SharedFlight | undefined {
  const chosen = o.singleFlight ?? mode;
  if (chosen !== 'shared' && chosen !== 'local') throw new CacheError(`${where}: singleFlight must be 'shared' or 'local', got ${describeValue(chosen)}`, 'validation');
  const { lockTtl, maxWait } = o;
  if (lockTtl !== undefined && (typeof lockTtl !== 'number' || !Number.isFinite(lockTtl) || lockTtl <= 0 || lockTtl > MAX_TTL_SECONDS)) {
    throw new CacheError(`${where}: lockTtl must be a positive finite number of seconds, got ${describeValue(lockTtl)}`, 'validation');
  }
  if (maxWait !== undefined && (typeof maxWait !== 'number' || !Number.isFinite(maxWait) || maxWait <= 0)) {
    throw new CacheError(`${where}: maxWait must be a positive finite number of milliseconds, got ${describeValue(maxWait)}`, 'validation');
  }
  if (chosen === 'local') {
    for (const [name, value] of [['lockTtl', lockTtl], ['maxWait', maxWait]] as const) {
      if (value !== undefined) throw new CacheError(`${where}: ${name} needs singleFlight: 'shared', got ${o.singleFlight === undefined ? 'none' : describeValue(o.singleFlight)}`, 'validation');
    }
    return undefined;
  }
  const lockTtlMs = Math.max(1, Math.round(((lockTtl as number | undefined) ?? DEFAULT_LOCK_TTL) * 1000));
  return { lockTtlMs, maxWaitMs: (maxWait as number | undefined) ?? 2 * lockTtlMs };
}

// Shared flights collapse in-process across every wrapper on one cache (identical keys are one entry).
const flightsByCache = new WeakMap<Cache, SingleFlight>();

/** The in-process flights every shared-flight site on `cache` joins. */
export function cacheFlights(cache: Cache): SingleFlight {
  let flights = flightsByCache.get(cache);
  if (flights === undefined) flightsByCache.set(cache, (flights = new SingleFlight()));
  return flights;
}

// Tokens are `<this process>:<n>`: a waiter that finds a lock of its own process
// that no live call holds knows it is stale (an acquire that timed out and landed
// later) and takes it over instead of waiting out its TTL.
const PROCESS_TAG = randomUUID();
let tokens = 0;
const liveTokens = new Set<string>();

/** The holder's side of a flight: how its answer is stored under the lock, and when the lease ends. */
export interface Lease {
  /** The write of the answer: lands only while the lock is held, and releases it. */
  commit(op: 'set' | 'writeEntry', key: string, value: unknown, options: EntryOptions | undefined): Promise<boolean>;
}

/** What the engine does around the lock for one call. */
export interface SharedCall<T> {
  key: string;
  tenantId: string | undefined;
  /** Reads the entry a holder stored: the answer, or `undefined` when nothing usable is there. */
  read(): Promise<T | undefined>;
  /** The answer from a value the holder's message carried (what `read` would have found); `undefined`: unusable. */
  served(stored: unknown): T | undefined;
  /** Calls upstream and stores the answer: with `lease`, under the lock; the write, or `undefined` when nothing was stored. */
  produce(lease: Lease | undefined): Promise<{ answer: T; write: Promise<unknown> | undefined }>;
  /** A cache failure the call survives (fail-open): counted, never thrown. */
  failed(error: unknown): void;
}

/**
 * One call as part of a shared flight: takes the lock and produces, or waits
 * for the holder's message and reads what it stored. A waiter told the
 * holder failed or stored nothing, past `maxWait`, or when the channel or the
 * server fails, calls upstream itself, once. Any failure of the cache fails
 * open: upstream is called, the error counted.
 */
export async function sharedFlight<T>(locks: FlightLocks, flight: SharedFlight, call: SharedCall<T>): Promise<T> {
  const { key, tenantId } = call;
  const token = `${PROCESS_TAG}:${++tokens}`;
  let waitingSince: number | undefined;
  for (;;) {
    // Messages heard before the acquire's reply names the holder are kept: one may be its.
    const heardFrom = new Map<string, FlightOutcome | 'down'>();
    const carried = new Map<string, () => unknown>();
    let wake: (() => void) | undefined;
    let holder: string | undefined;
    let stop: (() => void) | undefined;
    let taken: { holder: string; leftMs: number } | undefined;
    const heard = () => heardFrom.get('') ?? (holder === undefined ? undefined : heardFrom.get(holder));
    try {
      stop = await locks.listen(key, tenantId, (outcome, from, stored) => {
        const by = outcome === 'down' ? '' : from;
        if (!heardFrom.has(by)) heardFrom.set(by, outcome);
        if (stored !== undefined) carried.set(by, stored);
        if (heard() !== undefined) wake?.();
      });
      // Live before it is sent: another call of this process may see the lock before this one hears it took it.
      liveTokens.add(token);
      taken = await locks.acquire(key, tenantId, token, flight.lockTtlMs);
    } catch (error) {
      stop?.();
      call.failed(error);
      liveTokens.delete(token);
      // An acquire that timed out may land later: released once the call is done, as if it had.
      return plain(call, () => releaseLater(locks, key, tenantId, token, flight.lockTtlMs, call.failed));
    }
    if (taken === undefined) {
      stop();
      return hold(locks, flight, call, token);
    }
    liveTokens.delete(token);
    holder = taken.holder;
    if (holder.startsWith(`${PROCESS_TAG}:`) && !liveTokens.has(holder)) {
      // Ours, and no call of ours holds it: nobody but us would ever release it.
      stop();
      await locks.release(key, tenantId, holder, 'unstored').catch(call.failed);
      continue;
    }
    const now = performance.now();
    waitingSince ??= now;
    const deadline = waitingSince + flight.maxWaitMs;
    if (heard() === undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, Math.min(taken.leftMs + EXPIRY_MARGIN_MS, SAFETY_POLL_MS, deadline - now)));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    stop();
    const outcome = heard();
    if (outcome === 'stored') {
      let answer: T | undefined;
      const stored = carried.get(holder);
      try {
        // The message carried the value (a small plain entry): no read, one round trip less.
        answer = stored === undefined ? await call.read() : call.served(stored());
      } catch (error) {
        call.failed(error);
      }
      if (answer !== undefined) return answer;
      return plain(call);
    }
    if (outcome === 'down') call.failed(new CacheError('the flight channel was lost', 'connection'));
    // Told the holder failed or stored nothing, or waited long enough: once, concurrently with the others.
    if (outcome !== undefined || performance.now() >= deadline) return plain(call);
  }
}

/** Upstream once without the lock (stored as usual), then `after`. */
async function plain<T>(call: SharedCall<T>, after?: () => void): Promise<T> {
  try {
    return (await call.produce(undefined)).answer;
  } finally {
    after?.();
  }
}

/** The holder: beats the lock while upstream runs, stores under it, and tells the waiters how it ended. */
async function hold<T>(locks: FlightLocks, flight: SharedFlight, call: SharedCall<T>, token: string): Promise<T> {
  const { key, tenantId } = call;
  let beating = true;
  const beat = setInterval(() => {
    locks.beat(key, tenantId, token, flight.lockTtlMs).then(
      (held) => {
        if (!held) end();
      },
      (error: unknown) => call.failed(error),
    );
  }, Math.max(1, Math.floor(flight.lockTtlMs / 3)));
  // A heartbeat alone must not keep a process alive.
  beat.unref();
  const end = () => {
    if (!beating) return;
    beating = false;
    clearInterval(beat);
    liveTokens.delete(token);
  };
  const release = (outcome: FlightOutcome) => {
    end();
    locks.release(key, tenantId, token, outcome).catch(call.failed);
  };
  // Another process may have stored the result and released its lock since this call's read.
  let found: T | undefined;
  try {
    found = await call.read();
  } catch (error) {
    call.failed(error);
  }
  if (found !== undefined) {
    release('stored');
    return found;
  }
  let produced: { answer: T; write: Promise<unknown> | undefined };
  let committed = false;
  try {
    produced = await call.produce({
      commit: (op, k, value, options) =>
        ((committed = true), locks.commit(op, k, value, options, token)).catch((error: unknown) => {
          // Not stored: the waiters must not wait out the lock for a result that will not come.
          release('unstored');
          throw error;
        }),
    });
  } catch (error) {
    release('failed');
    throw error;
  }
  if (produced.write === undefined) release('unstored');
  else if (committed) produced.write.then(end, end);
  // A write that did not go through the lease (a batch of items): released right behind it, on the
  // same connection, so the server applies the write first (on a cluster a waiter may read before
  // it lands: it then calls upstream once itself).
  else release('stored');
  return produced.answer;
}

/** Deletes a lock `token` may hold, retrying while the cache is unreachable, for at most the lock's TTL. */
function releaseLater(locks: FlightLocks, key: string, tenantId: string | undefined, token: string, ttlMs: number, failed: (error: unknown) => void): void {
  const giveUpAt = Date.now() + ttlMs;
  let retryMs = 100;
  const attempt = (): void => {
    locks.release(key, tenantId, token, 'unstored').catch((error: unknown) => {
      if (!(error instanceof CacheError) || (error.errorType !== 'connection' && error.errorType !== 'timeout')) return failed(error);
      // Unreleased, the lock still expires after its TTL.
      if (Date.now() + retryMs > giveUpAt) return;
      setTimeout(attempt, retryMs).unref();
      retryMs = Math.min(retryMs * 2, 2000);
    });
  };
  attempt();
}
