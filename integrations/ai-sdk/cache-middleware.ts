import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import {
  answerStored,
  cachedCall,
  callerFreshness,
  checkSiteOptions,
  copiesByEncoding,
  countBypass,
  createCallSite,
  gracedCall,
  isRecording,
  joinStream,
  markServed,
  namespacedKey,
  FRESHNESS_OPTIONS,
  optionNames,
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
import type { CacheLanguageModelMiddleware } from './spec-types.js';
import { callKeyInput, type ModelIdentity } from './call-key.js';
import { finishedWhole, hitMark, hitResult, infoOf, restoredResult, seenOfResult, storableResult, type GenerateResult, type HitMark } from './stored-parts.js';
import { liveStream, replayedStream, STREAM_SHAPE, upstreamParts } from './stream-parts.js';

/** Which of a model's calls an answer came from: `doGenerate` or `doStream`. */
export interface MiddlewareCallType {
  /** `'generate'` (`generateText`, `generateObject`) or `'stream'` (`streamText`, `streamObject`). */
  type: 'generate' | 'stream';
}

/**
 * Options of `cacheMiddleware` and `cacheMiddlewareV3`. The freshness and
 * cost options (`grace`, `graceBackoff`, `softTimeout`, `shouldServeStale`,
 * `tags`, `prices`) work on `doGenerate` and `doStream` alike; `tags` gets a
 * `doGenerate` result or a stream's parts in their stored form (as
 * `shouldCache` does), then the call options and `{ type }`. The default
 * `shouldServeStale` refuses the AI SDK's `APICallError` with a 4xx
 * `statusCode` other than 408, 409 and 429, and every failure after the
 * call's `abortSignal` aborted. Prices go by the answer's
 * `response.modelId`, else the model's `modelId`.
 */
export interface CacheMiddlewareOptions extends FreshnessOptions<unknown, [params: Record<string, unknown>, call: MiddlewareCallType]> {
  /** Where answers are stored. Required. */
  cache: Cache;
  /** TTL of stored answers, in seconds (`Infinity`: never expires); `withCacheControl({ ttl })` overrides it per call. Default: the cache's `defaultTtl`. */
  ttl?: number;
  /**
   * Readable key segment: keys are `v1:<namespace>:<sha256>`, so
   * `cache.clearPattern('v1:<namespace>:*')` drops this middleware's entries.
   * Entries are shared only between middlewares with the same namespace,
   * model (provider and model id) and call. Default: `'ai-sdk'`.
   */
  namespace?: string;
  /** Tenant whose entries the middleware reads and writes; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /**
   * Return `false` to keep an answer out of the cache: `result` is a
   * `doGenerate` result, or a stream's parts in order, as stored (a file's
   * URL as `{ href }`, the response timestamp as epoch milliseconds). Answers whose finish reason is `error` or
   * `interrupted`, and streams that did not end whole, are never stored,
   * whatever this says. Default: store every whole answer.
   */
  shouldCache?: (result: unknown, call: MiddlewareCallType) => boolean;
  /**
   * Milliseconds between the parts of a replayed stream, for a UI that
   * should still look like it streams. Default: 0 (as fast as the consumer reads).
   */
  replayDelayMs?: number;
}

/** What `explainKey(middleware, call)` takes: what the middleware's hooks receive (`transformParams` gets exactly this). */
export interface MiddlewareCall {
  /** The wrapped (inner) model: its `provider` and `modelId` are in the key. */
  model: ModelIdentity;
  /** The call options the model receives (`prompt`, settings, `tools`, `providerOptions`, ...). */
  params: object;
  /** `'generate'` (`generateText`, `generateObject`) or `'stream'` (`streamText`, `streamObject`). Default: `'generate'`. */
  type?: 'generate' | 'stream';
}

const OPTIONS = optionNames<CacheMiddlewareOptions>({
  cache: true,
  ttl: true,
  namespace: true,
  tenantId: true,
  shouldCache: true,
  replayDelayMs: true,
  ...FRESHNESS_OPTIONS,
});

/**
 * A language model middleware for `ai` 7 (spec V4): `wrapLanguageModel({
 * model, middleware: cacheMiddleware({ cache }) })` caches `doGenerate`
 * (`generateText`, `generateObject`) and `doStream` (`streamText`,
 * `streamObject`). For `ai` 6 use `cacheMiddlewareV3`, the same middleware
 * typed for spec V3.
 *
 * A hit is the stored answer exactly, plus `providerMetadata.cachekit`
 * (`{ hit: true, stale?, storedAt, key }`) on the result or the replayed
 * `finish` part. Concurrent identical streamed misses share one upstream
 * stream, each caller its own parts. `cacheInfo(result.providerMetadata)`
 * (`generateText`, and a `doGenerate` result: the result itself when it has
 * no `providerMetadata`), `cacheInfo(await result.providerMetadata)`
 * (`streamText`) and `cacheInfo(doStreamResult.stream)` tell how the call
 * was answered. Read the counters with `cacheStats(middleware)`; per-call
 * controls come from `withCacheControl` (for a stream: the controls in force
 * when `streamText` was called). A failing cache never fails a call. Bad
 * options throw a `validation` CacheError here.
 */
export function cacheMiddleware(options: CacheMiddlewareOptions): CacheLanguageModelMiddleware<'v4'> {
  return createMiddleware('cacheMiddleware', options, 'v4') as CacheLanguageModelMiddleware<'v4'>;
}

/**
 * `cacheMiddleware` for `ai` 6, whose `wrapLanguageModel` takes spec V3
 * middleware. The hooks are the same: the parts the cache looks at (finish
 * reasons, file data) are read in both specs' shapes.
 */
export function cacheMiddlewareV3(options: CacheMiddlewareOptions): CacheLanguageModelMiddleware<'v3'> {
  return createMiddleware('cacheMiddlewareV3', options, 'v3') as CacheLanguageModelMiddleware<'v3'>;
}

interface StreamResult {
  stream: ReadableStream<unknown>;
  request?: unknown;
  response?: unknown;
}

/** What a stream result holds beside its stream (the request body, the response headers): stored with its parts, handed to joiners. */
type StreamMeta = Omit<StreamResult, 'stream'>;

/** What `wrapGenerate` and `wrapStream` receive, in both specs. */
interface HookArgs {
  doGenerate: () => PromiseLike<GenerateResult>;
  doStream: () => PromiseLike<StreamResult>;
  params: Record<string, unknown> & { abortSignal?: AbortSignal | undefined };
  model: ModelIdentity;
}

function createMiddleware(where: string, options: CacheMiddlewareOptions, specificationVersion: 'v3' | 'v4'): object {
  checkSiteOptions(where, options, OPTIONS);
  const { replayDelayMs } = options;
  if (replayDelayMs !== undefined && !(typeof replayDelayMs === 'number' && Number.isFinite(replayDelayMs) && replayDelayMs >= 0)) {
    throw new CacheError(`${where}: replayDelayMs must be a number of milliseconds, 0 or more, got ${String(replayDelayMs)}`, 'validation');
  }
  const namespace = options.namespace ?? 'ai-sdk';
  // Generate and stream count together and share one single-flight group.
  const shared = createCallSite({ cache: options.cache });
  const { stats } = shared;
  const { freshness, prices, singleFlight } = siteFreshness(where, options);
  const user = options.shouldCache;
  const tags = options.tags;
  const generateSite: CallSite<unknown> = createCallSite(
    {
      cache: options.cache,
      ttl: options.ttl,
      tenantId: options.tenantId,
      namespace,
      shouldCache: (result) => finishedWhole((result as GenerateResult).finishReason) && (user?.(result, { type: 'generate' }) ?? true),
      freshness,
      prices,
      // Streams stay per process: a shared live stream cannot cross processes.
      singleFlight,
      tags: tags && ((result, params) => tags(result, params as Record<string, unknown>, { type: 'generate' })),
    },
    shared,
  );
  const streamSite: CallSite<unknown> = createCallSite(
    {
      cache: options.cache,
      ttl: options.ttl,
      tenantId: options.tenantId,
      namespace,
      shouldCache: user && ((recording) => user((recording as RecordedStream).chunks, { type: 'stream' })),
      freshness,
      prices,
      tags: tags && ((recording, params) => tags((recording as RecordedStream).chunks, params as Record<string, unknown>, { type: 'stream' })),
    },
    shared,
  );

  const keyOf = (model: ModelIdentity, type: 'generate' | 'stream', params: Record<string, unknown>): string | undefined => {
    try {
      return namespacedKey(callKeyInput(identityOf(model), type, params), namespace);
    } catch (error) {
      // A call the key cannot hold (a class instance in a provider option) goes upstream uncached.
      if (error instanceof CacheError && error.errorType === 'serialization') return undefined;
      throw error;
    }
  };

  /** A stored stream replayed: counted already (by `readCached` or `answerStored`). */
  const replay = (recording: RecordedStream, mark: HitMark, signal: AbortSignal | undefined): StreamResult => {
    const stream = replayedStream(recording.chunks, mark, { paceMs: replayDelayMs, signal });
    markServed(stream, infoOf(mark));
    return { ...((recording.meta ?? {}) as StreamMeta), stream };
  };

  const middleware = {
    specificationVersion,
    wrapGenerate({ doGenerate, params, model }: HookArgs): PromiseLike<GenerateResult> {
      const key = keyOf(model, 'generate', params);
      if (key === undefined) {
        countBypass(stats);
        return doGenerate();
      }
      return cachedCall<GenerateResult>(generateSite, key, {
        upstream: async () => doGenerate(),
        stored: storableResult,
        seen: seenOfResult,
        hit: (stored, how, entry) => hitResult(stored as GenerateResult, hitMark(how, entry.storedAt, key)),
        copies: (answer) => {
          const copy = copiesByEncoding(storableResult(answer));
          const storedAt = Date.now();
          // A caller who came after the answer was there never waited for upstream: a hit, and marked as one.
          return (held) => (held ? hitResult(copy(), hitMark('hit', storedAt, key)) : restoredResult(copy()));
        },
        // A caller's own abort signal must not end the call other callers wait on.
        share: params.abortSignal == null,
        signal: params.abortSignal,
        args: tags === undefined ? undefined : [params],
        model: model.modelId,
      });
    },
    async wrapStream({ doStream, params, model }: HookArgs): Promise<StreamResult> {
      // The controls in force when streamText was called, though its stream is read later, elsewhere.
      const plan = planCall(streamSite);
      plan.model = model.modelId;
      const key = keyOf(model, 'stream', params);
      if (key === undefined || plan.control?.bypass) {
        countBypass(stats, key, plan);
        const result = await doStream();
        if (key !== undefined) markServed(result.stream, { status: 'bypass', key });
        return result;
      }
      const signal = params.abortSignal ?? undefined;
      // Each caller's own controller: cancelling its stream ends its reading, never another caller's.
      const controller = new AbortController();
      let meta: StreamMeta | undefined;
      const call: StreamCall<unknown, StreamMeta> = {
        site: streamSite,
        plan,
        key,
        // Its abort signal is bound to its own upstream request: it may join a stream, never be joined.
        share: signal === undefined,
        signal: signal === undefined ? controller.signal : AbortSignal.any([controller.signal, signal]),
        shape: { ...STREAM_SHAPE, meta: () => meta },
        args: tags === undefined ? undefined : [params],
        open: async () => {
          const result = await doStream();
          meta = streamMeta(result);
          return { ...upstreamParts(result.stream, () => signal?.aborted === true), extra: meta };
        },
      };
      const live = (shared: SharedStream<unknown, StreamMeta>): StreamResult => {
        const mark = shared.status === 'hit' ? hitMark('hit', Date.now(), key) : undefined;
        return { ...shared.extra, stream: liveStream(shared.chunks, controller, signal, { status: shared.status, key }, mark) };
      };
      const joined = joinStream<unknown, StreamMeta>(call);
      if (joined) return live(await joined);
      // Another caller may have started the same stream while this one read the cache.
      const produce = async () => live(await (joinStream<unknown, StreamMeta>(call, true) ?? startStream(call)));
      const { freshness } = streamSite;
      if (freshness !== undefined && !plan.control?.refresh) {
        // A stale recording answers when upstream refuses the stream, backs off, or is slower than softTimeout to open it.
        const answer = (stored: StoredResult, how: 'hit' | 'stale') =>
          isRecording(stored.value) ? replay(answerStored(streamSite, stored, how, key, plan) as RecordedStream, hitMark(how, stored.storedAt, key), signal) : undefined;
        return gracedCall(streamSite, plan, key, callerFreshness(freshness, signal) ?? freshness, answer, produce);
      }
      const stored = await readCached(streamSite, plan, key);
      if (stored !== undefined && isRecording(stored.value)) return replay(stored.value, hitMark('hit', stored.storedAt, key), signal);
      return produce();
    },
  };
  registerStats(middleware, stats);
  registerKeyRecipe(middleware, recipe(namespace, options.tenantId));
  return middleware;
}

/** `explainKey(middleware, { model, params, type? })`. */
function recipe(namespace: string, tenantId: string | undefined): KeyRecipe {
  return ([call]) => {
    const { model, params, type = 'generate' } = (call ?? {}) as Partial<MiddlewareCall>;
    if (type !== 'generate' && type !== 'stream') throw new CacheError(`explainKey: type must be 'generate' or 'stream', got ${String(type)}`, 'validation');
    if (params === null || typeof params !== 'object') return { bypass: 'the call has no params object (pass { model, params, type })' };
    if (typeof model?.provider !== 'string' || typeof model.modelId !== 'string') return { bypass: 'the call has no model with a provider and a modelId' };
    const dropped: string[] = [];
    const input = callKeyInput(identityOf(model), type, params as Record<string, unknown>, dropped);
    return { input, namespace, tenantId, dropped: dropped.map((path) => `params.${path}`) };
  };
}

function identityOf(model: ModelIdentity): ModelIdentity {
  return { provider: model.provider, modelId: model.modelId };
}

/** What a stream result holds beside its stream (the request body, the response headers), stored with its parts. */
function streamMeta(result: StreamResult): StreamMeta {
  const { stream: _stream, ...meta } = result;
  return meta;
}
