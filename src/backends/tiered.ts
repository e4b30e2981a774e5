import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CacheError, DragonflyConnectionError } from '../core/errors.js';
import { EventHub, type CacheEvent, type CacheEventListener, type CacheEventType } from '../core/events.js';
import { getOrSet } from '../core/get-or-set.js';
import { FLIGHT_LOCKS, locksOf, type FlightLocks } from '../core/shared-flight.js';
import { checkKey, checkPattern, checkScopeOptions, checkSetOptions, checkStatsOptions, entriesOf, keysOf, scopeOf, tagsOf } from '../core/keys.js';
import { checkOptions, describeValue, optionNames } from '../core/options.js';
import { CounterSet } from '../core/stats.js';
import type { BatchEntries, Cache, CacheEntry, CacheStats, EntryInfo, EntryOptions, GetOrSetOptions, ScopeOptions, SetOptions, StatsOptions } from '../core/types.js';
import { tierBackendOf, type TierBackend, type TierRead } from './dragonfly.js';
import { memoryTierOf } from './memory.js';

/**
 * Options of `createTieredCache`.
 *
 * @example
 * const cache = await createTieredCache({ l1: createMemoryCache({ maxSize: 50_000 }), l2: await createDragonflyCache({ url }), l1Ttl: 10 });
 */
export interface TieredCacheOptions {
  /** The memory tier, read first: a cache from `createMemoryCache`, used by this tiered cache only. `close()` closes it. */
  l1: Cache;
  /**
   * The Redis tier, the source of truth: a cache from `createDragonflyCache`
   * on one server (not a Cluster), used by this tiered cache only. Its
   * `keyPrefix` names the invalidation channel: every tiered cache on that
   * prefix drops its memory copies when another one writes. `close()` closes it.
   */
  l2: Cache;
  /**
   * Seconds the memory tier keeps a copy at most (fractions allowed); a copy
   * never outlives its Redis entry's TTL either. It bounds how stale a read
   * can be while the invalidation link is down. A positive finite number. Default 10.
   */
  l1Ttl?: number;
}

/** What `stats()` of a tiered cache answers: the Redis tier's sizes and counters, with the reads split by the tier that answered. */
export interface TieredCacheStats extends CacheStats {
  /** Reads answered by the memory tier. */
  l1Hits: number;
  /** Reads the memory tier missed and the Redis tier answered. */
  l2Hits: number;
}

/**
 * What `link()` answers: the state of the invalidation subscription.
 *
 * @example
 * if (!cache.link().subscribed) metrics.gauge('cache.l1.unlinked', 1);
 */
export interface TierLinkStats {
  /** `true` while this process receives the other processes' invalidations. */
  subscribed: boolean;
  /** Times the subscription was lost (link cut, server gone) since the cache was created. */
  losses: number;
  /** Times the memory tier was emptied because it may have missed invalidations (subscription back, Redis back). */
  drops: number;
  /** Invalidations received from other processes. */
  received: number;
  /** Invalidations published. */
  published: number;
  /** The Redis tier's breaker: `'open'` while calls to it fail fast. */
  breaker: 'closed' | 'open';
}

/** A two-tier `Cache`: a memory tier in front of a Redis tier, kept coherent across processes. */
export interface TieredCache extends Cache {
  /** Counters and sizes, with `l1Hits` and `l2Hits`. */
  stats(options?: StatsOptions): Promise<TieredCacheStats>;
  /** The invalidation link and the breaker, for dashboards and tests. */
  link(): TierLinkStats;
}

const OPTIONS = optionNames<TieredCacheOptions>({ l1: true, l2: true, l1Ttl: true });
const WHERE = 'createTieredCache';
const DEFAULT_L1_TTL_MS = 10_000;
// The breaker in front of the Redis tier: after this many outage failures in a row, calls
// to it fail at once for BREAKER_OPEN_MS, then one probe is let through.
const BREAKER_FAILURES = 3;
const BREAKER_OPEN_MS = 1000;
// Keys per invalidation message: a setMany of many keys publishes several.
const KEYS_PER_MESSAGE = 1000;
// Keys changed while reads are in flight, remembered one by one up to this many; past it
// every read in flight is treated as changed (a miss to copy, never a stale copy).
const MAX_CHANGED_KEYS = 10_000;

/** An invalidation as published: who sent it, the tenant, and keys, a pattern, tags or everything; never values. */
interface Invalidation {
  o: string;
  n?: string;
  k?: string[];
  p?: string;
  g?: readonly string[];
  c?: 1;
}

function isOutage(error: unknown): boolean {
  return error instanceof CacheError && (error.errorType === 'connection' || error.errorType === 'timeout');
}

/**
 * A memory cache in front of a Dragonfly (Redis) cache, for many processes
 * sharing one server: reads hit the memory tier first, then Redis (copying
 * the entry into memory for at most `l1Ttl` and never past its Redis TTL);
 * writes, deletes, pattern clears and tag invalidations go to both, and
 * resolve once an invalidation (keys, a pattern or tags, never values) is
 * published on the key prefix's channel, so every other process drops its
 * memory copy. Resolves once subscribed to that channel. See README, "Two tiers".
 */
export async function createTieredCache(options: TieredCacheOptions): Promise<TieredCache> {
  if (options === undefined) throw new CacheError(`${WHERE}: options { l1, l2 } are required`, 'validation');
  checkOptions(WHERE, options, OPTIONS);
  const near = memoryTierOf(options.l1);
  if (near === undefined) throw new CacheError(`${WHERE}: l1 must be a cache from createMemoryCache, got ${describeValue(options.l1)}`, 'validation');
  const backend = tierBackendOf(options.l2);
  if (backend === undefined) throw new CacheError(`${WHERE}: l2 must be a cache from createDragonflyCache, got ${describeValue(options.l2)}`, 'validation');
  const l1TtlMs = l1TtlOf(options.l1Ttl);
  const subscriber = backend.tierSubscriber();
  if (subscriber === undefined) throw new CacheError(`${WHERE}: l2 must be on one server; a Redis Cluster tier is not supported yet`, 'validation');
  const cache = new TieredCacheImpl(options.l1, near, options.l2, backend, subscriber, l1TtlMs);
  try {
    await cache.subscribe();
  } catch (error) {
    cache.abandon();
    throw error instanceof CacheError ? error : new DragonflyConnectionError(`${WHERE}: could not subscribe to the invalidation channel: ${(error as Error).message}`, 'connection', { cause: error });
  }
  return cache;
}

type MemoryTier = NonNullable<ReturnType<typeof memoryTierOf>>;

function l1TtlOf(value: unknown): number {
  if (value === undefined) return DEFAULT_L1_TTL_MS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new CacheError(`${WHERE}: l1Ttl must be a positive finite number of seconds, got ${describeValue(value)}`, 'validation');
  }
  return value * 1000;
}

function scoped(tenantId: string | undefined): ScopeOptions | undefined {
  return tenantId === undefined ? undefined : { tenantId };
}

class TieredCacheImpl implements TieredCache {
  readonly kind = 'tiered';
  private readonly id = randomUUID();
  private readonly events = new EventHub();
  // getOrSet's stale answers and unstorable values, publish failures and fail-fast refusals.
  private readonly own = new CounterSet();
  private readonly readThrough = {
    staleHit: (tenantId: string | undefined) => this.own.add(scopeOf(tenantId), 'staleHits'),
    unstorable: (tenantId: string | undefined) => this.own.add(scopeOf(tenantId), 'errors'),
  };
  // Moves on every change made here and every invalidation received. A Redis read that was
  // in flight while its key changed may hold what was just replaced: it is answered but not
  // copied. Per key (`changedAt`, kept only while reads are in flight), so a busy fleet's
  // stream of invalidations of other keys does not stop every copy; `broadAt` for what
  // may touch any key (patterns, tags, clears, a lost link).
  private epoch = 0;
  private broadAt = 0;
  private readonly changedAt = new Map<string, number>();
  private reading = 0;
  private subscribed = false;
  // Set when the subscription dropped, until it is back (and the memory tier emptied).
  private unlinked = false;
  private losses = 0;
  private drops = 0;
  private received = 0;
  private published = 0;
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  private breakerOpen = false;
  private closed = false;
  // The L2 events handed on (evictions, expiries, reconnections), while someone listens here.
  private readonly forwarders = new Map<CacheEventType, CacheEventListener>();
  private flightLocks: FlightLocks | undefined;

  constructor(
    private readonly l1: Cache,
    private readonly near: MemoryTier,
    private readonly l2: Cache,
    private readonly backend: TierBackend,
    private readonly subscriber: Redis,
    private readonly l1TtlMs: number,
  ) {
    this.events.onChange = (type, listened) => this.forward(type, listened);
    subscriber.on('error', () => {});
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    subscriber.on('close', () => this.lost());
    subscriber.on('ready', () => {
      if (this.unlinked && !this.closed) this.subscribe().catch(() => this.subscriber.disconnect(true));
    });
  }

  /** Subscribes (again); once back after a loss, the memory tier is emptied: it may have missed invalidations. */
  async subscribe(): Promise<void> {
    if (this.subscriber.status === 'wait') await this.subscriber.connect();
    await this.subscriber.subscribe(this.backend.tierChannel);
    if (this.closed) return;
    this.subscribed = true;
    if (this.unlinked) {
      this.unlinked = false;
      await this.dropL1();
    }
  }

  /** Drops the subscriber connection of a cache that could not subscribe (its tiers stay the caller's). */
  abandon(): void {
    this.closed = true;
    this.subscriber.disconnect();
  }

  private lost(): void {
    if (this.closed || this.unlinked) return;
    this.subscribed = false;
    this.unlinked = true;
    this.losses++;
    this.changedAll();
  }

  /** A change of `keys` of `tenantId`'s scope (`undefined`: any key may have changed). */
  private changed(tenantId: string | undefined, keys: readonly string[] | undefined): void {
    if (keys === undefined || keys.length > MAX_CHANGED_KEYS) return this.changedAll();
    const at = ++this.epoch;
    // No read in flight: none can hold an older value.
    if (this.reading === 0) return;
    if (this.changedAt.size + keys.length > MAX_CHANGED_KEYS) return this.changedAll();
    const scope = scopeOf(tenantId);
    for (const key of keys) this.changedAt.set(scope + key, at);
  }

  private changedAll(): void {
    this.broadAt = ++this.epoch;
    this.changedAt.clear();
  }

  /** Whether nothing changed `key` since `since` (an `epoch`). */
  private unchangedSince(since: number, tenantId: string | undefined, key: string): boolean {
    if (this.broadAt > since) return false;
    const at = this.changedAt.get(scopeOf(tenantId) + key);
    return at === undefined || at <= since;
  }

  private async dropL1(): Promise<void> {
    this.changedAll();
    this.drops++;
    await this.l1.clear().catch(() => {});
  }

  private onMessage(message: string): void {
    let inv: Invalidation;
    try {
      inv = JSON.parse(message) as Invalidation;
    } catch {
      return;
    }
    if (inv === null || typeof inv !== 'object' || inv.o === this.id) return;
    this.received++;
    const tenantId = typeof inv.n === 'string' ? inv.n : undefined;
    const keys = Array.isArray(inv.k) && inv.p === undefined && inv.g === undefined && inv.c === undefined ? inv.k.filter((k) => typeof k === 'string') : undefined;
    try {
      this.changed(tenantId, keys);
    } catch {
      // A tenant id no cache would send: drop nothing, trust nothing in flight.
      this.changedAll();
      return;
    }
    const scope = scoped(tenantId);
    // The memory tier's own calls: synchronous inside, so the copy is gone before the next read.
    const ignore = () => {};
    if (inv.c === 1) void this.l1.clear().catch(ignore);
    if (Array.isArray(inv.k)) for (const key of inv.k) void this.l1.delete(key, scope).catch(ignore);
    if (typeof inv.p === 'string') void this.l1.clearPattern(inv.p, scope).catch(ignore);
    if (Array.isArray(inv.g) && inv.g.length > 0) void this.l1.invalidateTags(inv.g, scope).catch(ignore);
  }

  private async publish(tenantId: string | undefined, what: Omit<Invalidation, 'o' | 'n'>): Promise<void> {
    const message: Invalidation = { o: this.id, ...what };
    if (tenantId !== undefined) message.n = tenantId;
    try {
      await this.backend.publishForTier(JSON.stringify(message));
      this.published++;
    } catch (error) {
      this.own.add(scopeOf(tenantId), 'errors');
      throw error;
    }
  }

  link(): TierLinkStats {
    return {
      subscribed: this.subscribed,
      losses: this.losses,
      drops: this.drops,
      received: this.received,
      published: this.published,
      breaker: this.breakerOpen ? 'open' : 'closed',
    };
  }

  on<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.on(type, listener);
    return this;
  }

  off<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.off(type, listener);
    return this;
  }

  /** What happens on the server alone (evictions, expiries, reconnections) is the Redis tier's event, handed on. */
  private forward(type: CacheEventType, listened: boolean): void {
    if (type !== 'evict' && type !== 'expire' && type !== 'reconnect') return;
    const existing = this.forwarders.get(type);
    if (listened && existing === undefined) {
      const listener = (event: CacheEvent) => this.events.dispatch({ ...event, tier: 'l2' });
      this.forwarders.set(type, listener);
      this.l2.on(type, listener);
    } else if (!listened && existing !== undefined) {
      this.forwarders.delete(type);
      this.l2.off(type, existing);
    }
  }

  private emit(type: CacheEventType, operation: string, key: string | undefined, count: number, tenantId: string | undefined, started?: number, extra?: Partial<CacheEvent>): void {
    const event: CacheEvent = { type, source: 'tiered', operation, key, count, tenantId, ...extra };
    if (started !== undefined) event.durationMs = performance.now() - started;
    this.events.emit(event);
  }

  private failed(error: unknown, operation: string, tenantId: string | undefined): unknown {
    if (this.events.listening) this.emit('error', operation, undefined, 1, tenantId, undefined, { error });
    return error;
  }

  /**
   * A call to the Redis tier behind the breaker: while it is open, rejected at
   * once (the memory tier still answers its hits); a probe closes it, and the
   * memory tier is then emptied, since it may have missed invalidations.
   */
  private async toL2<T>(tenantId: string | undefined, call: () => Promise<T>): Promise<T> {
    let probe = false;
    if (this.breakerOpen) {
      if (performance.now() < this.openUntil || this.probing) {
        this.own.add(scopeOf(tenantId), 'errors');
        throw new DragonflyConnectionError('the Redis tier is down: its breaker is open, calls fail fast until a probe succeeds', 'connection');
      }
      probe = this.probing = true;
    }
    try {
      const result = await call();
      this.failures = 0;
      if (probe) await this.closeBreaker();
      return result;
    } catch (error) {
      if (isOutage(error)) {
        this.failures++;
        if (probe || this.failures >= BREAKER_FAILURES) this.openBreaker();
      } else if (probe) await this.closeBreaker();
      throw error;
    } finally {
      if (probe) this.probing = false;
    }
  }

  private openBreaker(): void {
    this.openUntil = performance.now() + BREAKER_OPEN_MS;
    if (this.breakerOpen) return;
    this.breakerOpen = true;
    if (this.events.listening) this.emit('breaker-open', 'circuit', undefined, 1, undefined);
  }

  private async closeBreaker(): Promise<void> {
    this.breakerOpen = false;
    this.failures = 0;
    await this.dropL1();
    if (this.events.listening) this.emit('breaker-close', 'circuit', undefined, 1, undefined);
  }

  /** Copies what Redis answered into the memory tier, unless something changed while it was read. */
  private async fill(key: string, tenantId: string | undefined, read: TierRead, since: number, sent: number): Promise<void> {
    if (read.stale || this.closed || !this.unchangedSince(since, tenantId, key)) return;
    // The server counted the life left when it answered: the time since the request is taken off, so the copy ends first.
    const life = Math.min(read.lifeMs ?? Infinity, this.l1TtlMs) - (performance.now() - sent);
    if (life < 1) return;
    const options: EntryOptions = { ttl: Math.floor(life) / 1000 };
    if (tenantId !== undefined) options.tenantId = tenantId;
    if (read.tags !== undefined) {
      options.tags = read.tags;
      options.startedAt = read.startedAt;
    }
    await this.l1.writeEntry(key, read.value, options).catch(() => {});
  }

  private async fromL2(key: string, tenantId: string | undefined, stale: boolean): Promise<TierRead | undefined> {
    const since = this.epoch;
    const sent = performance.now();
    this.reading++;
    try {
      const read = await this.toL2(tenantId, () => this.backend.readForTier(key, tenantId, stale));
      if (read !== undefined) await this.fill(key, tenantId, read, since, sent);
      return read;
    } finally {
      if (--this.reading === 0) this.changedAt.clear();
    }
  }

  async get<T>(key: string, options?: ScopeOptions): Promise<T | undefined> {
    if (this.events.listening) return this.getWithEvents<T>(key, options);
    const hit = this.near.getNow(key, options);
    if (hit !== undefined) return hit as T;
    return (await this.fromL2(key, options?.tenantId, false))?.value as T | undefined;
  }

  private async getWithEvents<T>(key: string, options: ScopeOptions | undefined): Promise<T | undefined> {
    const started = performance.now();
    const tenantId = options?.tenantId;
    let value = this.near.getNow(key, options) as T | undefined;
    let tier = 'l1';
    if (value === undefined) {
      tier = 'l2';
      try {
        value = (await this.fromL2(key, tenantId, false))?.value as Awaited<T> | undefined;
      } catch (error) {
        throw this.failed(error, 'get', tenantId);
      }
    }
    this.emit(value === undefined ? 'miss' : 'hit', 'get', key, 1, tenantId, started, value === undefined ? undefined : { tier });
    return value;
  }

  async readEntry<T>(key: string, options?: ScopeOptions): Promise<CacheEntry<T> | undefined> {
    // The memory tier holds fresh copies only: a stale entry is always the Redis tier's.
    const hit = await this.l1.readEntry<T>(key, options);
    if (hit !== undefined && !hit.stale) return hit;
    const read = await this.fromL2(key, options?.tenantId, true);
    return read === undefined ? undefined : { value: read.value as T, stale: read.stale };
  }

  getOrSet<T>(key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<T> {
    return getOrSet(this, this.readThrough, key, factory, options);
  }

  async getMany<T>(keys: Iterable<string>, options?: ScopeOptions): Promise<Map<string, T>> {
    const list = keysOf(keys);
    checkScopeOptions('getMany', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    const found = await this.l1.getMany<T>(list, options);
    const missing = list.filter((key) => !found.has(key));
    if (missing.length > 0) {
      let reads: (TierRead | undefined)[];
      try {
        // One round trip: the reads are pipelined on the Redis tier's connection.
        reads = await Promise.all(missing.map((key) => this.fromL2(key, tenantId, false)));
      } catch (error) {
        throw this.failed(error, 'getMany', tenantId);
      }
      for (let i = 0; i < missing.length; i++) {
        const read = reads[i];
        if (read !== undefined) found.set(missing[i] as string, read.value as T);
      }
    }
    if (this.events.listening) {
      if (found.size > 0) this.emit('hit', 'getMany', undefined, found.size, tenantId, started);
      if (list.length > found.size) this.emit('miss', 'getMany', undefined, list.length - found.size, tenantId, found.size > 0 ? undefined : started);
    }
    return found;
  }

  /**
   * A change of `keys` (`undefined`: a pattern, tags, everything): on the
   * Redis tier, then the memory copies here are dropped (`drop`) and the
   * invalidations `published` for its result are sent, in that order, before
   * it resolves. A Redis read of those keys in flight meanwhile is not copied
   * (see `epoch`).
   */
  private async change<R>(
    operation: string,
    tenantId: string | undefined,
    keys: readonly string[] | undefined,
    call: () => Promise<R>,
    drop: () => Promise<unknown>,
    published: (result: R) => Omit<Invalidation, 'o' | 'n'>[],
  ): Promise<R> {
    if (this.closed) throw new CacheError('the cache is closed', 'closed');
    this.changed(tenantId, keys);
    let result: R;
    try {
      result = await this.toL2(tenantId, call);
    } catch (error) {
      // The write may have landed before the link failed: no copy here may outlive it.
      if (isOutage(error)) {
        this.changed(tenantId, keys);
        await drop().catch(() => {});
      }
      throw this.failed(error, operation, tenantId);
    }
    this.changed(tenantId, keys);
    await drop().catch(() => {});
    try {
      for (const what of published(result)) await this.publish(tenantId, what);
    } catch (error) {
      throw this.failed(error, operation, tenantId);
    }
    return result;
  }

  /**
   * Shared flights lock in the Redis tier; the holder's write is a change of
   * this cache, so every other process drops its copy of the key as after a `set`.
   */
  [FLIGHT_LOCKS](): FlightLocks | undefined {
    if (this.flightLocks !== undefined) return this.flightLocks;
    const locks = locksOf(this.l2);
    if (locks === undefined) return undefined;
    this.flightLocks = {
      acquire: (key, tenantId, token, ttlMs) => locks.acquire(key, tenantId, token, ttlMs),
      beat: (key, tenantId, token, ttlMs) => locks.beat(key, tenantId, token, ttlMs),
      release: (key, tenantId, token, outcome) => locks.release(key, tenantId, token, outcome),
      listen: (key, tenantId, heard) => locks.listen(key, tenantId, heard),
      commit: (op, key, value, options, token) => {
        const tenantId = options?.tenantId;
        const keys = [key];
        return this.change(op, tenantId, keys, () => locks.commit(op, key, value, options, token), () => this.dropKeys(keys, tenantId), (stored) => (stored ? [{ k: keys }] : []));
      },
    };
    return this.flightLocks;
  }

  /** Drops this process's copies of `keys`. */
  private async dropKeys(keys: readonly string[], tenantId: string | undefined): Promise<void> {
    const scope = scoped(tenantId);
    for (const key of keys) await this.l1.delete(key, scope);
  }

  async set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    checkKey(key);
    checkSetOptions('set', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    const keys = [key];
    const stored = await this.change('set', tenantId, keys, () => this.l2.set(key, value, options), () => this.dropKeys(keys, tenantId), () => [{ k: keys }]);
    if (stored && this.events.listening) this.emit('set', 'set', key, 1, tenantId, started);
    return stored;
  }

  async writeEntry(key: string, value: unknown, options?: EntryOptions): Promise<boolean> {
    checkKey(key);
    const tenantId = options?.tenantId;
    const keys = [key];
    return this.change('writeEntry', tenantId, keys, () => this.l2.writeEntry(key, value, options), () => this.dropKeys(keys, tenantId), () => [{ k: keys }]);
  }

  async add(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    checkKey(key);
    checkSetOptions('add', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    const keys = [key];
    // Nothing live was there, so no process holds a copy to drop; a refusal changed nothing either.
    const stored = await this.change('add', tenantId, keys, () => this.l2.add(key, value, options), () => this.dropKeys(keys, tenantId), () => []);
    if (stored && this.events.listening) this.emit('set', 'add', key, 1, tenantId, started);
    return stored;
  }

  async setMany(entries: BatchEntries, options?: SetOptions): Promise<number> {
    const pairs = entriesOf(entries);
    checkSetOptions('setMany', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    const keys = [...new Set(pairs.map(([key]) => key))];
    const messages: Omit<Invalidation, 'o' | 'n'>[] = [];
    for (let i = 0; i < keys.length; i += KEYS_PER_MESSAGE) messages.push({ k: keys.slice(i, i + KEYS_PER_MESSAGE) });
    const stored = await this.change('setMany', tenantId, keys, () => this.l2.setMany(pairs, options), () => this.dropKeys(keys, tenantId), () => messages);
    if (stored > 0 && this.events.listening) this.emit('set', 'setMany', undefined, stored, tenantId, started);
    return stored;
  }

  async delete(key: string, options?: ScopeOptions): Promise<boolean> {
    checkKey(key);
    checkScopeOptions('delete', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    const keys = [key];
    const removed = await this.change('delete', tenantId, keys, () => this.l2.delete(key, options), () => this.dropKeys(keys, tenantId), () => [{ k: keys }]);
    if (removed && this.events.listening) this.emit('delete', 'delete', key, 1, tenantId, started);
    return removed;
  }

  async deleteIfEquals(key: string, expected: unknown, options?: ScopeOptions): Promise<boolean> {
    checkKey(key);
    checkScopeOptions('deleteIfEquals', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    const keys = [key];
    const removed = await this.change('deleteIfEquals', tenantId, keys, () => this.l2.deleteIfEquals(key, expected, options), () => this.dropKeys(keys, tenantId), (done) => (done ? [{ k: keys }] : []));
    if (removed && this.events.listening) this.emit('delete', 'deleteIfEquals', key, 1, tenantId, started);
    return removed;
  }

  async clearPattern(pattern: string, options?: ScopeOptions): Promise<number> {
    checkPattern(pattern);
    checkScopeOptions('clearPattern', options);
    const tenantId = options?.tenantId;
    const started = this.events.listening ? performance.now() : undefined;
    scopeOf(tenantId);
    const removed = await this.change('clearPattern', tenantId, undefined, () => this.l2.clearPattern(pattern, options), () => this.l1.clearPattern(pattern, options), () => [{ p: pattern }]);
    if (removed > 0 && this.events.listening) this.emit('delete', 'clearPattern', undefined, removed, tenantId, started);
    return removed;
  }

  async invalidateTags(tags: readonly string[], options?: ScopeOptions): Promise<void> {
    const list = tagsOf(tags, 'invalidateTags');
    checkScopeOptions('invalidateTags', options);
    const tenantId = options?.tenantId;
    scopeOf(tenantId);
    if (list === undefined) return;
    await this.change('invalidateTags', tenantId, undefined, () => this.l2.invalidateTags(list, options), () => this.l1.invalidateTags(list, options), () => [{ g: list }]);
  }

  /** The Redis tier's keys: the memory tier holds copies of some of them only. */
  keys(pattern: string, options?: ScopeOptions): AsyncIterable<string> {
    return this.l2.keys(pattern, options);
  }

  /** The Redis tier's entry (a memory copy says nothing more). */
  inspect(key: string, options?: ScopeOptions): Promise<EntryInfo | undefined> {
    return this.toL2(options?.tenantId, () => this.l2.inspect(key, options));
  }

  async stats(options?: StatsOptions): Promise<TieredCacheStats> {
    checkStatsOptions(options);
    const tenantId = options?.tenantId;
    const [near, far] = await Promise.all([this.l1.stats(scoped(tenantId)), this.toL2(tenantId, () => this.l2.stats(options))]);
    const own = this.own.forScope(scopeOf(tenantId));
    const hits = near.hits + far.hits;
    const misses = far.misses;
    const reads = hits + misses;
    return {
      ...far,
      hits,
      misses,
      hitRate: reads === 0 ? 0 : hits / reads,
      missRate: reads === 0 ? 0 : misses / reads,
      errors: near.errors + far.errors + own.errors,
      staleHits: far.staleHits + own.staleHits,
      listenerErrors: this.events.listenerErrors,
      l1Hits: near.hits,
      l2Hits: far.hits,
    };
  }

  /** Both tiers work and this process receives the others' invalidations. */
  async validate(): Promise<boolean> {
    if (this.closed || !this.subscribed) return false;
    const [near, far] = await Promise.all([this.l1.validate(), this.l2.validate()]);
    return near && far;
  }

  async clear(): Promise<void> {
    await this.change('clear', undefined, undefined, () => this.l2.clear(), () => this.l1.clear(), () => [{ c: 1 }]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribed = false;
    for (const [type, listener] of this.forwarders) this.l2.off(type, listener);
    this.forwarders.clear();
    this.subscriber.disconnect();
    await Promise.allSettled([this.l1.close(), this.l2.close()]);
  }
}
