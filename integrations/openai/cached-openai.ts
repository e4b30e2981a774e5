import type { OpenAI } from 'openai';
import type { APIPromise } from 'openai/core/api-promise';
import type { Stream } from 'openai/core/streaming';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import {
  answerStored,
  countBypass,
  cachedCall,
  checkSiteOptions,
  createCallSite,
  isRecording,
  joinStream,
  markServed,
  namespacedKey,
  FRESHNESS_OPTIONS,
  optionNames,
  gracedCall,
  planCall,
  readCached,
  registerKeyRecipe,
  registerStats,
  siteFreshness,
  startStream,
  type CallSite,
  type FreshnessOptions,
  type KeyRecipe,
  type RecordedStream,
  type SharedStream,
  type StoredResult,
  type StreamCall,
} from '../../src/llm/engine.js';
import { cachedEmbeddings, embeddingItemKeyInput, inputItems } from './embeddings.js';
import { keyParams, optionsChangeRequest, PARAMS_OUT_OF_KEY, providerIdentity, type OpenAIEndpoint } from './request-params.js';
import { answerCopies, fromCache, sdkPromise, type Answer } from './sdk-promise.js';
import { liveStream, replayStream, streamShape } from './stream-replay.js';

/**
 * Options of `cachedOpenAI`.
 *
 * @example
 * const openai = cachedOpenAI(new OpenAI(), { cache, ttl: 3600, tenantId: 'acme' });
 */
export interface CachedOpenAIOptions extends FreshnessOptions<unknown, [params: unknown, requestOptions?: unknown]> {
  /** Where answers are stored. Required. */
  cache: Cache;
  /** TTL of stored answers, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /**
   * Readable key segment: keys are `v1:<namespace>:<sha256>`, so
   * `cache.clearPattern('v1:<namespace>:*')` drops this wrapper's entries.
   * Entries are shared only between wrappers with the same namespace, provider
   * (base URL) and request. Default: `'openai'`.
   */
  namespace?: string;
  /** Tenant whose entries the wrapper reads and writes; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /**
   * Return `false` to keep an answer out of the cache. `result` is the parsed
   * answer, the list of chunks for a stream, or the upstream answer to the
   * items an embeddings call sent. Errors, unfinished streams and Responses
   * API answers whose `status` is not `completed` are never cached.
   * Default: cache every finished answer.
   */
  shouldCache?: (result: unknown, call: { endpoint: OpenAIEndpoint; stream: boolean }) => boolean;
  /**
   * Tokens an answer cost, counted as saved on each hit: `result` is the
   * parsed answer or a stream's recording (`{ chunks, usage }`). Default:
   * `tokensOf`, which reads its `usage`. Embeddings always count their
   * `prompt_tokens`, split over the items.
   */
  countTokens?: (result: unknown, call: { endpoint: OpenAIEndpoint; stream: boolean }) => number | undefined;
}

type Create = (this: unknown, params: unknown, options?: unknown) => APIPromise<unknown>;
type Leaf = (resource: object, original: Create) => Create;
interface Node {
  [prop: string]: Node | Leaf;
}

const CACHED_OPENAI_OPTIONS = optionNames<CachedOpenAIOptions>({
  cache: true,
  ttl: true,
  namespace: true,
  tenantId: true,
  shouldCache: true,
  countTokens: true,
  ...FRESHNESS_OPTIONS,
});

/**
 * Caches the answers of an `openai` client and returns an object of the same
 * type: `chat.completions.create` (streamed and not), `completions.create`,
 * `embeddings.create` (per input item) and `responses.create`. Everything
 * else reaches the client untouched. The cached methods keep the SDK's return
 * types: an `APIPromise`, and a `Stream` for `stream: true`.
 *
 * Read the counters with `cacheStats(wrapped)`; per-call controls come from
 * `withCacheControl`. A failing cache never fails a call: it counts an error
 * and the call goes upstream. Bad options throw a `validation` CacheError here.
 */
export function cachedOpenAI<C extends OpenAI>(client: C, options: CachedOpenAIOptions): C {
  if (client === null || typeof client !== 'object' || typeof client.chat?.completions?.create !== 'function') {
    throw new CacheError('cachedOpenAI: client must be an instance of the openai SDK client', 'validation');
  }
  checkSiteOptions('cachedOpenAI', options, CACHED_OPENAI_OPTIONS);

  // Every endpoint's sites count together and share one single-flight group.
  const shared = createCallSite({ cache: options.cache });
  const { stats } = shared;
  const namespace = options.namespace ?? 'openai';
  const freshness = siteFreshness('cachedOpenAI', options);

  const site = (endpoint: OpenAIEndpoint, stream: boolean): CallSite<unknown> => {
    const user = options.shouldCache;
    const { countTokens } = options;
    const finished = endpoint === 'responses' && !stream ? completedResponse : undefined;
    return createCallSite(
      {
        cache: options.cache,
        ttl: options.ttl,
        tenantId: options.tenantId,
        shouldCache:
          user || finished ? (result: unknown) => (finished?.(result) ?? true) && (user?.(result, { endpoint, stream }) ?? true) : undefined,
        countTokens: countTokens && ((result: unknown) => countTokens(result, { endpoint, stream })),
        namespace,
        ...freshness,
      },
      shared,
    );
  };

  const keyInput = (endpoint: OpenAIEndpoint, stream: boolean, params: Record<string, unknown>) => ({
    provider: providerIdentity(client),
    endpoint,
    stream,
    params: keyParams(params),
  });
  const keyOf = (endpoint: OpenAIEndpoint, stream: boolean, params: unknown, requestOptions: unknown): string | undefined => {
    if (params === null || typeof params !== 'object' || optionsChangeRequest(requestOptions)) return undefined;
    try {
      return namespacedKey(keyInput(endpoint, stream, params as Record<string, unknown>), namespace);
    } catch (error) {
      if (error instanceof CacheError && error.errorType === 'serialization') return undefined;
      throw error;
    }
  };
  /** `explainKey(openai.chat.completions.create, params, requestOptions?)`. */
  const recipe =
    (endpoint: OpenAIEndpoint): KeyRecipe =>
    ([params, requestOptions]) => {
      if (params === null || typeof params !== 'object') return { bypass: 'the request params are not an object' };
      if (optionsChangeRequest(requestOptions)) return { bypass: 'its request options set body, query, path or method, which change what is sent' };
      const stream = (params as { stream?: unknown }).stream === true;
      const input = keyInput(endpoint, stream, params as Record<string, unknown>);
      if (endpoint === 'embeddings') {
        const items = inputItems((params as { input?: unknown }).input);
        if (items === undefined) return { bypass: 'an empty input list' };
        const { input: _all, encoding_format: _format, ...shared } = input.params;
        return { items: items.map((item) => embeddingItemKeyInput(input.provider, shared, item)), namespace, tenantId: options.tenantId, dropped: droppedOf(params, requestOptions, ['encoding_format']) };
      }
      return { input, namespace, tenantId: options.tenantId, dropped: droppedOf(params, requestOptions, []) };
    };

  const generation = (endpoint: OpenAIEndpoint): Leaf => {
    const json = site(endpoint, false);
    const streamed = site(endpoint, true);
    return (resource, original) =>
      function create(params: unknown, requestOptions?: unknown): APIPromise<unknown> {
        const stream = (params as { stream?: unknown } | null)?.stream === true;
        const key = keyOf(endpoint, stream, params, requestOptions);
        const send = () => original.call(resource, params, requestOptions);
        if (key === undefined) {
          countBypass(stats);
          return send();
        }
        // A caller's abort signal must not end the call other callers wait on.
        const signal = signalOf(requestOptions);
        // Only what the options read: a hit allocates nothing for tags it does not use.
        const model = modelOf(params);
        const call: Call = {
          key,
          send,
          share: signal === undefined,
          args: options.tags === undefined ? undefined : [params, requestOptions],
          model,
        };
        return sdkPromise(client, stream ? streamAnswer(client, endpoint, streamed, call, signal) : jsonAnswer(json, call));
      };
  };
  const explained = (leaf: Leaf, endpoint: OpenAIEndpoint): Leaf => (resource, original) => {
    const create = leaf(resource, original);
    registerKeyRecipe(create, recipe(endpoint));
    return create;
  };

  const embeddingsSite = site('embeddings', false);
  const embeddings: Leaf = (resource, original) =>
    function create(params: unknown, requestOptions?: unknown): APIPromise<unknown> {
      const send = (body: unknown) => upstream(() => original.call(resource, body, requestOptions));
      if (params === null || typeof params !== 'object' || optionsChangeRequest(requestOptions)) {
        countBypass(stats);
        return original.call(resource, params, requestOptions);
      }
      const answer = (async (): Promise<Answer<unknown>> => {
        const cached = await cachedEmbeddings({
          site: embeddingsSite,
          provider: providerIdentity(client),
          namespace,
          params: params as never,
          upstream: send as never,
          share: signalOf(requestOptions) === undefined,
        });
        if (cached !== undefined) return cached;
        countBypass(stats);
        return send(params);
      })();
      return sdkPromise(client, answer);
    };

  const tree: Node = {
    chat: { completions: { create: explained(generation('chat.completions'), 'chat.completions') } },
    completions: { create: explained(generation('completions'), 'completions') },
    embeddings: { create: explained(embeddings, 'embeddings') },
    responses: { create: explained(generation('responses'), 'responses') },
  };
  const wrapped = view(client, tree) as C;
  registerStats(wrapped, stats);
  return wrapped;
}

async function upstream<T>(send: () => APIPromise<T>): Promise<Answer<T>> {
  const { data, response } = await send().withResponse();
  return { value: data, response };
}

/** One cached generation call, as `create` saw it. */
interface Call {
  key: string;
  send: () => APIPromise<unknown>;
  share: boolean;
  args: unknown[] | undefined;
  model: string | undefined;
}

function jsonAnswer(site: CallSite<unknown>, call: Call): Promise<Answer<unknown>> {
  return cachedCall<Answer<unknown>>(site, call.key, {
    upstream: () => upstream(call.send),
    stored: valueOf,
    copies: answerCopies,
    hit: fromCache,
    share: call.share,
    args: call.args,
    model: call.model,
  });
}

/** The request's model, for prices, events and metrics (never the key: that holds every param). */
export function modelOf(params: unknown): string | undefined {
  const model = (params as { model?: unknown } | null)?.model;
  return typeof model === 'string' ? model : undefined;
}

function valueOf(answer: Answer<unknown>): unknown {
  return answer.value;
}

/**
 * A streamed call: a replay on a hit; on a miss, one upstream stream shared
 * by every identical streamed call of this process while it runs (each
 * caller its own `Stream` of its own chunk objects, its abort ending only its
 * own stream). A call with an abort signal joins a running stream but never
 * starts a shared one: its signal is bound to its own upstream request.
 */
async function streamAnswer(client: OpenAI, endpoint: OpenAIEndpoint, site: CallSite<unknown>, call: Call, signal: AbortSignal | undefined): Promise<Answer<Stream<unknown>>> {
  const plan = planCall(site);
  plan.model = call.model;
  const { key } = call;
  if (plan.control?.bypass) {
    countBypass(site.stats, key, plan);
    const answer = await upstream(call.send as () => APIPromise<Stream<unknown>>);
    markServed(answer.value, { status: 'bypass', key });
    return answer;
  }
  // Each caller's own controller: `stream.controller.abort()` ends its stream, never another's.
  const controller = new AbortController();
  const shared: StreamCall<unknown, Response | undefined> = {
    site,
    plan,
    key,
    share: call.share,
    signal: signal === undefined ? controller.signal : AbortSignal.any([controller.signal, signal]),
    shape: streamShape(endpoint),
    args: call.args,
    open: async () => {
      const { value, response } = await upstream(call.send as () => APIPromise<Stream<unknown>>);
      return { source: value, cancel: () => value.controller.abort(), aborted: () => value.controller.signal.aborted, extra: response };
    },
  };
  const joined = joinStream<unknown, Response | undefined>(shared);
  if (joined) return live(await joined, client, controller, key);
  // Another caller may have started the same stream while this one read the cache.
  const produce = async () => live(await (joinStream<unknown, Response | undefined>(shared, true) ?? startStream(shared)), client, controller, key);
  const { freshness } = site;
  if (freshness !== undefined && !plan.control?.refresh) {
    // A stale recording answers when upstream refuses the stream, backs off, or is slower than softTimeout to open it.
    return gracedCall(site, plan, key, freshness, (stored, how) => (isRecording(stored.value) ? replayed(site, stored, how, client, key) : undefined), produce);
  }
  const hit = await readCached(site, plan, key);
  if (hit && isRecording(hit.value)) {
    const replay = replayStream(hit.value, client);
    markServed(replay, { status: 'hit', storedAt: hit.storedAt, key });
    return fromCache(replay);
  }
  return produce();
}

function replayed(site: CallSite<unknown>, stored: StoredResult, how: 'hit' | 'stale', client: OpenAI, key: string): Answer<Stream<unknown>> {
  const replay = replayStream(answerStored(site, stored, how, key) as RecordedStream, client);
  markServed(replay, { status: how, storedAt: stored.storedAt, key });
  return fromCache(replay, how);
}

function live(shared: SharedStream<unknown, Response | undefined>, client: OpenAI, controller: AbortController, key: string): Answer<Stream<unknown>> {
  const stream = liveStream(shared.chunks, controller, client);
  markServed(stream, { status: shared.status, key });
  return shared.status === 'hit' ? fromCache(stream) : { value: stream, response: shared.extra };
}

// The Responses API answers background, failed and cut-short requests with a
// response object too; only a completed one is the answer to the request.
function completedResponse(result: unknown): boolean {
  const status = (result as { status?: unknown } | null)?.status;
  return status === undefined || status === 'completed';
}

/** What of the caller's call is not in the key: the parameters out of it, and every request option. */
function droppedOf(params: object, requestOptions: unknown, more: string[]): string[] {
  const dropped = Object.keys(params).filter((name) => PARAMS_OUT_OF_KEY.has(name) || more.includes(name)).map((name) => `params.${name}`);
  if (requestOptions !== null && typeof requestOptions === 'object') for (const name of Object.keys(requestOptions)) dropped.push(`options.${name}`);
  return dropped;
}

function signalOf(requestOptions: unknown): AbortSignal | undefined {
  const signal = (requestOptions as { signal?: unknown } | null | undefined)?.signal;
  return signal instanceof AbortSignal ? signal : undefined;
}

/**
 * A proxy of `raw` whose properties named in `node` are replaced: a leaf by
 * the cached method it builds, a branch by a proxy of the property's value.
 * Other methods are bound to the raw object, so the SDK's private fields keep
 * working.
 */
function view(raw: object, node: Node): object {
  const made = new Map<PropertyKey, { from: unknown; to: unknown }>();
  const bound = new WeakMap<object, unknown>();
  return new Proxy(raw, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      const spec = typeof prop === 'string' && Object.hasOwn(node, prop) ? node[prop] : undefined;
      if (spec !== undefined && value !== null && (typeof value === 'object' || typeof value === 'function')) {
        let entry = made.get(prop);
        if (entry?.from !== value) {
          entry = { from: value, to: typeof spec === 'function' ? spec(obj, value as Create) : view(value as object, spec) };
          made.set(prop, entry);
        }
        return entry.to;
      }
      if (typeof value !== 'function' || prop === 'constructor') return value;
      let b = bound.get(value);
      if (!b) bound.set(value, (b = value.bind(obj)));
      return b;
    },
  });
}
