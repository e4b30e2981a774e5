import { CacheError } from '../core/errors.js';
import type { Cache } from '../core/types.js';
import { cachedCall, countBypass, createCallSite, failOpen, type CallSite } from './cached-call.js';
import { emptyWrapperStats, type WrapperStats } from './entry.js';
import { codeOf } from './code-identity.js';
import { registerKeyRecipe } from './explain-key.js';
import { identityOf } from './identity.js';
import { checkSiteOptions, FRESHNESS_OPTIONS, optionNames, siteFreshness, type FreshnessOptions } from './options.js';
import { namespacedKey } from './request-key.js';
import { SingleFlight } from '../core/single-flight.js';
import { registerStats } from './wrapper-stats.js';

/**
 * Options of `withCache`.
 *
 * @example
 * const gw = withCache(gateway, { cache, ttl: 3600, methods: ['generate'], tenantId: 'acme' });
 */
export interface WithCacheOptions extends FreshnessOptions<unknown, unknown[]> {
  /** Where results are stored. Required. */
  cache: Cache;
  /** TTL of stored results, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /**
   * Paths of the methods to cache, nested paths included (`'chat.completions.create'`).
   * Each must be an `async function` when `withCache` is called: only then is
   * a Promise from the cache the same runtime type as the method's own result
   * (a plain function may return a value, or a Promise subclass such as the
   * openai SDK's `APIPromise`). Default: every `async function` property of
   * the target itself (own or inherited), looked up when it is read; other
   * properties pass through, and a passed-through method that returns a
   * Promise is reported once (a process warning) and counted as a bypass.
   */
  methods?: readonly string[];
  /**
   * Readable key segment: keys are `v1:<namespace>:<sha256>`. Default: the method's
   * path (`generate`, `chat.completions.create`). The method path is hashed into
   * the key either way, so two methods never share entries, and wrappers share
   * entries only when namespace, method, identity and arguments all match.
   */
  namespace?: string;
  /**
   * What to hash instead of the argument list, e.g. to drop a request id:
   * `key: ([req]) => ({ ...req, requestId: undefined })`. Method and identity are
   * still hashed with it. Default: all arguments.
   */
  key?: (args: unknown[], method: string) => unknown;
  /**
   * What tells this upstream from another serving the same method (provider,
   * default model, base URL). Default: the string, number and boolean values of
   * the identity fields (`provider`, `model`, `defaultModel`, `modelId`,
   * `modelName`, `baseURL`, `baseUrl`, `apiBase`, `endpoint`, `deployment`,
   * `region`, `apiVersion`) found, at each call, on the target, its `config` and
   * `options` objects, and the object that owns a nested method.
   */
  identity?: unknown;
  /** Tenant whose entries the wrapper reads and writes; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /** Return `false` to keep a result out of the cache (rejections never are cached). Default: cache every result. */
  shouldCache?: (result: unknown, method: string) => boolean;
  /** Tokens a result cost, counted as saved on each hit. Default: `tokensOf` (OpenAI, Anthropic and AI SDK `usage` shapes). */
  countTokens?: (result: unknown, method: string) => number | undefined;
}


const AsyncFunction = (async () => {}).constructor;
type AnyFunction = (...args: unknown[]) => unknown;

interface PathNode {
  /** Method names at this level mapped to their full path. */
  leaves: Map<PropertyKey, string>;
  children: Map<PropertyKey, PathNode>;
}

const WITH_CACHE_OPTIONS = optionNames<WithCacheOptions>({ cache: true, ttl: true, methods: true, namespace: true, key: true, identity: true, tenantId: true, shouldCache: true, countTokens: true, ...FRESHNESS_OPTIONS });

/**
 * Caches the results of `target`'s async methods and returns an object of the
 * same type (a Proxy). Methods run with `this` set to the object that owns
 * them, so private fields keep working. Read the counters with
 * `cacheStats(wrapped)`; per-call controls come from `withCacheControl`.
 *
 * Calls whose arguments cannot be keyed (functions, symbols, circular values,
 * class instances such as an `AbortSignal`) go upstream uncached and count as
 * bypasses. A failing cache counts an error and the call is answered from
 * upstream. Throws a `validation` CacheError at once for bad options, a listed
 * method that is not an `async function`, or (without `methods`) a target
 * with no `async function` to cache.
 */
export function withCache<T extends object>(target: T, options: WithCacheOptions): T {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) {
    throw new CacheError('withCache: target must be an object', 'validation');
  }
  checkSiteOptions('withCache', options, WITH_CACHE_OPTIONS);

  const root = options.methods === undefined ? undefined : pathTree(target, options.methods);
  if (root === undefined) checkHasAsyncMethods(target);
  const stats = emptyWrapperStats();
  const wrapper = new Wrapper(target, options, stats);
  const proxy = wrapper.proxy(target, root) as T;
  registerStats(proxy, stats);
  return proxy;
}

function pathTree(target: object, methods: readonly string[]): PathNode {
  if (!Array.isArray(methods) || methods.length === 0) {
    throw new CacheError('withCache: methods must be a non-empty array of method paths', 'validation');
  }
  const root: PathNode = { leaves: new Map(), children: new Map() };
  for (const path of methods) {
    const parts = typeof path === 'string' ? path.split('.') : [];
    if (parts.length === 0 || parts.some((p) => p === '')) throw new CacheError(`withCache: bad method path ${JSON.stringify(path)}`, 'validation');
    let node = root;
    let value: unknown = target;
    for (const [i, part] of parts.entries()) {
      value = value === null || value === undefined ? undefined : (value as Record<string, unknown>)[part];
      if (i === parts.length - 1) {
        if (typeof value !== 'function') throw new CacheError(`withCache: ${path} is not a function on the target`, 'validation');
        if (!(value instanceof AsyncFunction)) throw notAsync(path);
        node.leaves.set(part, path);
      } else {
        let child = node.children.get(part);
        if (!child) node.children.set(part, (child = { leaves: new Map(), children: new Map() }));
        node = child;
      }
    }
  }
  return root;
}

// A Promise from the cache is the same runtime type as an async function's
// result, and only then: a plain function may answer synchronously, or with a
// Promise subclass whose extra methods callers use (`APIPromise.withResponse()`).
function notAsync(path: string): CacheError {
  return new CacheError(
    `withCache: ${path} is not an async function, so a cached answer (a plain Promise) could change what it returns ` +
      '(a value, or a Promise subclass such as the openai SDK\'s APIPromise: use cachedOpenAI from cachekit/openai for that SDK). ' +
      `Cache an async function that calls it instead, e.g. withCache({ ${path.split('.').pop()}: async (...args) => target.${path}(...args) }, options)`,
    'validation',
  );
}

/** Without `methods`, a target none of whose functions is async would silently cache nothing. */
function checkHasAsyncMethods(target: object): void {
  const others: string[] = [];
  for (let obj: object | null = target; obj !== null && obj !== Object.prototype && obj !== Function.prototype; obj = Object.getPrototypeOf(obj)) {
    for (const name of Object.getOwnPropertyNames(obj)) {
      if (name === 'constructor') continue;
      const value = Object.getOwnPropertyDescriptor(obj, name)?.value;
      if (value instanceof AsyncFunction) return;
      if (typeof value === 'function') others.push(name);
    }
  }
  throw new CacheError(
    `withCache: the target has no async function to cache${others.length ? ` (its functions ${others.slice(0, 5).join(', ')} are not async)` : ''}; ` +
      'withCache caches async functions only, because only their results keep their type when answered from the cache. ' +
      'Declare them async, or list async wrappers of them in methods (if they are declared async, the compile target ' +
      'turned them into plain functions, as TypeScript does below ES2017: compile to ES2017 or later)',
    'validation',
  );
}

const warned = new WeakSet<AnyFunction>();

// A function that is not async but returned a Promise is left uncached: say so once, not per call.
function passedThrough(stats: WrapperStats, fn: AnyFunction, name: PropertyKey, result: unknown): unknown {
  if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as { then?: unknown }).then === 'function') {
    countBypass(stats);
    if (!warned.has(fn)) {
      warned.add(fn);
      process.emitWarning(
        `withCache: ${String(name)} returned a Promise but is not an async function, so it is not cached (a cached answer could change its type). Declare it async, or cache an async wrapper of it.`,
        { code: 'CACHEKIT_UNCACHED_METHOD' },
      );
    }
  }
  return result;
}

// A signal changes how a call may end, not its answer; sharing one caller's
// flight with another would make the abort of one fail the other.
function holdsSignal(args: unknown[]): boolean {
  for (const arg of args) {
    if (arg instanceof AbortSignal) return true;
    if (arg !== null && typeof arg === 'object' && !Array.isArray(arg)) {
      for (const key in arg) if ((arg as Record<string, unknown>)[key] instanceof AbortSignal) return true;
    }
  }
  return false;
}

class Wrapper {
  private readonly flights = new SingleFlight();
  private readonly sites = new Map<string, CallSite<unknown>>();
  private readonly proxies = new WeakMap<object, object>();

  constructor(
    private readonly target: object,
    private readonly options: WithCacheOptions,
    private readonly stats: WrapperStats,
  ) {}

  /** A proxy for `raw`; `node` lists the paths cached below it, `undefined` means "its async functions". */
  proxy(raw: object, node: PathNode | undefined): object {
    const known = this.proxies.get(raw);
    if (known) return known;
    const wrapped = new WeakMap<AnyFunction, AnyFunction>();
    const bound = new WeakMap<AnyFunction, AnyFunction>();
    const proxy: object = new Proxy(raw, {
      get: (obj, prop) => {
        const value: unknown = Reflect.get(obj, prop);
        const child = node?.children.get(prop);
        if (child) return value !== null && typeof value === 'object' ? this.proxy(value, child) : value;
        if (typeof value !== 'function' || prop === 'constructor') return value;
        const fn = value as AnyFunction;
        const path = node ? node.leaves.get(prop) : fn instanceof AsyncFunction && typeof prop === 'string' ? prop : undefined;
        if (path === undefined) {
          // Passed-through methods run on the raw object too, or private fields would throw.
          let b = bound.get(fn);
          if (!b) {
            const stats = this.stats;
            b = node ? (fn.bind(obj) as AnyFunction) : (...args: unknown[]) => passedThrough(stats, fn, prop, fn.apply(obj, args));
            bound.set(fn, b);
          }
          return b;
        }
        let w = wrapped.get(fn);
        if (!w) wrapped.set(fn, (w = this.wrap(fn, path, obj, () => proxy)));
        return w;
      },
      set: (obj, prop, value) => Reflect.set(obj, prop, value),
    });
    this.proxies.set(raw, proxy);
    return proxy;
  }

  private site(path: string): CallSite<unknown> {
    let site = this.sites.get(path);
    if (!site) {
      const { cache, ttl, tenantId, shouldCache, countTokens } = this.options;
      site = createCallSite(
        {
          cache,
          ttl,
          tenantId,
          shouldCache: shouldCache && ((result: unknown) => shouldCache(result, path)),
          countTokens: countTokens && ((result: unknown) => countTokens(result, path)),
          namespace: this.options.namespace ?? path,
          ...siteFreshness('withCache', this.options),
        },
        { stats: this.stats, flights: this.flights },
      );
      this.sites.set(path, site);
    }
    return site;
  }

  private wrap(fn: AnyFunction, path: string, owner: object, proxyOf: () => object): AnyFunction {
    const wrapper = this;
    const site = this.site(path);
    const namespace = this.options.namespace ?? path;
    const cached = async function cached(this: unknown, ...args: unknown[]): Promise<unknown> {
      const self = this === undefined || this === proxyOf() ? owner : this;
      const upstream = async () => fn.apply(self, args);
      const key = wrapper.keyOf(fn, path, owner, args, namespace);
      if (key === undefined) {
        countBypass(site.stats);
        return upstream();
      }
      // A caller's abort signal must end only its own call: no flight is shared with it.
      return cachedCall(site, key, { upstream, share: !holdsSignal(args), args });
    };
    registerKeyRecipe(cached, (args) => ({ input: this.keyInput(fn, path, owner, args), namespace, tenantId: this.options.tenantId }));
    return cached;
  }

  /**
   * What the key of a call hashes: the method, its code (so two different
   * functions never share entries), the upstream's identity, and the
   * arguments (or what `key` makes of them).
   */
  private keyInput(fn: AnyFunction, path: string, owner: object, args: unknown[]): unknown {
    const { key, identity } = this.options;
    const id = identity !== undefined ? identity : identityOf(this.target, owner);
    return { method: path, code: codeOf(fn), identity: id, input: key === undefined ? args : key(args, path) };
  }

  /** `undefined` when the call cannot be keyed (counted as a bypass by the caller). */
  private keyOf(fn: AnyFunction, path: string, owner: object, args: unknown[], namespace: string): string | undefined {
    try {
      return namespacedKey(this.keyInput(fn, path, owner, args), namespace);
    } catch (error) {
      if (error instanceof CacheError && error.errorType === 'validation') throw error;
      // An argument the key cannot encode, or a key function that threw: uncached, never failed.
      if (!(error instanceof CacheError)) failOpen(this.stats, error);
      return undefined;
    }
  }
}
