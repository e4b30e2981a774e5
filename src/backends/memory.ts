import { LRUCache } from 'lru-cache';
import { CacheError } from '../core/errors.js';
import { EventHub, type CacheEvent, type CacheEventListener, type CacheEventType } from '../core/events.js';
import { compileGlob } from '../core/glob.js';
import { getOrSet } from '../core/get-or-set.js';
import { checkKey, checkPattern, checkScopeOptions, checkSetOptions, checkStatsOptions, defaultTtlMs, entriesOf, keysOf, scopeOf, tagsOf, ttlMs, writeMetaOf, type WriteMeta } from '../core/keys.js';
import { checkOptions, describeValue, optionNames } from '../core/options.js';
import { decode, encode } from '../core/serialization.js';
import { CounterSet, toStats, type Measured } from '../core/stats.js';
import { noteTagInvalidation } from '../core/single-flight.js';
import { TAG_GUARD_MS, tooOldToTag } from '../core/tags.js';
import type { BatchEntries, Cache, CacheEntry, CacheStats, EntryInfo, EntryOptions, GetOrSetOptions, ScopeOptions, SetOptions, StatsOptions } from '../core/types.js';

/**
 * Options of `createMemoryCache`.
 *
 * @example
 * const cache = createMemoryCache({ maxSize: 50_000, maxBytes: 256 * 1024 * 1024, defaultTtl: 300 });
 */
export interface MemoryCacheOptions {
  /** TTL applied when a `set` gives none, in seconds; `Infinity` or omitted: entries never expire. */
  defaultTtl?: number;
  /** Most entries held, a positive integer; the least recently used is evicted past it. Default 10 000. */
  maxSize?: number;
  /**
   * Most bytes held (UTF-8 bytes of keys, with a tenant's framing, plus encoded values), a positive
   * integer; least recently used entries are evicted past it, and a single entry larger than this is
   * refused (`set` answers `false`, `add` rejects with `refused`, `setMany` does not count it),
   * keeping what was stored under its key. Default: no byte limit.
   */
  maxBytes?: number;
  /**
   * Store and return values by reference instead of as private copies. Faster
   * reads, but mutating a value you stored or got changes the cached entry.
   * Values are still validated (and measured) on `set`. Default `false`.
   */
  byReference?: boolean;
}

const DEFAULT_MAX_SIZE = 10_000;
// Tag records per entry allowed: an evicted record only turns its entries into misses.
const TAG_RECORDS_PER_ENTRY = 4;
const OPTIONS = optionNames<MemoryCacheOptions>({ defaultTtl: true, maxSize: true, maxBytes: true, byReference: true });

function positiveInteger(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new CacheError(`createMemoryCache: ${name} must be a positive integer, got ${describeValue(value)}`, 'validation');
  }
  return value;
}

/**
 * In-process LRU cache on `lru-cache`. Throws a `validation` CacheError at once
 * for bad options, unknown option names included (it is synchronous; operations are not).
 */
export function createMemoryCache(options: MemoryCacheOptions = {}): Cache {
  checkOptions('createMemoryCache', options, OPTIONS);
  return new MemoryCache(options);
}

class MemoryCache implements Cache {
  readonly kind = 'memory';
  // Holds private snapshots (see `toStored`), or the values themselves with
  // byReference (null included: lru-cache only refuses undefined).
  private readonly lru: LRUCache<string, {}>;
  private readonly defaultTtl: number | undefined;
  private readonly maxBytes: number | undefined;
  private readonly byReference: boolean;
  private readonly counters = new CounterSet();
  private readonly events = new EventHub();
  // (scope + tag) -> when it was last invalidated, epoch ms (0: never); see src/core/tags.ts.
  private readonly tagRecords: LRUCache<string, { at: number }>;
  private closed = false;

  constructor(options: MemoryCacheOptions) {
    try {
      this.defaultTtl = defaultTtlMs(options.defaultTtl);
    } catch (error) {
      throw new CacheError(`createMemoryCache: ${(error as Error).message}`, 'validation');
    }
    const max = positiveInteger('maxSize', options.maxSize) ?? DEFAULT_MAX_SIZE;
    this.maxBytes = positiveInteger('maxBytes', options.maxBytes);
    if (options.byReference !== undefined && typeof options.byReference !== 'boolean') {
      throw new CacheError(`createMemoryCache: byReference must be a boolean, got ${describeValue(options.byReference)}`, 'validation');
    }
    this.byReference = options.byReference === true;
    this.lru = new LRUCache<string, {}>({
      max,
      // Sizes are always tracked so `memoryMb` is measured; the limit applies only with maxBytes.
      maxSize: this.maxBytes ?? Number.MAX_SAFE_INTEGER,
      // lru-cache keeps the `performance` object it saw at import; reading the global
      // on each call lets fake clocks (vi.useFakeTimers, sinon) drive expiry in tests.
      perf: { now: () => performance.now() },
      dispose: (_value, key, reason) => {
        const scope = scopeOfRaw(key);
        if (reason === 'evict') this.counters.addIfTracked(scope, 'evictions');
        else if (reason === 'expire') this.counters.addIfTracked(scope, 'expirations');
        else return;
        if (this.events.listening) this.emit(reason, 'server', key.slice(scope.length), 1, tenantOfScope(scope));
      },
    });
    this.tagRecords = new LRUCache<string, { at: number }>({ max: max * TAG_RECORDS_PER_ENTRY, ttlAutopurge: false, perf: { now: () => performance.now() } });
  }

  /** Throws a `closed` CacheError once the cache is closed (also what createTieredCache checks of its memory tier). */
  open(): void {
    if (this.closed) throw new CacheError('the cache is closed', 'closed');
  }

  on<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.on(type, listener);
    return this;
  }

  off<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.off(type, listener);
    return this;
  }

  /** Queues an event; only called when `this.events.listening`. */
  private emit(type: CacheEventType, operation: string, key: string | undefined, count: number, tenantId: string | undefined, durationMs?: number): void {
    const event: CacheEvent = { type, source: 'memory', operation, key, count, tenantId };
    if (durationMs !== undefined) event.durationMs = durationMs;
    this.events.emit(event);
  }

  async get<T>(key: string, options?: ScopeOptions): Promise<T | undefined> {
    this.open();
    checkKey(key);
    checkScopeOptions('get', options);
    if (!this.events.listening) return this.read(localScope(options?.tenantId), key) as T | undefined;
    const started = performance.now();
    const value = this.read(localScope(options?.tenantId), key);
    this.emit(value === undefined ? 'miss' : 'hit', 'get', key, 1, options?.tenantId, performance.now() - started);
    return value as T | undefined;
  }

  /**
   * `get` without the Promise, for a tiered cache's memory tier: it throws
   * where `get` rejects, and emits nothing (the tiered cache emits its own
   * events). One async layer instead of two on a tiered hit.
   */
  getNow(key: string, options: ScopeOptions | undefined): unknown {
    this.open();
    checkKey(key);
    checkScopeOptions('get', options);
    return this.read(localScope(options?.tenantId), key);
  }

  private read(scope: string, key: string): unknown {
    const stored = this.lru.get(scope + key);
    if (stored === undefined || (stored instanceof WithMeta && !this.fresh(scope, scope + key, stored))) {
      this.counters.miss(scope);
      return undefined;
    }
    this.counters.hit(scope);
    return this.materialize(stored instanceof WithMeta ? stored.stored : stored);
  }

  private materialize(stored: {}): unknown {
    if (this.byReference) return stored;
    return stored instanceof EncodedText ? decode(stored.text) : cloneJson(stored);
  }

  /** Whether an entry with metadata is within its ttl and not invalidated; an invalidated one is dropped. */
  private fresh(scope: string, raw: string, entry: WithMeta): boolean {
    if (!this.valid(scope, raw, entry)) return false;
    return entry.freshUntil === undefined || performance.now() < entry.freshUntil;
  }

  /** Whether none of the entry's tags was invalidated since its computation started (see src/core/tags.ts). */
  private valid(scope: string, raw: string, entry: WithMeta): boolean {
    const { tags } = entry;
    if (tags === undefined) return true;
    for (const tag of tags) {
      const record = this.tagRecords.get(scope + tag);
      if (record === undefined || record.at >= entry.startedAt) {
        this.lru.delete(raw);
        return false;
      }
    }
    return true;
  }

  /** Whether `raw` holds an entry `get` would return. */
  private live(scope: string, raw: string): boolean {
    const stored = this.lru.peek(raw);
    if (stored === undefined) return false;
    return !(stored instanceof WithMeta) || this.fresh(scope, raw, stored);
  }

  async readEntry<T>(key: string, options?: ScopeOptions): Promise<CacheEntry<T> | undefined> {
    this.open();
    checkKey(key);
    checkScopeOptions('readEntry', options);
    const scope = localScope(options?.tenantId);
    const raw = scope + key;
    const stored = this.lru.get(raw);
    if (stored === undefined || (stored instanceof WithMeta && !this.valid(scope, raw, stored))) {
      this.counters.miss(scope);
      return undefined;
    }
    if (!(stored instanceof WithMeta)) {
      this.counters.hit(scope);
      return { value: this.materialize(stored) as T, stale: false };
    }
    const stale = stored.freshUntil !== undefined && performance.now() >= stored.freshUntil;
    if (stale) this.counters.miss(scope);
    else this.counters.hit(scope);
    return { value: this.materialize(stored.stored) as T, stale };
  }

  getOrSet<T>(key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<T> {
    return getOrSet(this, this.readThrough, key, factory, options);
  }

  private readonly readThrough = {
    staleHit: (tenantId: string | undefined) => this.counters.add(localScope(tenantId), 'staleHits'),
    unstorable: (tenantId: string | undefined) => this.counters.add(localScope(tenantId), 'errors'),
  };

  async invalidateTags(tags: readonly string[], options?: ScopeOptions): Promise<void> {
    this.open();
    const list = tagsOf(tags, 'invalidateTags');
    checkScopeOptions('invalidateTags', options);
    const scope = localScope(options?.tenantId);
    if (list === undefined) return;
    noteTagInvalidation();
    const now = Date.now();
    for (const tag of list) {
      const name = scope + tag;
      const remaining = this.tagRecords.getRemainingTTL(name);
      // Keep the lifetime tagged writes gave it (it covers their entries), at least the guard.
      const ttl = remaining === Infinity ? 0 : Math.max(remaining, TAG_GUARD_MS);
      this.tagRecords.set(name, { at: now }, { ttl });
    }
  }

  /** Extends each tag's record to outlive an entry of `lifeMs` (`undefined`: forever), creating it if needed. */
  private touchTags(scope: string, tags: readonly string[], lifeMs: number | undefined): void {
    for (const tag of tags) {
      const name = scope + tag;
      const record = this.tagRecords.get(name);
      const remaining = this.tagRecords.getRemainingTTL(name);
      if (record === undefined) this.tagRecords.set(name, { at: 0 }, { ttl: lifeMs ?? 0 });
      else if (remaining !== Infinity && (lifeMs === undefined || remaining < lifeMs)) this.tagRecords.set(name, record, { ttl: lifeMs ?? 0 });
    }
  }

  async set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    checkSetOptions('set', options);
    const scope = localScope(options?.tenantId);
    const ttl = ttlMs(options?.ttl, this.defaultTtl);
    const meta = writeMetaOf('set', options, false);
    if (!this.events.listening) return this.write(scope, scope + key, value, encode(value), ttl, meta);
    const started = performance.now();
    const stored = this.write(scope, scope + key, value, encode(value), ttl, meta);
    if (stored) this.emit('set', 'set', key, 1, options?.tenantId, performance.now() - started);
    return stored;
  }

  async writeEntry(key: string, value: unknown, options?: EntryOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    const meta = writeMetaOf('writeEntry', options, true);
    const scope = localScope(options?.tenantId);
    const ttl = ttlMs(options?.ttl, this.defaultTtl);
    return this.write(scope, scope + key, value, encode(value), ttl, meta);
  }

  /** Stores the entry; `false` when it alone is larger than `maxBytes` (refused), or is a tagged value computed too long ago. */
  private write(scope: string, raw: string, value: unknown, encoded: string, ttl: number | undefined, meta: WriteMeta | undefined): boolean {
    let size = Buffer.byteLength(raw) + Buffer.byteLength(encoded);
    let stored = (this.byReference ? value : toStored(encoded)) as {};
    let lifetime = ttl;
    if (meta !== undefined) {
      if (meta.tags !== undefined && tooOldToTag(meta.startedAt, Date.now())) return false;
      // Grace keeps the entry physically for ttl + grace; `freshUntil` is where `get` stops returning it.
      const graced = meta.graceMs > 0 && ttl !== undefined;
      if (graced) lifetime = ttl + meta.graceMs;
      if (meta.tags !== undefined) for (const tag of meta.tags) size += Buffer.byteLength(tag);
      stored = new WithMeta(stored, graced ? performance.now() + ttl : undefined, meta.startedAt, meta.tags);
    }
    // lru-cache would drop an existing entry when the new one is too large; we keep it.
    if (this.maxBytes !== undefined && size > this.maxBytes) return false;
    if (meta?.tags !== undefined) this.touchTags(scope, meta.tags, lifetime);
    this.lru.set(raw, stored, lifetime === undefined ? { size } : { size, ttl: lifetime });
    this.counters.add(scope, 'sets');
    return true;
  }

  async add(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    checkSetOptions('add', options);
    const scope = localScope(options?.tenantId);
    const ttl = ttlMs(options?.ttl, this.defaultTtl);
    const encoded = encode(value);
    const meta = writeMetaOf('add', options, false);
    if (this.live(scope, scope + key)) return false;
    // `false` means "a live entry exists" to a lock: a refusal must not read the same.
    if (!this.write(scope, scope + key, value, encoded, ttl, meta)) {
      throw new CacheError(`add refused: the entry is larger than maxBytes (${this.maxBytes} bytes)`, 'refused');
    }
    if (this.events.listening) this.emit('set', 'add', key, 1, options?.tenantId);
    return true;
  }

  async delete(key: string, options?: ScopeOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    checkScopeOptions('delete', options);
    const scope = localScope(options?.tenantId);
    const removed = this.remove(scope, scope + key);
    if (removed && this.events.listening) this.emit('delete', 'delete', key, 1, options?.tenantId);
    return removed;
  }

  private remove(scope: string, raw: string): boolean {
    // A stale entry is already gone as far as callers can tell (and an entry in its grace must go too).
    const live = this.live(scope, raw);
    this.lru.delete(raw);
    if (live) this.counters.add(scope, 'deletes');
    return live;
  }

  async deleteIfEquals(key: string, expected: unknown, options?: ScopeOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    checkScopeOptions('deleteIfEquals', options);
    const scope = localScope(options?.tenantId);
    const want = encode(expected);
    const held = this.lru.get(scope + key, { updateAgeOnGet: false });
    if (held === undefined) return false;
    const stored = held instanceof WithMeta ? held.stored : held;
    // encode() of a snapshot gives back the text it was parsed from (JSON.stringify output round-trips exactly).
    const have = stored instanceof EncodedText ? stored.text : encode(stored);
    const removed = have === want && this.remove(scope, scope + key);
    if (removed && this.events.listening) this.emit('delete', 'deleteIfEquals', key, 1, options?.tenantId);
    return removed;
  }

  async clearPattern(pattern: string, options?: ScopeOptions): Promise<number> {
    this.open();
    checkPattern(pattern);
    checkScopeOptions('clearPattern', options);
    const scope = localScope(options?.tenantId);
    const matches = compileGlob(pattern);
    const doomed: string[] = [];
    for (const raw of this.lru.keys()) {
      if (scopeOfRaw(raw) === scope && matches(raw.slice(scope.length))) doomed.push(raw);
    }
    let removed = 0;
    for (const raw of doomed) if (this.remove(scope, raw)) removed++;
    if (removed > 0 && this.events.listening) this.emit('delete', 'clearPattern', undefined, removed, options?.tenantId);
    return removed;
  }

  /**
   * The scope's matching keys are gathered first (references to strings the
   * cache holds anyway), then each is checked again as it is listed, so a key
   * deleted or expired since is not listed.
   */
  async *keys(pattern: string, options?: ScopeOptions): AsyncGenerator<string, void, undefined> {
    this.open();
    checkPattern(pattern);
    checkScopeOptions('keys', options);
    const scope = localScope(options?.tenantId);
    const matches = compileGlob(pattern);
    const found: string[] = [];
    for (const raw of this.lru.keys()) {
      if (scopeOfRaw(raw) === scope && matches(raw.slice(scope.length))) found.push(raw);
    }
    for (const raw of found) {
      this.open();
      if (this.live(scope, raw)) yield raw.slice(scope.length);
    }
  }

  async getMany<T>(keys: Iterable<string>, options?: ScopeOptions): Promise<Map<string, T>> {
    this.open();
    const list = keysOf(keys);
    checkScopeOptions('getMany', options);
    const scope = localScope(options?.tenantId);
    const found = new Map<string, T>();
    const started = this.events.listening ? performance.now() : 0;
    for (const key of list) {
      const value = this.read(scope, key);
      if (value !== undefined) found.set(key, value as T);
    }
    if (this.events.listening) this.batchRead(list.length, found.size, options?.tenantId, performance.now() - started);
    return found;
  }

  /** A batch read's events: one `hit` with the hits, one `miss` with the misses; the duration on the first. */
  private batchRead(keys: number, hits: number, tenantId: string | undefined, durationMs: number): void {
    if (hits > 0) this.emit('hit', 'getMany', undefined, hits, tenantId, durationMs);
    if (keys > hits) this.emit('miss', 'getMany', undefined, keys - hits, tenantId, hits > 0 ? undefined : durationMs);
  }

  async setMany(entries: BatchEntries, options?: SetOptions): Promise<number> {
    this.open();
    const pairs = entriesOf(entries);
    checkSetOptions('setMany', options);
    const scope = localScope(options?.tenantId);
    const ttl = ttlMs(options?.ttl, this.defaultTtl);
    const meta = writeMetaOf('setMany', options, false);
    // Encode everything before writing anything: one bad value stores nothing.
    // A repeated key stores its last value and counts once, as on Dragonfly.
    const latest = new Map<string, [unknown, string]>();
    for (const [key, value] of pairs) latest.set(scope + key, [value, encode(value)]);
    let stored = 0;
    for (const [raw, [value, encoded]] of latest) if (this.write(scope, raw, value, encoded, ttl, meta)) stored++;
    if (stored > 0 && this.events.listening) this.emit('set', 'setMany', undefined, stored, options?.tenantId);
    return stored;
  }

  async inspect(key: string, options?: ScopeOptions): Promise<EntryInfo | undefined> {
    this.open();
    checkKey(key);
    checkScopeOptions('inspect', options);
    const raw = localScope(options?.tenantId) + key;
    // peek: neither recency nor the hit counters move.
    const stored = this.lru.peek(raw);
    if (stored === undefined) return undefined;
    const left = this.lru.getRemainingTTL(raw);
    const value = this.byReference ? stored : stored instanceof EncodedText ? decode(stored.text) : cloneJson(stored);
    return { value, ttl: left === Infinity || left === 0 ? Infinity : left / 1000, bytes: this.lru.info(raw)?.size ?? 0 };
  }

  /** Always counted: the entries are in this process. */
  async stats(options?: StatsOptions): Promise<CacheStats> {
    this.open();
    checkStatsOptions(options);
    const tenantId = options?.tenantId;
    this.lru.purgeStale();
    if (tenantId === undefined) return toStats(this.counters.total, counted(this.lru.size, this.lru.calculatedSize), this.events.listenerErrors);
    const scope = localScope(tenantId);
    let size = 0;
    let bytes = 0;
    for (const raw of this.lru.keys()) {
      if (!raw.startsWith(scope)) continue;
      size++;
      bytes += this.lru.info(raw)?.size ?? 0;
    }
    return toStats(this.counters.forScope(scope), counted(size, bytes), this.events.listenerErrors);
  }

  async validate(): Promise<boolean> {
    if (this.closed) return false;
    // keys() skips expired entries that calculatedSize still counts: drop them first.
    this.lru.purgeStale();
    // The byte count must agree with the entries actually held.
    let bytes = 0;
    for (const raw of this.lru.keys()) bytes += this.lru.info(raw)?.size ?? 0;
    return bytes === this.lru.calculatedSize && this.lru.size <= this.lru.max;
  }

  async clear(): Promise<void> {
    this.open();
    this.lru.clear();
    this.tagRecords.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.lru.clear();
    this.tagRecords.clear();
  }
}

/** The memory tier behind `cache` when it is a memory cache (for `createTieredCache`). */
export function memoryTierOf(cache: unknown): Pick<MemoryCache, 'getNow'> | undefined {
  if (!(cache instanceof MemoryCache)) return undefined;
  cache.open();
  return cache;
}

/**
 * Copy-safe storage. Plain JSON data is kept as a private snapshot,
 * `JSON.parse` of its encoding (so exactly what decoding used to return), and
 * every `get` returns a fresh structural copy of it: cloning a parsed tree is
 * 3-10x cheaper than parsing its text again (bench workload 1: `decode`, that
 * is `JSON.parse`, was 54% of self time on a hit). Strings are immutable, so
 * copies share them safely. Values in the tagged form (Date, Map, ...) keep
 * their text and are decoded on each read, as before.
 */
class EncodedText {
  constructor(readonly text: string) {}
}

/**
 * An entry with a grace period or tags (plain entries are stored bare, so
 * their hit path is unchanged). `freshUntil` (a `performance.now()` time) is
 * where its ttl ends: lru-cache keeps it until ttl + grace.
 */
class WithMeta {
  constructor(
    readonly stored: {},
    readonly freshUntil: number | undefined,
    readonly startedAt: number,
    readonly tags: readonly string[] | undefined,
  ) {}
}

function toStored(encoded: string): unknown {
  return encoded.charCodeAt(0) === 0x7e /* '~', tagged */ ? new EncodedText(encoded) : JSON.parse(encoded);
}

// Only ever called on JSON.parse output: plain objects, dense arrays, JSON primitives.
function cloneJson(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) out.push(cloneJson(value[i]));
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = cloneJson((value as Record<string, unknown>)[key]);
    // JSON.parse makes `__proto__` an own property; assignment would set the prototype instead.
    if (key === '__proto__') Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
    else out[key] = item;
  }
  return out;
}

/**
 * Raw keys here are the caller's key itself when untenanted, so the hot path
 * hashes the string the caller passed instead of building `g:<key>` (building
 * it cost a third of a by-reference hit). A tenant's keys are
 * `\uDC00t:<tenant>:<key>`: `checkKey` only admits well-formed keys, and a
 * well-formed string never starts with a lone low surrogate, so no untenanted
 * key can pose as a tenant's. Tenant scopes use the core's encoding otherwise.
 */
const UNTENANTED = '';
const TENANT_MARK = '\uDC00';

function localScope(tenantId: string | undefined): string {
  return tenantId === undefined ? UNTENANTED : TENANT_MARK + scopeOf(tenantId);
}

/** The tenant id of a tenant scope (`\uDC00t:<encoded tenant>:`), `undefined` for the untenanted one. */
function tenantOfScope(scope: string): string | undefined {
  return scope === UNTENANTED ? undefined : decodeURIComponent(scope.slice(3, -1));
}

function counted(size: number, bytes: number): Measured {
  return { size, bytes, method: 'counted', margin: 0 };
}

function scopeOfRaw(raw: string): string {
  return raw.charCodeAt(0) === 0xdc00 ? raw.slice(0, raw.indexOf(':', 3) + 1) : UNTENANTED;
}
