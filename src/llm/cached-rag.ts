import { CacheError } from '../core/errors.js';
import type { Cache } from '../core/types.js';
import { cachedCall, countBypass, createCallSite, failOpen } from './cached-call.js';
import { codeOf } from './code-identity.js';
import { registerKeyRecipe } from './explain-key.js';
import { checkSiteOptions, FRESHNESS_OPTIONS, optionNames, siteFreshness, type FreshnessOptions } from './options.js';
import { namespacedKey } from './request-key.js';
import { registerStats } from './wrapper-stats.js';

// `any` in parameter position so RAG objects with their own option types fit.
/** A RAG query function: a question (and anything else) in, a Promise of an answer out. */
export type QueryFn = (question: any, ...rest: any[]) => Promise<unknown>;

/** What `cachedRag` wraps: a query function, or an object with an async `query(question, ...)` method. */
export type RagTarget = QueryFn | RagObject;

/** A RAG object: anything with an async `query` method. */
export interface RagObject {
  /** The object's query method. */
  query: QueryFn;
}

/** The answer a RAG target resolves to: what the `tags` function of `cachedRag` receives. */
export type RagAnswer<R extends RagTarget> = Awaited<ReturnType<R extends QueryFn ? R : Extract<R, RagObject>['query']>>;

/**
 * Options of `cachedRag`.
 *
 * @example
 * const ask = cachedRag(rag, { cache, namespace: 'docs', corpusVersion: () => index.version, ttl: 3600 });
 */
export interface CachedRagOptions<A = any> extends FreshnessOptions<A, any[]> {
  /** Where answers are stored. Required. */
  cache: Cache;
  /** TTL of stored answers, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /**
   * Readable key segment: keys are `v1:<namespace>:<sha256>`, so
   * `cache.clearPattern('v1:rag:*')` drops every answer of the default namespace.
   * Two wrappers share answers only when namespace and corpus version match. Default `'rag'`.
   */
  namespace?: string;
  /**
   * Version of the corpus or index the answers come from, hashed into every key:
   * bump it when documents change and old answers are never served again (they
   * expire by TTL, or clear them by pattern). A function is called on every
   * query, so it can read the version from your index; when it throws, the query
   * goes upstream uncached (counted as an error and a bypass). Default: none.
   */
  corpusVersion?: string | (() => string | Promise<string>);
  /**
   * What to hash instead of the query's arguments (question and retrieval
   * options), e.g. to drop a trace id. Default: every argument, trailing
   * `undefined`s dropped, so `query(q)` and `query(q, undefined)` share an entry.
   */
  key?: (args: unknown[]) => unknown;
  /** Tenant whose answers are read and written; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /** Return `false` to keep an answer out of the cache (rejections never are cached). Default: cache every answer. */
  shouldCache?: (answer: unknown) => boolean;
  /** Tokens an answer cost, counted as saved on each hit. Default: `tokensOf` (OpenAI, Anthropic and AI SDK `usage` shapes). */
  countTokens?: (answer: unknown) => number | undefined;
}

const CACHED_RAG_OPTIONS = optionNames<CachedRagOptions>({ cache: true, ttl: true, namespace: true, corpusVersion: true, key: true, tenantId: true, shouldCache: true, countTokens: true, ...FRESHNESS_OPTIONS });

/**
 * Caches a RAG pipeline's answers. Takes `rag` with `query(question, options)`,
 * or a plain async query function, and returns the same type. The key holds the
 * question, every retrieval option (top-k, filters, ...) and the corpus version.
 * Read the counters with `cacheStats(wrapped)`; per-call controls come from
 * `withCacheControl`. Throws a `validation` CacheError at once for bad options,
 * and on a query when `corpusVersion()` returns something other than a non-empty string.
 */
export function cachedRag<R extends RagTarget>(rag: R, options: CachedRagOptions<RagAnswer<R>>): R {
  checkSiteOptions('cachedRag', options, CACHED_RAG_OPTIONS);
  const namespace = options.namespace ?? 'rag';
  const { corpusVersion } = options;
  if (corpusVersion !== undefined && typeof corpusVersion !== 'function') checkVersion(corpusVersion);

  const site = createCallSite({ ...options, ...siteFreshness('cachedRag', options) });

  // The query function's code is in the key: two pipelines under one namespace never share answers.
  const keyInput = (query: QueryFn, version: string | undefined, args: unknown[]) => {
    let end = args.length;
    while (end > 0 && args[end - 1] === undefined) end--;
    return { corpus: version ?? null, code: codeOf(query), input: options.key ? options.key(args) : args.slice(0, end) };
  };
  const versionNow = async (): Promise<string | undefined> => {
    if (typeof corpusVersion !== 'function') return corpusVersion;
    const version = await corpusVersion();
    checkVersion(version);
    return version;
  };

  const cached = (query: QueryFn, self: unknown) => {
    const run = async function (...args: unknown[]): Promise<unknown> {
      const upstream = async () => query.apply(self, args as [unknown, ...unknown[]]);
      let version: string | undefined;
      try {
        version = await versionNow();
      } catch (error) {
        failOpen(site.stats, error);
        countBypass(site.stats);
        return upstream();
      }
      let key: string;
      try {
        key = namespacedKey(keyInput(query, version, args), namespace);
      } catch (error) {
        if (error instanceof CacheError && error.errorType === 'validation') throw error;
        // An argument the key cannot encode, or a key function that threw: uncached, never failed.
        if (!(error instanceof CacheError)) failOpen(site.stats, error);
        countBypass(site.stats);
        return upstream();
      }
      return cachedCall(site, key, { upstream, args });
    };
    registerKeyRecipe(run, async (args) => ({ input: keyInput(query, await versionNow(), args), namespace, tenantId: options.tenantId }));
    return run;
  };

  let wrapped: object;
  if (typeof rag === 'function') {
    wrapped = cached(rag, undefined);
  } else if (rag !== null && typeof rag === 'object' && typeof rag.query === 'function') {
    const query = cached(rag.query, rag);
    const bound = new WeakMap<(...args: unknown[]) => unknown, unknown>();
    wrapped = new Proxy(rag, {
      get(obj, prop) {
        if (prop === 'query') return query;
        const value: unknown = Reflect.get(obj, prop);
        if (typeof value !== 'function' || prop === 'constructor') return value;
        // Other methods run on the raw object, so its private fields keep working.
        const fn = value as (...args: unknown[]) => unknown;
        if (!bound.has(fn)) bound.set(fn, fn.bind(obj));
        return bound.get(fn);
      },
      set: (obj, prop, value) => Reflect.set(obj, prop, value),
    });
  } else {
    throw new CacheError('cachedRag: rag must be an async function or an object with a query() method', 'validation');
  }
  registerStats(wrapped, site.stats);
  return wrapped as R;
}

function checkVersion(version: unknown): void {
  if (typeof version !== 'string' || version.length === 0) {
    throw new CacheError(`cachedRag: corpusVersion must be a non-empty string, got ${String(version)}`, 'validation');
  }
}
