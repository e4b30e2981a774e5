import type { CreateEmbeddingResponse, Embedding, EmbeddingCreateParams } from 'openai/resources/embeddings';
import { backgroundWrite, failOpen, planCall, writeOptions, type CallPlan, type CallSite } from '../../src/llm/cached-call.js';
import { namespacedKey } from '../../src/llm/request-key.js';
import type { Hold } from '../../src/llm/single-flight.js';
import { keyParams } from './request-params.js';
import { answerCopies, fromCache, type Answer } from './sdk-promise.js';

/**
 * One stored input item. The vector is kept once, as binary: float32 when
 * every value is a float32 (always so for base64 answers, which the SDK asks
 * for by default), float64 otherwise, so a `float` answer comes back exactly.
 */
export interface StoredEmbedding {
  vector: Float32Array | Float64Array;
  /** The encoding upstream answered in: only a `float` answer can serve a `float` request exactly. */
  source: 'base64' | 'float';
  /** The model upstream reported. */
  model: string;
  storedAt: number;
  durationMs: number;
  /** This item's share of the batch's `prompt_tokens` (see `tokenShares`). */
  tokens: number;
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
  const plan = planCall(site);
  let keys: string[];
  try {
    const shared = keyParams(params as unknown as Record<string, unknown>, 'input');
    delete shared.encoding_format;
    keys = items.map((item) => namespacedKey(embeddingItemKeyInput(call.provider, shared, item), call.namespace));
  } catch {
    return undefined;
  }
  if (plan.control?.bypass || plan.control?.refresh) site.stats.bypasses++;
  const found = plan.control?.bypass || plan.control?.refresh ? new Map<string, StoredEmbedding>() : await readItems(site, plan, keys, format);

  const missing: number[] = [];
  for (let i = 0; i < items.length; i++) if (!found.has(keys[i]!)) missing.push(i);
  if (missing.length === 0) {
    const entries = keys.map((k) => found.get(k)!);
    site.stats.hits++;
    site.stats.tokensSaved += entries.reduce((sum, e) => sum + e.tokens, 0);
    site.stats.latencySavedMs += Math.max(...entries.map((e) => e.durationMs));
    const value: CreateEmbeddingResponse = {
      object: 'list',
      data: entries.map((entry, index) => ({ object: 'embedding', index, embedding: answerIn(format, entry) as number[] })),
      model: entries[0]!.model,
      usage: { prompt_tokens: 0, total_tokens: 0 },
    };
    return fromCache(value);
  }
  if (!plan.control?.bypass && !plan.control?.refresh) site.stats.misses++;
  for (const key of found.keys()) site.stats.tokensSaved += found.get(key)!.tokens;

  const sent = missing.map((i) => items[i]);
  const fetchMissing = async (hold?: Hold<Answer<CreateEmbeddingResponse>>) => {
    const started = performance.now();
    const answer = await call.upstream({ ...params, input: sent as EmbeddingCreateParams['input'] });
    const durationMs = performance.now() - started;
    const write = storeItems(site, plan, missing.map((i) => keys[i]!), sent, answer.value, format, durationMs);
    if (write && hold) hold(answer, { write, tokens: answer.value.usage?.prompt_tokens ?? 0, durationMs });
    return answer;
  };
  const flight = `${format}\u0000${missing.map((i) => keys[i]).join('\u0000')}`;
  const answer = call.share
    ? await (site.flights.join<Answer<CreateEmbeddingResponse>>(plan.tenantId, flight, plan.control?.refresh === true)?.answer ??
        site.flights.run(plan.tenantId, flight, fetchMissing, answerCopies))
    : await fetchMissing();
  if (missing.length === items.length) return answer;

  const fresh = byIndex(answer.value.data);
  const position = new Map(missing.map((i, j) => [i, j]));
  const data: Embedding[] = keys.map((key, index) => {
    const entry = found.get(key);
    if (entry) return { object: 'embedding', index, embedding: answerIn(format, entry) as number[] };
    const upstreamItem = fresh[position.get(index)!];
    if (upstreamItem === undefined) throw new Error(`embeddings: upstream answered no item for input ${index}`);
    return { ...upstreamItem, index };
  });
  return { value: { ...answer.value, data }, response: answer.response };
}

async function readItems(site: CallSite<unknown>, plan: CallPlan, keys: string[], format: Format): Promise<Map<string, StoredEmbedding>> {
  const usable = new Map<string, StoredEmbedding>();
  let stored: Map<string, unknown>;
  try {
    stored = await site.cache.getMany(keys, plan.tenantId === undefined ? undefined : { tenantId: plan.tenantId });
  } catch (error) {
    failOpen(site.stats, error);
    return usable;
  }
  for (const [key, value] of stored) {
    const entry = value as Partial<StoredEmbedding> | null;
    if (!(entry?.vector instanceof Float32Array || entry?.vector instanceof Float64Array)) continue;
    // A base64 answer holds float32 values; the decimals a `float` answer would
    // have carried are lost, so such an entry cannot answer a `float` request exactly.
    if (format === 'float' && entry.source !== 'float') continue;
    usable.set(key, entry as StoredEmbedding);
  }
  return usable;
}

function storeItems(
  site: CallSite<unknown>,
  plan: CallPlan,
  keys: string[],
  sent: unknown[],
  response: CreateEmbeddingResponse,
  format: Format,
  durationMs: number,
): Promise<void> | undefined {
  if (plan.control?.bypass || plan.control?.noStore) return undefined;
  if (site.shouldCache && !site.shouldCache(response)) return undefined;
  const items = byIndex(response.data);
  const tokens = tokenShares(sent, response.usage?.prompt_tokens ?? 0);
  const entries: [string, StoredEmbedding][] = [];
  const storedAt = Date.now();
  for (let j = 0; j < keys.length; j++) {
    const vector = items[j] === undefined ? undefined : vectorOf(format, items[j]!.embedding);
    if (vector === undefined) continue;
    entries.push([keys[j]!, { vector, source: format === 'float' ? 'float' : 'base64', model: response.model, storedAt, durationMs, tokens: tokens[j]! }]);
  }
  if (entries.length === 0) return undefined;
  return backgroundWrite(site.cache, site.stats, (cache, options) => cache.setMany(entries, options), writeOptions(plan));
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

/**
 * Splits a batch's `prompt_tokens` over its items in proportion to their
 * length (characters, or tokens for a token array: exact when every item is
 * one). Upstream reports usage per batch only, so this is an estimate, but the
 * shares add up to the batch's total: tokens saved are never counted twice.
 */
export function tokenShares(items: unknown[], total: number): number[] {
  const weights = items.map((item) => (typeof item === 'string' ? Math.max(item.length, 1) : Array.isArray(item) ? Math.max(item.length, 1) : 1));
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares: number[] = [];
  let before = 0;
  let cumulative = 0;
  for (const weight of weights) {
    cumulative += weight;
    const upTo = Math.round((total * cumulative) / sum);
    shares.push(upTo - before);
    before = upTo;
  }
  return shares;
}
