import type { EmbeddingModelV4 } from '@ai-sdk/provider';
import type { EmbeddingModelLike } from './spec-types.js';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import {
  cachedItems,
  checkSiteOptions,
  countBypass,
  createCallSite,
  namespacedKey,
  optionNames,
  planCall,
  registerKeyRecipe,
  registerStats,
  type KeyRecipe,
} from '../../src/llm/engine.js';
import { embeddingKeyInput, keyOptions, type ModelIdentity } from './call-key.js';

/** Options of `cachedEmbeddingModel`. */
export interface CachedEmbeddingModelOptions {
  /** Where vectors are stored. Required. */
  cache: Cache;
  /** TTL of stored vectors, in seconds (`Infinity`: never expires); `withCacheControl({ ttl })` overrides it per call. Default: the cache's `defaultTtl`. */
  ttl?: number;
  /** Readable key segment: keys are `v1:<namespace>:<sha256>`, one per value. Default: `'ai-sdk'`. */
  namespace?: string;
  /** Tenant whose entries the model reads and writes; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
}

type EmbedOptions = Parameters<EmbeddingModelV4['doEmbed']>[0];
type EmbedResult = Awaited<ReturnType<EmbeddingModelV4['doEmbed']>>;

const OPTIONS = optionNames<CachedEmbeddingModelOptions>({ cache: true, ttl: true, namespace: true, tenantId: true });

/**
 * An embedding model (spec V3 for `ai` 6, V4 for `ai` 7) whose `doEmbed`
 * caches each value on its own: of `embedMany`'s 100 values with 90 cached,
 * the 10 others go upstream in one `doEmbed` call, and the answer keeps the
 * caller's order. `usage` counts only the tokens sent upstream (a full hit
 * reports 0), and upstream's `providerMetadata` and `response` are passed on;
 * when any value came from the cache, `providerMetadata.cachekit` says how
 * many (`{ hit, cachedValues }`). Everything else is the model's own.
 *
 * (A middleware's `wrapEmbed` can only call `doEmbed` with all the values, so
 * this wraps the model instead.) Read the counters with
 * `cacheStats(wrapped)`; a failing cache never fails a call.
 */
export function cachedEmbeddingModel<M extends EmbeddingModelLike>(model: M, options: CachedEmbeddingModelOptions): M {
  const m = model as Partial<EmbeddingModelLike> | null;
  if (m === null || typeof m !== 'object' || typeof m.doEmbed !== 'function' || typeof m.provider !== 'string' || typeof m.modelId !== 'string') {
    throw new CacheError('cachedEmbeddingModel: model must be an AI SDK embedding model (with provider, modelId and doEmbed)', 'validation');
  }
  checkSiteOptions('cachedEmbeddingModel', options, OPTIONS);
  const namespace = options.namespace ?? 'ai-sdk';
  const site = createCallSite({ cache: options.cache, ttl: options.ttl, tenantId: options.tenantId, namespace });
  const identity: ModelIdentity = { provider: model.provider, modelId: model.modelId };
  const send = (call: EmbedOptions) => model.doEmbed(call as never) as PromiseLike<EmbedResult>;

  const keysOf = (call: EmbedOptions, dropped?: string[]): { values: string[]; items: unknown[] } | undefined => {
    const { values, ...rest } = call;
    if (!Array.isArray(values) || values.length === 0) return undefined;
    const shared = keyOptions(rest as Record<string, unknown>, dropped);
    return { values, items: values.map((value) => embeddingKeyInput(identity, shared, value)) };
  };

  async function doEmbed(call: EmbedOptions): Promise<EmbedResult> {
    let keyed: { values: string[]; keys: string[] } | undefined;
    try {
      const made = keysOf(call);
      keyed = made && { values: made.values, keys: made.items.map((item) => namespacedKey(item, namespace)) };
    } catch (error) {
      if (!(error instanceof CacheError && error.errorType === 'serialization')) throw error;
    }
    if (keyed === undefined) {
      countBypass(site.stats);
      return send(call);
    }
    const { values, keys } = keyed;
    const result = await cachedItems<Float32Array | Float64Array, EmbedResult>(site, planCall(site), {
      keys,
      upstream: async (missing) => {
        const answer = await send({ ...call, values: missing.map((i) => values[i] as string) });
        return { values: missing.map((_, j) => vectorOf(answer.embeddings[j])), answer, tokens: answer.usage?.tokens ?? 0 };
      },
      usable: (value) => value instanceof Float32Array || value instanceof Float64Array,
      weights: (missing) => missing.map((i) => Math.max((values[i] as string).length, 1)),
      // A caller's own abort signal must not end the call other callers wait on.
      share: call.abortSignal == null,
    });
    const cachedValues = result.cached.filter(Boolean).length;
    const { answer } = result;
    if (answer !== undefined && cachedValues === 0) return answer;
    const fresh = answer?.embeddings ?? [];
    let next = 0;
    const embeddings = keys.map((_, i) => {
      if (result.cached[i]) return Array.from(result.values[i] as Float32Array | Float64Array);
      const vector = fresh[next++];
      if (vector === undefined) throw new Error(`cachedEmbeddingModel: upstream answered no embedding for value ${i}`);
      return vector;
    });
    const cachekit = { hit: cachedValues === keys.length, cachedValues };
    if (answer === undefined) return { embeddings, usage: { tokens: 0 }, providerMetadata: { cachekit }, warnings: [] };
    return { ...answer, embeddings, providerMetadata: { ...answer.providerMetadata, cachekit } };
  }

  /** `explainKey(wrapped, { values, ...options })`: one key per value. */
  const recipe: KeyRecipe = ([call]) => {
    if (call === null || typeof call !== 'object') return { bypass: 'the call options are not an object (pass { values, ... })' };
    const dropped: string[] = [];
    const made = keysOf(call as EmbedOptions, dropped);
    if (made === undefined) return { bypass: 'no values to embed' };
    return { items: made.items, namespace, tenantId: options.tenantId, dropped };
  };

  const bound = new WeakMap<object, unknown>();
  const wrapped = new Proxy(model, {
    get(target, prop) {
      if (prop === 'doEmbed') return doEmbed;
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      // Bound to the model, so a provider's private fields keep working.
      let b = bound.get(value);
      if (!b) bound.set(value, (b = value.bind(target)));
      return b;
    },
  });
  registerStats(wrapped, site.stats);
  registerKeyRecipe(wrapped, recipe);
  return wrapped;
}

/**
 * A vector as stored, in binary: float32 when every value is one (exact, half
 * the size), float64 otherwise, so `Array.from` gives back exactly the numbers
 * upstream answered. `undefined` (not stored) for anything but a number list.
 */
function vectorOf(embedding: unknown): Float32Array | Float64Array | undefined {
  if (!Array.isArray(embedding) || !embedding.every((x) => typeof x === 'number')) return undefined;
  const numbers = embedding as number[];
  return numbers.every((x) => Math.fround(x) === x || Number.isNaN(x)) ? Float32Array.from(numbers) : Float64Array.from(numbers);
}
