import type { CreateEmbeddingResponse, Embedding, EmbeddingCreateParams } from 'openai/resources/embeddings';
import { cachedItems, namespacedKey, planCall, type CallSite } from '../../src/llm/engine.js';
import { keyParams } from './request-params.js';
import { answerCopies, fromCache, type Answer } from './sdk-promise.js';

/**
 * What one input item stores. The vector is kept once, as binary: float32 when
 * every value is a float32 (always so for base64 answers, which the SDK asks
 * for by default), float64 otherwise, so a `float` answer comes back exactly.
 */
export interface StoredEmbedding {
  vector: Float32Array | Float64Array;
  /** The encoding upstream answered in: only a `float` answer can serve a `float` request exactly. */
  source: 'base64' | 'float';
  /** The model upstream reported. */
  model: string;
}

type Format = 'default' | 'base64' | 'float';

export interface EmbeddingsCall {
  site: CallSite<unknown>;
  provider: string;
  namespace: string;
  params: EmbeddingCreateParams;
  /** Sends `params` (with `input` replaced) upstream through the SDK. */
  upstream: (params: EmbeddingCreateParams) => Promise<Answer<CreateEmbeddingResponse>>;
  /** Whether concurrent identical batches may share one upstream call (not when the caller holds an abort signal). */
  share: boolean;
}

/** The input items of an embeddings request, or `undefined` when it cannot be split (an empty list). */
export function inputItems(input: unknown): unknown[] | undefined {
  if (!Array.isArray(input)) return [input];
  if (input.length === 0) return undefined;
  // A flat list of numbers is one tokenized input, not many.
  return input.every((item) => typeof item === 'number') ? [input] : input;
}

/** One item's key input: the provider, the request's other parameters (model, dimensions, ...) and the item. */
export function embeddingItemKeyInput(provider: string, shared: Record<string, unknown>, item: unknown): unknown {
  return { provider, endpoint: 'embeddings', params: { ...shared, input: item } };
}

function formatOf(params: EmbeddingCreateParams): Format | undefined {
  // The SDK treats any falsy encoding_format as "not given" (and decodes base64 itself).
  const format = params.encoding_format;
  if (!format) return 'default';
  return format === 'base64' || format === 'float' ? format : undefined;
}

/**
 * Caches an embeddings request per input item: cached items are answered from
 * the cache, the others go upstream in one request, and the answer keeps the
 * caller's order and indexes. `usage` counts only what was sent upstream
 * (litellm#39057 counted cached tokens twice). Returns `undefined` when the
 * request cannot be cached item by item (the caller sends it as is).
 */
export async function cachedEmbeddings(call: EmbeddingsCall): Promise<Answer<CreateEmbeddingResponse> | undefined> {
  const { site, params } = call;
  const items = inputItems(params.input);
  const format = formatOf(params);
  if (items === undefined || format === undefined) return undefined;
  let keys: string[];
  try {
    const shared = keyParams(params as unknown as Record<string, unknown>, 'input');
    delete shared.encoding_format;
    keys = items.map((item) => namespacedKey(embeddingItemKeyInput(call.provider, shared, item), call.namespace));
  } catch {
    return undefined;
  }
  const plan = planCall(site);
  plan.model = params.model;
  const result = await cachedItems<StoredEmbedding, Answer<CreateEmbeddingResponse>>(site, plan, {
    keys,
    upstream: async (missing) => {
      const answer = await call.upstream({ ...params, input: missing.map((i) => items[i]) as EmbeddingCreateParams['input'] });
      const data = byIndex(answer.value.data);
      const values = missing.map((_, j) => storable(format, data[j], answer.value.model));
      return { values, answer, tokens: answer.value.usage?.prompt_tokens ?? 0 };
    },
    usable: (value) => usable(format, value),
    weights: (missing) => missing.map((i) => weightOf(items[i])),
    copies: (fresh) => {
      const answer = answerCopies(fresh.answer);
      return (held) => ({ ...fresh, answer: answer(held) });
    },
    share: call.share,
  });
  const { answer } = result;
  // All of it went upstream: upstream's own answer, usage included.
  if (answer !== undefined && result.cached.every((hit) => !hit)) return answer;
  const fresh = answer === undefined ? [] : byIndex(answer.value.data);
  let next = 0;
  const data: Embedding[] = keys.map((_, index) => {
    if (result.cached[index]) return { object: 'embedding', index, embedding: answerIn(format, result.values[index] as StoredEmbedding) as number[] };
    const upstreamItem = fresh[next++];
    if (upstreamItem === undefined) throw new Error(`embeddings: upstream answered no item for input ${index}`);
    return { ...upstreamItem, index };
  });
  if (answer !== undefined) return { value: { ...answer.value, data }, response: answer.response };
  // A full hit: `usage` counts only what was sent upstream, nothing.
  return fromCache({ object: 'list', data, model: (result.values[0] as StoredEmbedding).model, usage: { prompt_tokens: 0, total_tokens: 0 } });
}

function usable(format: Format, value: unknown): boolean {
  const entry = value as Partial<StoredEmbedding> | null;
  if (!(entry?.vector instanceof Float32Array || entry?.vector instanceof Float64Array)) return false;
  // A base64 answer holds float32 values; the decimals a `float` answer would
  // have carried are lost, so such an entry cannot answer a `float` request exactly.
  return format !== 'float' || entry.source === 'float';
}

function storable(format: Format, item: Embedding | undefined, model: string): StoredEmbedding | undefined {
  const vector = item === undefined ? undefined : vectorOf(format, item.embedding);
  return vector === undefined ? undefined : { vector, source: format === 'float' ? 'float' : 'base64', model };
}

// Upstream reports usage per batch only: an item's share of its tokens follows its length
// (characters, or tokens for a token array: exact when every item is one).
function weightOf(item: unknown): number {
  return typeof item === 'string' || Array.isArray(item) ? Math.max(item.length, 1) : 1;
}

function byIndex(data: Embedding[]): (Embedding | undefined)[] {
  const out: (Embedding | undefined)[] = [];
  for (const item of data) out[item.index] = item;
  return out;
}

function vectorOf(format: Format, embedding: unknown): Float32Array | Float64Array | undefined {
  if (format === 'base64') {
    if (typeof embedding !== 'string') return undefined;
    const bytes = Buffer.from(embedding, 'base64');
    if (bytes.length % 4 !== 0) return undefined;
    // Copied out of Buffer's shared pool, whose offset need not be 4-aligned.
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  }
  if (!Array.isArray(embedding) || !embedding.every((x) => typeof x === 'number')) return undefined;
  const numbers = embedding as number[];
  return numbers.every((x) => Math.fround(x) === x || Number.isNaN(x)) ? Float32Array.from(numbers) : Float64Array.from(numbers);
}

/** The embedding exactly as the SDK would have handed it to the caller for `format`. */
function answerIn(format: Format, entry: StoredEmbedding): number[] | string {
  if (format === 'float') return Array.from(entry.vector);
  const f32 = entry.vector instanceof Float32Array ? entry.vector : Float32Array.from(entry.vector);
  if (format === 'base64') return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64');
  // What the SDK's own decoding of a base64 answer returns.
  return Array.from(f32);
}
