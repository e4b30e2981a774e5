import { CacheError } from '../core/errors.js';
import { checkLogger, EventHub, log, type CacheEvent, type CacheEventListener, type CacheEventType, type CacheLogger } from '../core/events.js';
import { getOrSet } from '../core/get-or-set.js';
import { checkKey, checkPattern, checkScopeOptions, checkSetOptions, checkStatsOptions, entriesOf, keysOf, scopeOf, tagsOf } from '../core/keys.js';
import { checkOptions, describeValue, optionNames } from '../core/options.js';
import { CounterSet } from '../core/stats.js';
import type { BatchEntries, Cache, CacheEntry, CacheStats, EntryInfo, EntryOptions, GetOrSetOptions, ScopeOptions, SetOptions, StatsOptions } from '../core/types.js';

/**
 * Options of `createFallbackCache`.
 *
 * @example
 * const cache = createFallbackCache({ primary: () => createDragonflyCache({ url }), fallback: createMemoryCache(), logger: console });
 */
export interface FallbackCacheOptions {
  /**
   * The cache used while it works, typically a Dragonfly cache, or a function
   * that creates it: `primary: () => createDragonflyCache({ url })`. With a
   * function the fallback cache can start while the server is down: calls are
   * answered by `fallback` until the function resolves (the circuit reads
   * `'open'` meanwhile, with `connecting: true`). It is called at once, then
   * again `resetTimeout` ms after each rejection, in the background (never on a
   * caller's path), until it resolves. Everything written, deleted or cleared
   * before then is invalidated on the primary before it answers (it may hold
   * older values). `close()` closes the primary, also one that arrives later.
   */
  primary: Cache | (() => Promise<Cache>);
  /** The cache that takes over while the primary is down, typically a memory cache. `close()` closes it. */
  fallback: Cache;
  /**
   * Consecutive `connection` / `timeout` failures of the primary that open the
   * circuit; while open, calls go straight to the fallback without touching the
   * primary. A positive integer. Default 3.
   */
  failureThreshold?: number;
  /**
   * Milliseconds the circuit stays open before one probe call is let through to
   * the primary (half-open); the probe's success closes the circuit, its failure
   * opens it for another `resetTimeout`. At least 10. Default 5000.
   * (Durations follow one rule in cachekit: TTLs in seconds, timeouts and waits in milliseconds.)
   */
  resetTimeout?: number;
  /**
   * Where the breaker's changes are logged (console, pino: see `CacheLogger`):
   * `warn` when the circuit opens, `info` when it closes or the primary
   * connects. Default: nothing is logged.
   */
  logger?: CacheLogger;
}

/** The breaker: `closed` (the primary answers), `open` (the fallback answers), `half-open` (one probe call tries the primary). */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * What `circuit()` answers.
 *
 * @example
 * if (cache.circuit().state !== 'closed') metrics.gauge('cache.degraded', 1);
 */
export interface CircuitStats {
  /** Where calls go now (see `CircuitState`). */
  state: CircuitState;
  /** Connection/timeout failures of the primary since its last success. */
  consecutiveFailures: number;
  /** Times the circuit opened. */
  opened: number;
  /** Calls sent to the primary (probes and invalidation replays included). */
  primaryCalls: number;
  /** Calls answered by the fallback. */
  fallbackCalls: number;
  /** Keys, patterns and clears waiting to be applied to the primary before it is trusted again. */
  pendingInvalidations: number;
  /** `true` while `primary` is a function that has not resolved yet (the state is then `'open'`). */
  connecting: boolean;
  /** Calls of the `primary` function so far (0 when a Cache was given). */
  connectAttempts: number;
  /** Why the last call of the `primary` function failed, while connecting; `undefined` otherwise. */
  lastConnectError: unknown;
}

/** A `Cache` that answers from a fallback while its primary is down, behind a circuit breaker. */
export interface FallbackCache extends Cache {
  /** The breaker's state and counters, for dashboards and tests. */
  circuit(): CircuitStats;
}

// Past this many keys written or deleted during one outage, the whole primary
// namespace is cleared on recovery instead of replaying them one by one.
const MAX_PENDING = 10_000;
const REPLAY_CONCURRENCY = 100;

const OPTIONS = optionNames<FallbackCacheOptions>({ primary: true, fallback: true, failureThreshold: true, resetTimeout: true, logger: true });
const WHERE = 'createFallbackCache';

// Below this a breaker probes a dead server hundreds of times a second, the hammering it exists to spare.
const MIN_RESET_MS = 10;

function positive(name: string, value: unknown, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isSafeInteger(value))) {
    throw new CacheError(`${WHERE}: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${describeValue(value)}`, 'validation');
  }
  return value;
}

function isCache(value: unknown): value is Cache {
  return value !== null && typeof value === 'object' && typeof (value as Cache).get === 'function' && typeof (value as Cache).set === 'function';
}

/** Only an unreachable or silent primary is routed around; every other error is the caller's to see. */
function isOutage(error: unknown): boolean {
  return error instanceof CacheError && (error.errorType === 'connection' || error.errorType === 'timeout');
}

/**
 * Puts `fallback` (a memory cache) behind `primary` (Dragonfly) with a circuit
 * breaker, so a dead server is neither waited for nor hammered by every call.
 *
 * - Closed: calls go to the primary. A `connection` / `timeout` failure is
 *   answered by the fallback instead; `failureThreshold` of them in a row open
 *   the circuit. Other errors (`validation`, `serialization`, `server`,
 *   `refused`, `closed`) are never swallowed.
 * - Open: calls go to the fallback only. After `resetTimeout` milliseconds one
 *   call probes the primary (half-open) while the others keep using the fallback.
 * - Never stale after recovery: every key written or deleted and every pattern
 *   cleared while the primary was skipped is deleted from the primary before it
 *   answers again, and the fallback is then emptied. Entries written during an
 *   outage are therefore lost on recovery (a miss), never served stale.
 * - Starting during an outage: with `primary: () => createDragonflyCache(...)`
 *   this returns at once and serves from the fallback (circuit `'open'`,
 *   `connecting: true`) until the function resolves, calling it again in the
 *   background every `resetTimeout` ms.
 */
export function createFallbackCache(options: FallbackCacheOptions): FallbackCache {
  if (options === undefined) throw new CacheError(`${WHERE}: options { primary, fallback } are required`, 'validation');
  checkOptions(WHERE, options, OPTIONS);
  if (!isCache(options.primary) && typeof options.primary !== 'function') {
    throw new CacheError(`${WHERE}: primary must be a Cache or a function returning a Promise of one, got ${describeValue(options.primary)}`, 'validation');
  }
  if (!isCache(options.fallback)) throw new CacheError(`${WHERE}: fallback must be a Cache, got ${describeValue(options.fallback)}`, 'validation');
  if (options.primary === options.fallback) throw new CacheError(`${WHERE}: primary and fallback must be different caches`, 'validation');
  const failureThreshold = positive('failureThreshold', options.failureThreshold, 3, true);
  const resetMs = positive('resetTimeout', options.resetTimeout, 5000, false);
  // Wave 1 took seconds: `resetTimeout: 5` meant 5 s then, and would now probe 200 times a second.
  if (resetMs < MIN_RESET_MS) {
    throw new CacheError(
      `${WHERE}: resetTimeout is in milliseconds and must be at least ${MIN_RESET_MS}, got ${describeValue(resetMs)} (did you mean ${resetMs * 1000}, that is ${resetMs} s?)`,
      'validation',
    );
  }
  const logger = checkLogger(WHERE, options.logger);
  return new FallbackCacheImpl(options.primary, options.fallback, failureThreshold, resetMs, logger);
}

type Route = 'primary' | 'probe' | 'fallback';
type PrimaryFactory = () => Promise<Cache>;

class FallbackCacheImpl implements FallbackCache {
  readonly kind = 'fallback';
  private state: CircuitState = 'closed';
  // Undefined until a `primary` function resolves; every route goes to the fallback meanwhile.
  private primary: Cache | undefined;
  private connectAttempts = 0;
  private lastConnectError: unknown;
  private connectTimer: NodeJS.Timeout | undefined;
  // Causes of a failed `primary()` already reported, so a retry loop warns once per cause, not once per attempt.
  private readonly reported = new Set<string>();
  private closed = false;
  private failures = 0;
  private openedAt = 0;
  private opened = 0;
  private primaryCalls = 0;
  private fallbackCalls = 0;
  // What the primary must forget before it is trusted again, keyed by scope + key.
  private pendingKeys = new Map<string, [string | undefined, string]>();
  private pendingPatterns: [string | undefined, string][] = [];
  private pendingTags: [string | undefined, readonly string[]][] = [];
  private pendingAll = false;
  // getOrSet's stale answers and unstorable values, whichever cache served them; added to either's stats.
  private readonly staleHits = new CounterSet();
  private readonly readThrough = {
    staleHit: (tenantId: string | undefined) => this.staleHits.add(scopeOf(tenantId), 'staleHits'),
    unstorable: (tenantId: string | undefined) => this.staleHits.add(scopeOf(tenantId), 'errors'),
  };
  private reconciling: Promise<void> | undefined;
  private readonly events = new EventHub();
  // The listeners this cache put on its two caches, per type, to hand their events on.
  private readonly forwarders = new Map<CacheEventType, { primary: CacheEventListener; fallback: CacheEventListener }>();

  constructor(
    primary: Cache | PrimaryFactory,
    private readonly fallback: Cache,
    private readonly failureThreshold: number,
    private readonly resetMs: number,
    private readonly logger: CacheLogger | undefined,
  ) {
    this.events.onChange = (type, listened) => this.forward(type, listened);
    if (typeof primary === 'function') {
      this.state = 'open';
      this.connect(primary);
    } else {
      this.primary = primary;
    }
  }

  on<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.on(type, listener);
    return this;
  }

  off<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.off(type, listener);
    return this;
  }

  /**
   * The operations' events are the two caches' own, handed on with the tier
   * that answered (`primary` or `fallback`): subscribed to there while someone
   * listens here, so a cache nobody listens to builds no events.
   */
  private forward(type: CacheEventType, listened: boolean): void {
    if (type === 'breaker-open' || type === 'breaker-close') return;
    const existing = this.forwarders.get(type);
    if (listened && existing === undefined) {
      const pair = {
        primary: (event: CacheEvent) => this.events.dispatch({ ...event, tier: 'primary' }),
        fallback: (event: CacheEvent) => this.events.dispatch({ ...event, tier: 'fallback' }),
      };
      this.forwarders.set(type, pair);
      this.primary?.on(type, pair.primary);
      this.fallback.on(type, pair.fallback);
    } else if (!listened && existing !== undefined) {
      this.forwarders.delete(type);
      this.primary?.off(type, existing.primary);
      this.fallback.off(type, existing.fallback);
    }
  }

  private breaker(type: 'breaker-open' | 'breaker-close', message: string): void {
    log(this.logger, type === 'breaker-open' ? 'warn' : 'info', `cachekit: ${message}`);
    if (this.events.listening) this.events.emit({ type, source: 'fallback', operation: 'circuit', count: 1 });
  }

  private misconfigured(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (this.reported.has(message)) return;
    this.reported.add(message);
    const warning = `${WHERE}: the primary cannot be created, and not because it is unreachable: ${message}. Serving from the fallback${
      error instanceof CacheError && error.errorType === 'validation' ? '; it will not be tried again' : ` until it can, trying again every ${this.resetMs} ms`
    }`;
    process.emitWarning(warning, { code: 'CACHEKIT_PRIMARY_MISCONFIGURED' });
    log(this.logger, 'error', `cachekit: ${warning}`);
    if (this.events.listening) this.events.emit({ type: 'error', source: 'fallback', operation: 'connect', count: 1, error });
  }

  /** Calls the primary's factory, and again `resetMs` after each failure, until it gives a Cache. */
  private connect(factory: PrimaryFactory): void {
    this.connectAttempts++;
    let attempt: Promise<Cache>;
    try {
      attempt = Promise.resolve(factory());
    } catch (error) {
      attempt = Promise.reject(error);
    }
    attempt
      .then((primary) => {
        if (!isCache(primary) || primary === this.fallback) {
          throw new CacheError(`${WHERE}: primary() must resolve to a Cache other than the fallback, got ${describeValue(primary)}`, 'validation');
        }
        if (this.closed) {
          void primary.close().catch(() => {});
          return;
        }
        this.primary = primary;
        for (const [type, pair] of this.forwarders) primary.on(type, pair.primary);
        this.lastConnectError = undefined;
        // Straight to closed: it just connected. What the fallback answered meanwhile is
        // pending, so the first call replays it before anything reaches the primary.
        this.failures = 0;
        this.state = 'closed';
        this.breaker('breaker-close', `fallback cache: the primary connected after ${this.connectAttempts} attempt(s); the circuit is closed`);
      })
      .catch((error: unknown) => {
        if (this.closed) return;
        this.lastConnectError = error;
        if (!isOutage(error)) {
          // Not an outage but a mistake (a bad URL, a db the server refuses, wrong credentials):
          // the app would run on the fallback alone with nobody told. Say it, once per cause.
          this.misconfigured(error);
          // A `validation` error never fixes itself: retrying would only repeat it.
          if (error instanceof CacheError && error.errorType === 'validation') return;
        }
        this.connectTimer = setTimeout(() => {
          this.connectTimer = undefined;
          if (!this.closed) this.connect(factory);
        }, this.resetMs);
        // A retry alone must not keep a process alive.
        this.connectTimer.unref();
      });
  }

  circuit(): CircuitStats {
    return {
      state: this.state,
      consecutiveFailures: this.failures,
      opened: this.opened,
      primaryCalls: this.primaryCalls,
      fallbackCalls: this.fallbackCalls,
      pendingInvalidations: this.pendingAll ? Infinity : this.pendingKeys.size + this.pendingPatterns.length + this.pendingTags.length,
      connecting: this.primary === undefined && !this.closed,
      connectAttempts: this.connectAttempts,
      lastConnectError: this.primary === undefined ? this.lastConnectError : undefined,
    };
  }

  private route(): Route {
    if (this.state === 'closed') return 'primary';
    if (this.primary === undefined) return 'fallback';
    if (this.state === 'open' && Date.now() - this.openedAt >= this.resetMs) {
      this.state = 'half-open';
      return 'probe';
    }
    return 'fallback';
  }

  private succeeded(): void {
    this.failures = 0;
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.breaker('breaker-close', 'fallback cache: the primary answered again; the circuit is closed');
  }

  private failed(route: Route): void {
    this.failures++;
    if (route === 'probe' || (this.state === 'closed' && this.failures >= this.failureThreshold)) {
      const opening = route !== 'probe';
      if (opening) this.opened++;
      this.state = 'open';
      this.openedAt = Date.now();
      if (opening) this.breaker('breaker-open', `fallback cache: ${this.failures} primary failures in a row; the circuit is open, calls go to the fallback for ${this.resetMs} ms`);
    }
  }

  private get hasPending(): boolean {
    return this.pendingAll || this.pendingKeys.size > 0 || this.pendingPatterns.length > 0 || this.pendingTags.length > 0;
  }

  /**
   * One call: to the primary when the circuit lets it through, else (or when the
   * primary is down) to the fallback, recording what the primary must forget.
   */
  private async run<T>(call: (cache: Cache) => Promise<T>, forget?: () => void): Promise<T> {
    const route = this.route();
    if (route !== 'fallback') {
      try {
        if (this.reconciling !== undefined || this.hasPending) await this.reconciled();
        this.primaryCalls++;
        const result = await call(this.primary as Cache);
        this.succeeded();
        return result;
      } catch (error) {
        if (!isOutage(error)) {
          // The primary answered (with the caller's mistake): the probe proved it alive.
          if (route === 'probe') this.succeeded();
          throw error;
        }
        this.failed(route);
      }
    }
    this.fallbackCalls++;
    // Recorded even if the primary may have applied a write that timed out: it is deleted on recovery.
    forget?.();
    return call(this.fallback);
  }

  private forgetKey(tenantId: string | undefined, key: string): void {
    if (this.pendingAll) return;
    if (this.pendingKeys.size + this.pendingPatterns.length >= MAX_PENDING) return this.forgetAll();
    this.pendingKeys.set(`${scopeOf(tenantId)}${key}`, [tenantId, key]);
  }

  private forgetPattern(tenantId: string | undefined, pattern: string): void {
    if (this.pendingAll) return;
    if (this.pendingKeys.size + this.pendingPatterns.length >= MAX_PENDING) return this.forgetAll();
    this.pendingPatterns.push([tenantId, pattern]);
  }

  private forgetTags(tenantId: string | undefined, tags: readonly string[]): void {
    if (this.pendingAll) return;
    if (this.pendingKeys.size + this.pendingPatterns.length + this.pendingTags.length >= MAX_PENDING) return this.forgetAll();
    this.pendingTags.push([tenantId, tags]);
  }

  private forgetAll(): void {
    this.pendingAll = true;
    this.pendingKeys.clear();
    this.pendingPatterns = [];
    this.pendingTags = [];
  }

  /**
   * Resolves once no invalidation is owed to the primary or being replayed. Every
   * primary call waits here, also while a replay runs with nothing left pending:
   * the replay takes the pending list before its deletes land, and a read sent
   * meanwhile got a pre-outage value back. A loop, since a write that failed
   * during the replay owes an invalidation of its own.
   */
  private async reconciled(): Promise<void> {
    while (this.reconciling !== undefined || this.hasPending) await this.reconcile();
  }

  /** Applies the pending invalidations to the primary once, however many calls are waiting for it. */
  private reconcile(): Promise<void> {
    this.reconciling ??= this.replay().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async replay(): Promise<void> {
    const primary = this.primary as Cache;
    const all = this.pendingAll;
    const keys = [...this.pendingKeys.values()];
    const patterns = this.pendingPatterns;
    const tags = this.pendingTags;
    this.pendingAll = false;
    this.pendingKeys = new Map();
    this.pendingPatterns = [];
    this.pendingTags = [];
    try {
      if (all) {
        this.primaryCalls++;
        await primary.clear();
      } else {
        for (const [tenantId, pattern] of patterns) {
          this.primaryCalls++;
          await primary.clearPattern(pattern, tenantId === undefined ? undefined : { tenantId });
        }
        for (const [tenantId, list] of tags) {
          this.primaryCalls++;
          await primary.invalidateTags(list, tenantId === undefined ? undefined : { tenantId });
        }
        // The first key alone: a primary still down fails once, not once per pending key.
        for (let i = 0, n = 1; i < keys.length; i += n, n = REPLAY_CONCURRENCY) {
          const chunk = keys.slice(i, i + n);
          this.primaryCalls += chunk.length;
          await Promise.all(chunk.map(([tenantId, key]) => primary.delete(key, tenantId === undefined ? undefined : { tenantId })));
        }
      }
    } catch (error) {
      // Still owed: put it all back (deleting twice is harmless).
      if (all) this.forgetAll();
      else {
        for (const [tenantId, pattern] of patterns) this.forgetPattern(tenantId, pattern);
        for (const [tenantId, list] of tags) this.forgetTags(tenantId, list);
        for (const [tenantId, key] of keys) this.forgetKey(tenantId, key);
      }
      throw error;
    }
    // The outage's entries are now invalid everywhere; a later outage starts from an empty fallback.
    await this.fallback.clear();
  }

  async get<T>(key: string, options?: ScopeOptions): Promise<T | undefined> {
    checkScopeOptions('get', options);
    return this.run((cache) => cache.get<T>(key, options));
  }

  async set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    checkKey(key);
    checkSetOptions('set', options);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.set(key, value, options),
      () => this.forgetKey(tenantId, key),
    );
  }

  async readEntry<T>(key: string, options?: ScopeOptions): Promise<CacheEntry<T> | undefined> {
    checkScopeOptions('readEntry', options);
    return this.run((cache) => cache.readEntry<T>(key, options));
  }

  async writeEntry(key: string, value: unknown, options?: EntryOptions): Promise<boolean> {
    checkKey(key);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.writeEntry(key, value, options),
      () => this.forgetKey(tenantId, key),
    );
  }

  getOrSet<T>(key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<T> {
    return getOrSet(this, this.readThrough, key, factory, options);
  }

  /** On the primary, or during an outage on the fallback and replayed to the primary before it answers again, as deletes are. */
  async invalidateTags(tags: readonly string[], options?: ScopeOptions): Promise<void> {
    const list = tagsOf(tags, 'invalidateTags');
    checkScopeOptions('invalidateTags', options);
    const tenantId = tenantOf(options);
    if (list === undefined) return;
    await this.run(
      (cache) => cache.invalidateTags(list, options),
      () => this.forgetTags(tenantId, list),
    );
  }

  async add(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    checkKey(key);
    checkSetOptions('add', options);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.add(key, value, options),
      () => this.forgetKey(tenantId, key),
    );
  }

  async delete(key: string, options?: ScopeOptions): Promise<boolean> {
    checkKey(key);
    checkScopeOptions('delete', options);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.delete(key, options),
      () => this.forgetKey(tenantId, key),
    );
  }

  async deleteIfEquals(key: string, expected: unknown, options?: ScopeOptions): Promise<boolean> {
    checkKey(key);
    checkScopeOptions('deleteIfEquals', options);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.deleteIfEquals(key, expected, options),
      () => this.forgetKey(tenantId, key),
    );
  }

  async clearPattern(pattern: string, options?: ScopeOptions): Promise<number> {
    checkPattern(pattern);
    checkScopeOptions('clearPattern', options);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.clearPattern(pattern, options),
      () => this.forgetPattern(tenantId, pattern),
    );
  }

  /**
   * While the circuit is closed, the primary's keys (after the pending
   * invalidations are applied there); while it is open or half-open, or the
   * primary is still connecting, the fallback's: only what was written during
   * the outage. An outage before the first key falls back; one after keys were
   * listed rejects, as a listing cannot switch caches half-way.
   */
  async *keys(pattern: string, options?: ScopeOptions): AsyncGenerator<string, void, undefined> {
    checkPattern(pattern);
    checkScopeOptions('keys', options);
    tenantOf(options);
    const route = this.route();
    if (route !== 'fallback') {
      let listed = false;
      try {
        await this.reconciled();
        this.primaryCalls++;
        for await (const key of (this.primary as Cache).keys(pattern, options)) {
          if (!listed) this.succeeded();
          listed = true;
          yield key;
        }
        if (!listed) this.succeeded();
        return;
      } catch (error) {
        if (listed || !isOutage(error)) {
          if (!listed && route === 'probe') this.succeeded();
          throw error;
        }
        this.failed(route);
      }
    }
    this.fallbackCalls++;
    yield* this.fallback.keys(pattern, options);
  }

  async getMany<T>(keys: Iterable<string>, options?: ScopeOptions): Promise<Map<string, T>> {
    // An iterable may be single-use: read it once (validating it), hand either cache the same array.
    const list = keysOf(keys);
    checkScopeOptions('getMany', options);
    return this.run((cache) => cache.getMany<T>(list, options));
  }

  async setMany(entries: BatchEntries, options?: SetOptions): Promise<number> {
    const pairs = entriesOf(entries);
    checkSetOptions('setMany', options);
    const tenantId = tenantOf(options);
    return this.run(
      (cache) => cache.setMany(pairs, options),
      () => {
        for (const [key] of pairs) this.forgetKey(tenantId, key);
      },
    );
  }

  async inspect(key: string, options?: ScopeOptions): Promise<EntryInfo | undefined> {
    checkKey(key);
    checkScopeOptions('inspect', options);
    return this.run((cache) => cache.inspect(key, options));
  }

  async stats(options?: StatsOptions): Promise<CacheStats> {
    checkStatsOptions(options);
    const stats = await this.run((cache) => cache.stats(options));
    const own = this.staleHits.forScope(scopeOf(options?.tenantId));
    return { ...stats, listenerErrors: stats.listenerErrors + this.events.listenerErrors, staleHits: stats.staleHits + own.staleHits, errors: stats.errors + own.errors };
  }

  /**
   * While the circuit is closed, whether the primary works end to end (calls go
   * there); while it is open or half-open (or the primary is still connecting),
   * whether the fallback does; `false` while the `primary` function fails for a
   * reason other than an outage (a misconfiguration).
   */
  async validate(): Promise<boolean> {
    // A primary that cannot even be created for a reason other than an outage is a broken cache, not a degraded one.
    if (this.primary === undefined && this.lastConnectError !== undefined && !isOutage(this.lastConnectError)) return false;
    return this.state === 'closed' && this.primary !== undefined ? this.primary.validate() : this.fallback.validate();
  }

  async clear(): Promise<void> {
    await this.run(
      (cache) => cache.clear(),
      () => this.forgetAll(),
    );
    // Whichever answered, the other must not keep this namespace's entries either.
    if (this.state === 'closed' && !this.hasPending) await this.fallback.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.connectTimer);
    // A primary still being created is closed when it arrives (see `connect`).
    await Promise.allSettled([this.primary?.close(), this.fallback.close()]);
  }
}

function tenantOf(options: ScopeOptions | undefined): string | undefined {
  const tenantId = options?.tenantId;
  // Validated now, so nothing invalid is ever queued for replay.
  scopeOf(tenantId);
  return tenantId;
}
