import { EventEmitter } from 'node:events';
import { CacheError } from '../../src/core/errors.js';
import { describeValue } from '../../src/core/options.js';
import type { Cache } from '../../src/core/types.js';
import { checkSiteOptions, optionNames } from '../../src/llm/engine.js';
import { EXPIRED, ttlFromExpires, ttlFromMs } from './expiry.js';
import { namespacePrefix } from './key-layout.js';

/** Options of `new KeyvCachekit(cache, options)`. */
export interface KeyvCachekitOptions {
  /**
   * cachekit tenant whose scope holds every entry the adapter reads, writes,
   * lists and clears: no other tenant (nor the untenanted scope) sees them,
   * and `cache.stats({ tenantId })` counts them apart. Any non-empty string up
   * to 256 characters. Default: untenanted.
   */
  tenantId?: string;
}

/** What Keyv 6 reads from a store to learn which contract it speaks (its `KeyvStorageCapability`). */
export interface KeyvCachekitCapabilities {
  /** Speaks a contract Keyv 6 accepts. */
  compatible: true;
  /** A storage adapter (not a Keyv instance). */
  store: 'keyvStorage';
  /** Each storage method Keyv 6 may call: whether the adapter has it, and that it is async. */
  methods: Record<KeyvStorageMethod, KeyvStorageMethodCapability>;
  /** Speaks Keyv 6's storage contract: `set` takes an absolute expiry. */
  expires: true;
}

/** A Keyv 5 batch entry (`ttl`: relative milliseconds) or a Keyv 6 one (`expires`: absolute Unix milliseconds). */
export interface KeyvCachekitEntry {
  /** The key, as Keyv passes it. */
  key: string;
  /** The value to store (Keyv 5 passes it serialized, Keyv 6 as is). */
  value: unknown;
  /** Keyv 5: time to live in milliseconds. */
  ttl?: number;
  /** Keyv 6: absolute expiry, Unix milliseconds. */
  expires?: number;
}

const OPTIONS = optionNames<KeyvCachekitOptions>({ tenantId: true });
/** The storage methods Keyv 6 asks a store about. */
export type KeyvStorageMethod = 'get' | 'getMany' | 'has' | 'hasMany' | 'set' | 'setMany' | 'delete' | 'deleteMany' | 'clear' | 'disconnect' | 'iterator';

const METHODS: readonly KeyvStorageMethod[] = ['get', 'getMany', 'has', 'hasMany', 'set', 'setMany', 'delete', 'deleteMany', 'clear', 'disconnect', 'iterator'];

/** How the adapter offers one storage method to Keyv 6. */
export interface KeyvStorageMethodCapability {
  /** Whether the adapter has the method. */
  exists: boolean;
  /** `'async'`: it returns a promise; `'none'`: it is missing. */
  methodType: 'async' | 'sync' | 'none';
}
// One getMany per page of listed keys: Dragonfly's MGET and SCAN both work in 1 000s.
const PAGE = 1000;

/**
 * A Keyv storage adapter over a cachekit `Cache`:
 * `new Keyv({ store: new KeyvCachekit(cache, { tenantId? }) })`, for Keyv 5
 * (and cache-manager 7, cacheable) and Keyv 6 alike. Entries live under
 * `keyv:<namespace>:<key>` in the tenant's scope and expire in the cache
 * itself (Keyv's TTLs in milliseconds become cachekit TTLs in seconds).
 *
 * It speaks Keyv 5's contract (relative TTLs, keys prefixed by Keyv, one
 * boolean from `deleteMany`) until Keyv 6 asks for its `capabilities`, which
 * Keyv 6 does when it takes a store; from then on Keyv 6's (absolute expiry,
 * unprefixed keys, one boolean per key from `deleteMany`).
 *
 * One adapter serves one Keyv: a second Keyv 6 taking it throws, and under
 * Keyv 5 a Keyv whose namespace the adapter no longer serves is refused (see
 * README). Failures are cachekit's typed `CacheError`s and surface once:
 * rejections, which Keyv turns into its `error` event, except Keyv 5's `get`,
 * which swallows rejections, so there the adapter emits `error` itself and
 * answers a miss. The cache is the caller's: the adapter never closes it.
 */
export class KeyvCachekit extends EventEmitter {
  /** Keyv 5 wires `iterator()` only for a store whose dialect it knows, and throws for others; the dialect changes nothing else. */
  readonly opts: {
    /** `'redis'`: the entries live in a cachekit cache, listed with `SCAN`-like paging. */
    dialect: 'redis';
  } = { dialect: 'redis' };
  // Undefined when untenanted: the cache then skips checking an options object on every call.
  private readonly scope: { tenantId: string } | undefined;
  private contract: 5 | 6 = 5;
  private current: string | undefined;
  private prefix = namespacePrefix(undefined);
  // The namespace needed no encoding: Keyv 5's `<namespace>:<key>` becomes the entry key by prepending `keyv:`.
  private verbatim = false;
  // Keyv 5 prefixes every key with `<namespace>:` itself: a key carrying a
  // namespace the adapter served before comes from a Keyv it no longer serves.
  private readonly served = new Set<string>();

  constructor(
    private readonly cache: Cache,
    options?: KeyvCachekitOptions,
  ) {
    super();
    const c = cache as Partial<Cache> | null;
    if (c === null || typeof c !== 'object' || typeof c.keys !== 'function' || typeof c.clearPattern !== 'function' || typeof c.getMany !== 'function') {
      throw new CacheError(`KeyvCachekit: cache must be a cachekit Cache (createMemoryCache, createDragonflyCache, createFallbackCache), got ${describeValue(cache)}`, 'validation');
    }
    checkSiteOptions('KeyvCachekit', options === undefined ? {} : options, OPTIONS, true);
    this.scope = options?.tenantId === undefined ? undefined : { tenantId: options.tenantId };
  }

  /** Set by Keyv (its `namespace` option, default `'keyv'` on Keyv 5, none on Keyv 6). */
  get namespace(): string | undefined {
    return this.current;
  }

  /** Keyv sets it; a value that is not a well-formed string is a `validation` error. */
  set namespace(namespace: string | undefined) {
    if (namespace !== undefined && (typeof namespace !== 'string' || !namespace.isWellFormed())) {
      throw new CacheError(`KeyvCachekit: namespace must be a well-formed string, got ${describeValue(namespace)}`, 'validation');
    }
    if (this.current) this.served.add(this.current);
    this.current = namespace || undefined;
    if (this.current) this.served.delete(this.current);
    this.prefix = namespacePrefix(this.current);
    this.verbatim = this.prefix === `keyv:${this.current}:`;
  }

  /**
   * Keyv 6 reads this once when it takes the adapter; from then on the adapter
   * speaks Keyv 6's contract, and a second read (a second Keyv taking the same
   * adapter) throws a `validation` CacheError.
   */
  get capabilities(): KeyvCachekitCapabilities {
    if (this.contract === 6) {
      throw new CacheError('KeyvCachekit: this adapter already serves a Keyv instance; give each Keyv its own (new KeyvCachekit(cache))', 'validation');
    }
    this.contract = 6;
    const methods = {} as KeyvCachekitCapabilities['methods'];
    for (const name of METHODS) {
      const exists = typeof (this as unknown as Record<string, unknown>)[name] === 'function';
      methods[name] = { exists, methodType: exists ? 'async' : 'none' };
    }
    return { compatible: true, store: 'keyvStorage', methods, expires: true };
  }

  /** The value under `key`, `undefined` when missing or expired. */
  get(key: string): Promise<unknown> {
    let read: Promise<unknown>;
    try {
      read = this.cache.get(this.entryKey(key), this.scope);
    } catch (error) {
      read = Promise.reject(error);
    }
    return this.contract === 6 ? read : read.catch(this.reportGetFailure);
  }

  // Keyv 5's get drops a rejection without a word: an event is the only way it reaches the app.
  private readonly reportGetFailure = (error: unknown): undefined => {
    if (this.listenerCount('error') === 0) throw error;
    this.emit('error', error);
    return undefined;
  };

  /** One value (or `undefined`) per key, in order, read in one batch. */
  async getMany(keys: string[]): Promise<unknown[]> {
    const entryKeys = keys.map((key) => this.entryKey(key));
    const found = await this.cache.getMany(entryKeys, this.scope);
    return entryKeys.map((key) => found.get(key));
  }

  /** Whether a live entry is under `key`. */
  async has(key: string): Promise<boolean> {
    return (await this.cache.get(this.entryKey(key), this.scope)) !== undefined;
  }

  /** One `has` answer per key, in order, read in one batch. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.getMany(keys)).map((value) => value !== undefined);
  }

  /** `ttl`: Keyv 5's relative milliseconds, or Keyv 6's absolute expiry in Unix milliseconds. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const entryKey = this.entryKey(key);
    const seconds = this.contract === 6 ? ttlFromExpires(ttl) : ttlFromMs(ttl);
    if (seconds === EXPIRED) {
      await this.cache.delete(entryKey, this.scope);
      return true;
    }
    return this.cache.set(entryKey, value, { ...this.scope, ttl: seconds });
  }

  /** One `setMany` per TTL among the entries; one boolean per entry, `false` where the cache refused it. */
  async setMany(entries: KeyvCachekitEntry[]): Promise<boolean[]> {
    const results = new Array<boolean>(entries.length).fill(true);
    const groups = new Map<number | undefined, number[]>();
    const expired: string[] = [];
    for (const [i, entry] of entries.entries()) {
      const seconds = this.contract === 6 ? ttlFromExpires(entry.expires) : ttlFromMs(entry.ttl);
      if (seconds === EXPIRED) expired.push(this.entryKey(entry.key));
      else if (groups.has(seconds)) groups.get(seconds)!.push(i);
      else groups.set(seconds, [i]);
    }
    await Promise.all(expired.map((entryKey) => this.cache.delete(entryKey, this.scope)));
    for (const [ttl, indexes] of groups) {
      const pairs = indexes.map((i): [string, unknown] => [this.entryKey(entries[i]!.key), entries[i]!.value]);
      const stored = await this.cache.setMany(pairs, { ...this.scope, ttl });
      if (stored === pairs.length) continue;
      // The cache refused some (too large, server out of memory) or a key came twice: which, one set each tells.
      for (const [n, i] of indexes.entries()) results[i] = await this.cache.set(pairs[n]![0], pairs[n]![1], { ...this.scope, ttl });
    }
    return results;
  }

  /** Removes the entry under `key`; `true` when there was one. */
  async delete(key: string): Promise<boolean> {
    return this.cache.delete(this.entryKey(key), this.scope);
  }

  /** Keyv 5: `true` when every key was there (as Keyv 5's own fallback answers); Keyv 6: one boolean per key. */
  async deleteMany(keys: string[]): Promise<boolean[] | boolean> {
    const entryKeys = keys.map((key) => this.entryKey(key));
    const removed = await Promise.all(entryKeys.map((key) => this.cache.delete(key, this.scope)));
    return this.contract === 6 ? removed : removed.every(Boolean);
  }

  /** Removes the current namespace's entries (without one: the entries Keyv wrote without a namespace), nothing else. */
  async clear(): Promise<void> {
    await this.cache.clearPattern(`${this.prefix}*`, this.scope);
  }

  /**
   * `[key, stored value]` for every live entry of `namespace` (Keyv 5 passes
   * its own; Keyv 6 none, meaning the adapter's), each key once, read a page
   * at a time. Keys are yielded the way each Keyv major turns them back into
   * the caller's: Keyv 6 takes them as they are; Keyv 5 drops everything up to
   * the first `:`, so they carry the namespace (or a bare `:` without one).
   */
  async *iterator(namespace: string | undefined = this.current): AsyncGenerator<[string, unknown], void, undefined> {
    const prefix = namespacePrefix(namespace);
    const keyvPrefix = this.contract === 6 ? '' : `${namespace ?? ''}:`;
    const seen = new Set<string>();
    let page: string[] = [];
    for await (const entryKey of this.cache.keys(`${prefix}*`, this.scope)) {
      // SCAN may list a key twice while Dragonfly resizes its table.
      if (seen.has(entryKey)) continue;
      seen.add(entryKey);
      page.push(entryKey);
      if (page.length < PAGE) continue;
      yield* this.entries(page, prefix.length, keyvPrefix);
      page = [];
    }
    yield* this.entries(page, prefix.length, keyvPrefix);
  }

  /** The live entries among `entryKeys`, keyed the way Keyv expects them back. */
  private async *entries(entryKeys: string[], strip: number, keyvPrefix: string): AsyncGenerator<[string, unknown], void, undefined> {
    if (entryKeys.length === 0) return;
    const found = await this.cache.getMany(entryKeys, this.scope);
    for (const entryKey of entryKeys) {
      const value = found.get(entryKey);
      if (value !== undefined) yield [keyvPrefix + entryKey.slice(strip), value];
    }
  }

  private entryKey(key: string): string {
    const namespace = this.current;
    if (this.contract === 5 && namespace !== undefined) {
      if (key.startsWith(namespace) && key.charCodeAt(namespace.length) === 0x3a) {
        return this.verbatim ? `keyv:${key}` : this.prefix + key.slice(namespace.length + 1);
      }
      for (const old of this.served) {
        if (key.startsWith(`${old}:`)) {
          throw new CacheError(
            `KeyvCachekit: a Keyv with namespace "${old}" used this adapter after a Keyv with namespace "${namespace}" took it; give each Keyv its own (new KeyvCachekit(cache))`,
            'validation',
          );
        }
      }
    }
    // Keyv 6, Keyv 5 without a namespace, or Keyv 5 with `useKeyPrefix: false`: the key as it is, in the namespace.
    return this.prefix + key;
  }
}
