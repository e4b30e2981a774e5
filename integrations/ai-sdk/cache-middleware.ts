import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import {
  cachedCall,
  checkSiteOptions,
  copiesByEncoding,
  countBypass,
  createCallSite,
  isRecording,
  namespacedKey,
  optionNames,
  planCall,
  readCached,
  recordChunks,
  registerKeyRecipe,
  registerStats,
  type CallSite,
  type KeyRecipe,
  type StreamShape,
} from '../../src/llm/engine.js';
import type { CacheLanguageModelMiddleware } from './spec-types.js';
import { callKeyInput, type ModelIdentity } from './call-key.js';
import { finishedWhole, hitResult, restoredResult, storableResult, type GenerateResult, type HitMark } from './stored-parts.js';
import { recordedStream, replayedStream } from './stream-parts.js';

export interface CacheMiddlewareOptions {
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
  shouldCache?: (result: unknown, call: { type: 'generate' | 'stream' }) => boolean;
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

const OPTIONS = optionNames<CacheMiddlewareOptions>({ cache: true, ttl: true, namespace: true, tenantId: true, shouldCache: true, replayDelayMs: true });

/**
 * A language model middleware for `ai` 7 (spec V4): `wrapLanguageModel({
 * model, middleware: cacheMiddleware({ cache }) })` caches `doGenerate`
 * (`generateText`, `generateObject`) and `doStream` (`streamText`,
 * `streamObject`). For `ai` 6 use `cacheMiddlewareV3`, the same middleware
 * typed for spec V3.
 *
 * A hit is the stored answer exactly, plus `providerMetadata.cachekit`
 * (`{ hit: true, storedAt, key }`) on the result or the replayed `finish`
 * part. Read the counters with `cacheStats(middleware)`; per-call controls
 * come from `withCacheControl` (for a stream: the controls in force when
 * `streamText` was called). A failing cache never fails a call. Bad options
 * throw a `validation` CacheError here.
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
  const user = options.shouldCache;
  const generateSite: CallSite<unknown> = createCallSite(
    {
      cache: options.cache,
      ttl: options.ttl,
      tenantId: options.tenantId,
      namespace,
      shouldCache: (result) => finishedWhole((result as GenerateResult).finishReason) && (user?.(result, { type: 'generate' }) ?? true),
    },
    shared,
  );
  const streamSite: CallSite<unknown> = createCallSite(
    {
      cache: options.cache,
      ttl: options.ttl,
      tenantId: options.tenantId,
      namespace,
      shouldCache: user && ((recording) => user((recording as { chunks: unknown[] }).chunks, { type: 'stream' })),
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
        hit: (stored, _how, entry) => hitResult(stored as GenerateResult, { hit: true, storedAt: entry.storedAt, key }),
        copies: (answer) => {
          const copy = copiesByEncoding(storableResult(answer));
          const storedAt = Date.now();
          // A caller who came after the answer was there never waited for upstream: a hit, and marked as one.
          return (held) => (held ? hitResult(copy(), { hit: true, storedAt, key }) : restoredResult(copy()));
        },
        // A caller's own abort signal must not end the call other callers wait on.
        share: params.abortSignal == null,
      });
    },
    async wrapStream({ doStream, params, model }: HookArgs): Promise<StreamResult> {
      // The controls in force when streamText was called, though its stream is read later, elsewhere.
      const plan = planCall(streamSite);
      const key = keyOf(model, 'stream', params);
      if (key === undefined || plan.control?.bypass) {
        countBypass(stats);
        return doStream();
      }
      const stored = await readCached(streamSite, plan, key);
      if (stored !== undefined && isRecording(stored.value)) {
        const meta = (stored.value.meta ?? {}) as Omit<StreamResult, 'stream'>;
        const mark: HitMark = { hit: true, storedAt: stored.storedAt, key };
        return { ...meta, stream: replayedStream(stored.value.chunks, mark, { paceMs: replayDelayMs, signal: params.abortSignal }) };
      }
      const started = performance.now();
      const result = await doStream();
      const aborted = () => params.abortSignal?.aborted === true;
      const record = (source: AsyncIterable<unknown>, shape: StreamShape<unknown>) => recordChunks(streamSite, plan, key, source, shape, started, aborted);
      return { ...result, stream: recordedStream(result.stream, record, () => streamMeta(result)) };
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
function streamMeta(result: StreamResult): Omit<StreamResult, 'stream'> {
  const { stream: _stream, ...meta } = result;
  return meta;
}
