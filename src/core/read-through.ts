import { locksOf, sharedFlight, type Lease, type SharedFlight } from './shared-flight.js';
import { SingleFlight, type Copies, type Held, type Hold } from './single-flight.js';
import type { Cache, CacheEntry, EntryOptions } from './types.js';

// The one read-through engine: read, single-flight, store in the background,
// fail open, and grace (stale-if-error, backoff, stale-while-revalidate).
// `getOrSet` on every cache and the LLM wrappers' cached-call engine
// (src/llm/cached-call.ts) both run on it; they differ only in their hooks:
// what is stored of an answer, how a stored value answers, what is counted.

/** How a call survives a failing or slow upstream (see `GetOrSetOptions` for each field's meaning). */
export interface Freshness {
  /** Seconds an entry is kept past its ttl. */
  grace: number;
  /** Milliseconds before the first retry after a failure; doubles per failure in a row, up to 30 times this. */
  graceBackoff: number;
  /** Milliseconds to wait for upstream while a stale value is at hand; `undefined`: wait. */
  softTimeout: number | undefined;
  shouldServeStale: (error: unknown) => boolean;
}

/** The first retry after a failure comes at most this long after it, by default. */
export const DEFAULT_GRACE_BACKOFF_MS = 1000;
/** Backoff doubles up to this many times the first wait (30 s by default). */
const BACKOFF_CAP_FACTOR = 30;
// Keys in backoff remembered at once per site; the oldest is forgotten past it (it only retries sooner).
const MAX_BACKOFF_KEYS = 10_000;

/**
 * The default `shouldServeStale`: serve stale for every upstream error except
 * the caller's own (an HTTP 4xx other than 408 Request Timeout, 409 Conflict
 * and 429 Too Many Requests) and the caller's abort.
 */
export function defaultShouldServeStale(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return true;
  const e = error as { name?: unknown; status?: unknown; statusCode?: unknown };
  if (e.name === 'AbortError' || e.name === 'APIUserAbortError') return false;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  return status === undefined || status < 400 || status >= 500 || status === 408 || status === 409 || status === 429;
}

/** Per key and tenant: when a failing upstream may be called again while a stale value can be served instead. */
export class Backoff {
  private readonly waits = new Map<string, { failures: number; retryAt: number }>();

  /** Whether upstream for `key` failed recently and must not be called yet. */
  waiting(tenantId: string | undefined, key: string): boolean {
    const state = this.waits.get(slot(tenantId, key));
    return state !== undefined && performance.now() < state.retryAt;
  }

  failed(tenantId: string | undefined, key: string, firstMs: number): void {
    const name = slot(tenantId, key);
    const failures = (this.waits.get(name)?.failures ?? 0) + 1;
    this.waits.delete(name);
    if (this.waits.size >= MAX_BACKOFF_KEYS) this.waits.delete(this.waits.keys().next().value as string);
    const wait = Math.min(firstMs * 2 ** (failures - 1), firstMs * BACKOFF_CAP_FACTOR);
    this.waits.set(name, { failures, retryAt: performance.now() + wait });
  }

  succeeded(tenantId: string | undefined, key: string): void {
    if (this.waits.size > 0) this.waits.delete(slot(tenantId, key));
  }
}

function slot(tenantId: string | undefined, key: string): string {
  return tenantId === undefined ? `g\u0000${key}` : `t\u0000${tenantId}\u0000${key}`;
}

/** What the calls of one cache's `getOrSet`, or of one wrapper, share: the cache, the flights in progress, the backoff. */
export interface ReadSite {
  cache: Cache;
  flights: SingleFlight;
  backoff: Backoff;
}

export type Served = 'hit' | 'stale';

/** One read-through call. */
export interface ReadCall<T> {
  key: string;
  tenantId: string | undefined;
  /** Seconds; `undefined`: the cache's `defaultTtl`. */
  ttl: number | undefined;
  /** `false` skips the read (a refresh): upstream is called and its answer stored. */
  read: boolean;
  /** `false` stores nothing (no-store). */
  store: boolean;
  /** `false` neither joins nor is joined (the caller's own abort signal ends its call). */
  share: boolean;
  freshness: Freshness | undefined;
  /** One upstream call across processes (see src/core/shared-flight.ts); `undefined`: per process. */
  shared: SharedFlight | undefined;
  upstream: () => T | Promise<T>;
}

/** What differs between `getOrSet` and the LLM wrappers; one object per site, given each call. */
export interface ReadHooks<T, C extends ReadCall<T>> {
  /** The caller's answer from a stored value, counted as served; `undefined` when it cannot answer (a miss). */
  served(call: C, stored: unknown, how: Served): T | undefined;
  missed(call: C): void;
  /** The caller's answer from a value another process's flight stored while this call waited (counted like a join); `undefined`: unusable. */
  waited(call: C, stored: unknown): T | undefined;
  /** A caller joined a running call (`held` undefined) or an answer still held for its write. */
  joined(call: C, held: Held | undefined): void;
  /** Upstream answered (before it is stored or handed out). */
  answered(call: C, answer: T): void;
  /** What is stored of a fresh answer; `undefined` stores nothing. */
  entry(call: C, answer: T, durationMs: number): unknown;
  /** The tags of a fresh answer's entry (may throw: the answer is then not stored). */
  tags(call: C, answer: T): readonly string[] | undefined;
  copies(call: C): Copies<T> | undefined;
  /** A cache failure swallowed so the call goes on; throws the caller's own mistakes (`validation`). */
  failed(call: C, error: unknown): void;
  /** A background write that failed (`error` undefined: the answer's tags could not be read). */
  writeFailed(call: C, error: unknown): void;
  /** A write refused, or dropped past the cap on writes in flight. */
  dropped(call: C): void;
  /** A write that landed (for events). */
  written?(call: C): void;
}

/**
 * The whole read-through call: join an identical call running in this
 * process, else read (with grace: also a stale entry), else call upstream
 * once per key, in this process or across processes with `call.shared`
 * (identical calls join it until its write lands), answer as
 * soon as upstream does and store in the background. With a stale entry: a
 * failing upstream (per `shouldServeStale`) or one slower than `softTimeout`
 * is answered stale, and upstream is not called again before its backoff.
 */
export function readThrough<T, C extends ReadCall<T>>(site: ReadSite, hooks: ReadHooks<T, C>, call: C): Promise<T> {
  // With a soft timeout a caller reads first: a stale entry it finds bounds its wait for the
  // running flight as it bounds the wait of the caller who started it.
  if (call.share && (call.freshness?.softTimeout === undefined || !call.read)) {
    const joined = site.flights.join<T>(call.tenantId, call.key, !call.read);
    if (joined) {
      hooks.joined(call, joined.held);
      return call.freshness === undefined ? joined.answer : joined.answer.catch((error: unknown) => staleAfterJoin(site, hooks, call, error));
    }
  }
  if (!call.read) return produce(site, hooks, call);
  const { freshness } = call;
  const scope = call.tenantId === undefined ? undefined : { tenantId: call.tenantId };
  let read: Promise<unknown>;
  try {
    // Without grace a plain `get`: the hot path of every untagged hit stays one lookup.
    read = freshness === undefined ? site.cache.get(call.key, scope) : site.cache.readEntry(call.key, scope);
  } catch (error) {
    read = Promise.reject(error);
  }
  return read.then(
    (found) => {
      if (freshness === undefined) {
        if (found !== undefined) {
          const answer = hooks.served(call, found, 'hit');
          if (answer !== undefined) return answer;
        }
      } else if (found !== undefined) {
        const entry = found as CacheEntry;
        if (!entry.stale) {
          const answer = hooks.served(call, entry.value, 'hit');
          if (answer !== undefined) return answer;
        } else {
          return revalidate(site, hooks, call, freshness, entry.value);
        }
      }
      hooks.missed(call);
      return produce(site, hooks, call);
    },
    (error: unknown) => {
      hooks.failed(call, error);
      hooks.missed(call);
      // A cache that just failed a read would fail the lock too, only later: this process alone.
      return produce(site, hooks, call, false);
    },
  );
}

/** A stale entry is at hand: refresh it, answering stale on failure, past `softTimeout`, or while upstream backs off. */
function revalidate<T, C extends ReadCall<T>>(site: ReadSite, hooks: ReadHooks<T, C>, call: C, freshness: Freshness, staleValue: unknown): Promise<T> | T {
  let stale: T | undefined;
  return withStale(
    site,
    freshness,
    call.tenantId,
    call.key,
    () => (stale ??= hooks.served(call, staleValue, 'stale')),
    () => produce(site, hooks, call),
    () => hooks.missed(call),
  );
}

/**
 * The stale half of a read-through, for callers that produce their own way
 * (a shared live stream): with a stale answer at hand (`stale()`, counted by
 * the caller; `undefined` when the entry cannot answer), answers it while
 * upstream for `key` backs off, when `refresh()` fails and
 * `shouldServeStale` allows, or past `softTimeout`; otherwise the refresh's
 * answer (`refreshed()` counts it).
 */
export function withStale<T>(
  site: Pick<ReadSite, 'backoff'>,
  freshness: Freshness,
  tenantId: string | undefined,
  key: string,
  stale: () => T | undefined,
  refresh: () => Promise<T>,
  refreshed: () => void,
): Promise<T> | T {
  if (site.backoff.waiting(tenantId, key)) {
    const answer = stale();
    if (answer !== undefined) return answer;
  }
  const fresh = refresh();
  const fallback = (error: unknown): T => {
    if (freshness.shouldServeStale(error)) {
      const answer = stale();
      if (answer !== undefined) return answer;
    }
    throw error;
  };
  const { softTimeout } = freshness;
  if (softTimeout === undefined) {
    return fresh.then((answer) => {
      refreshed();
      return answer;
    }, fallback);
  }
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      // An entry that cannot answer (foreign data) leaves the caller waiting for upstream.
      if (settled || stale() === undefined) return;
      settled = true;
      resolve(stale() as T);
    }, softTimeout);
    fresh.then(
      (answer) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        refreshed();
        resolve(answer);
      },
      (error: unknown) => {
        clearTimeout(timer);
        // Answered stale already: the refresh's failure only counts for the backoff.
        if (settled) return;
        settled = true;
        try {
          resolve(fallback(error));
        } catch (failure) {
          reject(failure);
        }
      },
    );
  });
}

/** A joiner whose flight failed gets the stale entry, if the error allows and one is there. */
async function staleAfterJoin<T, C extends ReadCall<T>>(site: ReadSite, hooks: ReadHooks<T, C>, call: C, error: unknown): Promise<T> {
  if (!call.freshness?.shouldServeStale(error)) throw error;
  let entry: CacheEntry | undefined;
  try {
    entry = await site.cache.readEntry(call.key, call.tenantId === undefined ? undefined : { tenantId: call.tenantId });
  } catch {
    throw error;
  }
  const answer = entry === undefined ? undefined : hooks.served(call, entry.value, 'stale');
  if (answer === undefined) throw error;
  return answer;
}

/**
 * The miss half: one upstream call per key at a time in this process
 * (identical calls join it, and keep joining until its write has landed),
 * and with `shared` one across processes (src/core/shared-flight.ts; not
 * when `lockable` is false: the cache just failed this call's read); the
 * answer handed back as soon as upstream gives it, the write after it in
 * the background. The caller has counted its miss already.
 */
function produce<T, C extends ReadCall<T>>(site: ReadSite, hooks: ReadHooks<T, C>, call: C, lockable = true): Promise<T> {
  if (call.share) {
    const joined = site.flights.join<T>(call.tenantId, call.key, !call.read);
    if (joined) return joined.answer;
  }
  const fresh = async (lease: Lease | undefined): Promise<{ answer: T; held: Held | undefined }> => {
    const started = performance.now();
    const startedAt = Date.now();
    let answer: T;
    try {
      answer = await call.upstream();
    } catch (error) {
      if (call.freshness !== undefined) site.backoff.failed(call.tenantId, call.key, call.freshness.graceBackoff);
      throw error;
    }
    site.backoff.succeeded(call.tenantId, call.key);
    hooks.answered(call, answer);
    return { answer, held: store(site, hooks, call, answer, performance.now() - started, startedAt, lease) };
  };
  const work = async (hold?: Hold<T>): Promise<T> => {
    // A refresh asks for upstream's answer itself: it never waits on another process's lock.
    const locks = call.shared !== undefined && call.share && call.read && lockable ? locksOf(site.cache) : undefined;
    const produced = async (lease: Lease | undefined) => {
      const { answer, held } = await fresh(lease);
      if (held && hold) hold(answer, held);
      return { answer, write: held?.write };
    };
    if (locks === undefined) return (await produced(undefined)).answer;
    return sharedFlight(locks, call.shared as SharedFlight, {
      key: call.key,
      tenantId: call.tenantId,
      read: () => readStored(site, hooks, call),
      served: (stored) => hooks.waited(call, stored),
      produce: produced,
      failed: (error) => {
        try {
          hooks.failed(call, error);
        } catch {
          // The flight fails open whatever the error: the caller's answer is upstream's.
        }
      },
    });
  };
  if (!call.share) return work();
  return site.flights.run(call.tenantId, call.key, work, hooks.copies(call));
}

/** What another process's flight stored for this call, as its answer; `undefined` when nothing fresh and usable is there. */
async function readStored<T, C extends ReadCall<T>>(site: ReadSite, hooks: ReadHooks<T, C>, call: C): Promise<T | undefined> {
  const scope = call.tenantId === undefined ? undefined : { tenantId: call.tenantId };
  if (call.freshness === undefined) {
    const found = await site.cache.get(call.key, scope);
    return found === undefined ? undefined : hooks.waited(call, found);
  }
  const entry = await site.cache.readEntry(call.key, scope);
  return entry === undefined || entry.stale ? undefined : hooks.waited(call, entry.value);
}

/** Stores a fresh answer in the background (see `backgroundWrite`); the write and what was stored, or `undefined`. */
function store<T, C extends ReadCall<T>>(site: ReadSite, hooks: ReadHooks<T, C>, call: C, answer: T, durationMs: number, startedAt: number, lease: Lease | undefined): Held | undefined {
  if (!call.store) return undefined;
  const value = hooks.entry(call, answer, durationMs);
  if (value === undefined) return undefined;
  let tags: readonly string[] | undefined;
  try {
    tags = hooks.tags(call, answer);
  } catch (error) {
    // The caller's tags function failed: storing untagged could serve the answer past an invalidation.
    hooks.writeFailed(call, undefined);
    return undefined;
  }
  const grace = call.freshness?.grace;
  const plain = grace === undefined && tags === undefined;
  const options = writeOptions(call, tags, grace, startedAt);
  const write = backgroundWrite(
    site.cache,
    { writeFailed: (error) => hooks.writeFailed(call, error), dropped: () => hooks.dropped(call), stored: () => hooks.written?.(call) },
    (cache) =>
      lease !== undefined
        ? lease.commit(plain ? 'set' : 'writeEntry', call.key, value, options)
        : plain
          ? cache.set(call.key, value, options)
          : cache.writeEntry(call.key, value, options),
  );
  return write && { write, stored: value };
}

function writeOptions(call: Pick<ReadCall<unknown>, 'ttl' | 'tenantId'>, tags: readonly string[] | undefined, grace: number | undefined, startedAt: number): EntryOptions | undefined {
  if (tags === undefined && grace === undefined) {
    if (call.ttl === undefined) return call.tenantId === undefined ? undefined : { tenantId: call.tenantId };
    return call.tenantId === undefined ? { ttl: call.ttl } : { ttl: call.ttl, tenantId: call.tenantId };
  }
  const options: EntryOptions = { startedAt };
  if (call.ttl !== undefined) options.ttl = call.ttl;
  if (call.tenantId !== undefined) options.tenantId = call.tenantId;
  if (tags !== undefined) options.tags = tags;
  if (grace !== undefined) options.grace = grace;
  return options;
}

// Past this many writes still waiting for one cache (a slow or hung server),
// results are not stored: holding each one until a timeout would grow memory
// for as long as the outage lasts (ioredis#76 is the same trap for commands).
const MAX_WRITES_IN_FLIGHT = 1000;
const writesInFlight = new WeakMap<Cache, number>();

/**
 * One bounded background write: nobody waits for it, it never throws, and its
 * failure is counted (`failed`, or `dropped` when the cache refused the entry
 * or too many writes were in flight). `undefined` when it was not sent.
 */
export function backgroundWrite(
  cache: Cache,
  counts: { writeFailed(error: unknown): void; dropped(): void; stored?(): void },
  write: (cache: Cache) => Promise<boolean | number>,
): Promise<void> | undefined {
  const pending = writesInFlight.get(cache) ?? 0;
  if (pending >= MAX_WRITES_IN_FLIGHT) {
    counts.dropped();
    return undefined;
  }
  writesInFlight.set(cache, pending + 1);
  let written: Promise<boolean | number>;
  try {
    written = Promise.resolve(write(cache));
  } catch (error) {
    written = Promise.reject(error);
  }
  return written.then(
    (stored) => {
      done(cache);
      if (stored === false) counts.dropped();
      else counts.stored?.();
    },
    (error: unknown) => {
      done(cache);
      counts.writeFailed(error);
    },
  );
}

function done(cache: Cache): void {
  const pending = (writesInFlight.get(cache) ?? 1) - 1;
  if (pending === 0) writesInFlight.delete(cache);
  else writesInFlight.set(cache, pending);
}
