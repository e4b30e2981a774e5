import { Embeddings } from '@langchain/core/embeddings';
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
import { baseURLOf } from './key-input.js';

/** Options of `cachedEmbeddings`. */
export interface CachedEmbeddingsOptions {
  /** Where vectors are stored. Required. */
  cache: Cache;
  /** TTL of stored vectors, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /** Readable key segment: keys are `v1:<namespace>:<sha256>`. Default: `'langchain-embeddings'`. */
  namespace?: string;
  /** Tenant whose entries are read and written; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
  /**
   * What tells this model's vectors from another's, as plain data, in every
   * item's key instead of the one read from the model (its class, base URL,
   * `model`, `dimensions`, and `stripNewLines`/`encodingFormat` where it has
   * them). Give it for a model that holds its identity elsewhere (a
   * deployment name, an input type, a local model path). Default: read from the model.
   */
  identity?: unknown;
}

const OPTIONS = optionNames<CachedEmbeddingsOptions>({ cache: true, ttl: true, namespace: true, tenantId: true, identity: true });

type Kind = 'query' | 'document';

interface EmbedMethods {
  embedDocuments(documents: string[]): Promise<number[][]>;
  embedQuery(document: string): Promise<number[]>;
}

/**
 * Caches a LangChain `Embeddings` per text and returns an object of the same
 * type: `embedDocuments` reads every text's entry at once and sends only the
 * missing texts upstream, in one call, answering in the caller's order;
 * `embedQuery` is cached too (LangChain's `CacheBackedEmbeddings` caches only
 * documents). Queries and documents never share entries: several providers
 * embed them differently (an input type or task prefix), and a shared entry
 * would hand one the other's vector.
 *
 * Vectors are stored compactly (float32 when every value is one, as OpenAI's
 * base64 answers always are, float64 otherwise) and come back exactly.
 * `cacheStats(wrapped)` reads the counters; `explainKey(wrapped.embedDocuments, texts)`
 * and `explainKey(wrapped.embedQuery, text)` the keys.
 */
export function cachedEmbeddings<E extends Embeddings>(embeddings: E, options: CachedEmbeddingsOptions): E {
  if (!(embeddings instanceof Embeddings)) throw new CacheError('cachedEmbeddings: embeddings must be a LangChain Embeddings', 'validation');
  checkSiteOptions('cachedEmbeddings', options, OPTIONS);
  if (options.identity !== undefined) {
    try {
      namespacedKey(options.identity, undefined);
    } catch {
      throw new CacheError('cachedEmbeddings: identity must be plain data (strings, numbers, objects, arrays)', 'validation');
    }
  }
  const namespace = options.namespace ?? 'langchain-embeddings';
  const site = createCallSite({ cache: options.cache, ttl: options.ttl, tenantId: options.tenantId, namespace });
  const inner = embeddings as unknown as EmbedMethods;
  const identity = () => options.identity ?? identityOf(embeddings);
  const itemKey = (kind: Kind, text: string) => ({ embeddings: identity(), kind, text });

  const embed = async (kind: Kind, texts: string[], send: (missing: string[]) => Promise<number[][]>): Promise<number[][]> => {
    let keys: string[];
    try {
      keys = texts.map((text) => namespacedKey(itemKey(kind, text), namespace));
    } catch {
      countBypass(site.stats);
      return send(texts);
    }
    const result = await cachedItems<Float32Array | Float64Array, number[][]>(site, planCall(site), {
      keys,
      upstream: async (missing) => {
        const vectors = await send(missing.map((i) => texts[i] as string));
        if (vectors.length !== missing.length) throw new Error(`cachedEmbeddings: upstream answered ${vectors.length} vectors for ${missing.length} texts`);
        return { values: vectors.map(compact), answer: vectors };
      },
      usable: (value) => value instanceof Float32Array || value instanceof Float64Array,
    });
    // Misses come back as upstream gave them; hits as the numbers stored.
    let next = 0;
    return texts.map((_, i) => (result.cached[i] ? Array.from(result.values[i] as Float32Array) : (result.answer as number[][])[next++] as number[]));
  };

  const wrapped = Object.create(embeddings) as E;
  const embedDocuments = (documents: string[]) => (documents.length === 0 ? inner.embedDocuments.call(embeddings, documents) : embed('document', documents, (missing) => inner.embedDocuments.call(embeddings, missing)));
  const embedQuery = async (text: string) => (await embed('query', [text], async ([one]) => [await inner.embedQuery.call(embeddings, one as string)]))[0] as number[];
  Object.defineProperty(wrapped, 'embedDocuments', { value: embedDocuments, writable: true, configurable: true });
  Object.defineProperty(wrapped, 'embedQuery', { value: embedQuery, writable: true, configurable: true });
  registerStats(wrapped, site.stats);
  const recipe = (kind: Kind): KeyRecipe => (args) => {
    const texts = kind === 'query' ? [args[0]] : args[0];
    if (!Array.isArray(texts) || texts.length === 0) return { bypass: 'no texts to embed' };
    return { items: texts.map((text) => itemKey(kind, String(text))), namespace, tenantId: options.tenantId };
  };
  registerKeyRecipe(embedDocuments, recipe('document'));
  registerKeyRecipe(embedQuery, recipe('query'));
  return wrapped;
}

/** The model's identity as the embeddings integrations in LangChain hold it. */
function identityOf(embeddings: Embeddings): Record<string, unknown> {
  const e = embeddings as unknown as { model?: unknown; modelName?: unknown; dimensions?: unknown; stripNewLines?: unknown; encodingFormat?: unknown };
  const ctor = embeddings.constructor as { lc_name?: () => string; name: string };
  return {
    class: typeof ctor.lc_name === 'function' ? ctor.lc_name() : ctor.name,
    baseURL: baseURLOf(embeddings),
    model: e.model ?? e.modelName,
    dimensions: e.dimensions,
    // OpenAIEmbeddings replaces newlines before sending, and a `float` answer carries more digits than a base64 one.
    stripNewLines: e.stripNewLines,
    encodingFormat: e.encodingFormat,
  };
}

// Float32 when that loses nothing (OpenAI's base64 answers are float32), float64 otherwise.
function compact(vector: number[]): Float32Array | Float64Array | undefined {
  if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number')) return undefined;
  return vector.every((x) => Math.fround(x) === x || Number.isNaN(x)) ? Float32Array.from(vector) : Float64Array.from(vector);
}
