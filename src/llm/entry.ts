/**
 * What the LLM wrappers store: the result plus what it cost to produce, so a
 * hit can report what caching saved and `memoizeTask` can tell when and how
 * long a task ran. The wrapped functions still return the bare result.
 */
export interface StoredResult<T = unknown> {
  /** The result as upstream returned it. */
  value: T;
  /** When it was produced, epoch milliseconds. */
  storedAt: number;
  /** How long upstream took to produce it, milliseconds. */
  durationMs: number;
  /** Tokens upstream reported for it (see `tokensOf`), when it did. */
  tokens?: number;
  /** Prompt and completion tokens, when upstream reported them apart: what `prices` turn into `costSaved`. */
  usage?: { input: number; output: number };
  /** The model that answered (the response's, else the request's), when known. */
  model?: string;
}

/** Prices of a model, in currency units per million tokens. */
export interface ModelPrice {
  /** Per million prompt (input) tokens. */
  input: number;
  /** Per million completion (output) tokens. */
  output: number;
}

/** Prices per model name, as the answers report it (`gpt-4o-mini`). */
export type Prices = Readonly<Record<string, ModelPrice>>;

/** Counters every wrapper keeps; `stats()` on a wrapper returns a copy. */
export interface WrapperStats {
  /** Calls answered from the cache. */
  hits: number;
  /** Calls that went upstream because nothing was cached. */
  misses: number;
  /** Calls that skipped the read (bypass, refresh, or a request that cannot be keyed). */
  bypasses: number;
  /** Cache failures swallowed so the call could still be answered (the cache fails open). */
  errors: number;
  /**
   * Results not stored although they should have been: the cache refused the
   * entry (larger than `maxBytes`, a full server), or too many writes were
   * already waiting for a slow cache.
   */
  writesDropped: number;
  /** Tokens not spent thanks to hits (from the stored `usage`). */
  tokensSaved: number;
  /** Upstream milliseconds not waited thanks to hits. */
  latencySavedMs: number;
  /** Calls of `cacheEvents(wrapper)` listeners that threw or rejected (the calls were answered all the same). */
  listenerErrors: number;
  /** Calls answered with a stale entry (within its `grace`): upstream failed, was slower than `softTimeout`, or was backing off. */
  staleHits: number;
  /**
   * What hits (stale ones included) did not spend, from the wrapper's `prices`:
   * (prompt tokens x input + completion tokens x output) / 1e6 per hit, priced
   * by the model that answered. 0 without `prices`.
   */
  costSaved: number;
}

export function emptyWrapperStats(): WrapperStats {
  return { hits: 0, misses: 0, bypasses: 0, errors: 0, writesDropped: 0, tokensSaved: 0, latencySavedMs: 0, listenerErrors: 0, staleHits: 0, costSaved: 0 };
}

/** The tokens a result reports, by side, and the model that answered it (each `undefined` when not reported). */
export interface Usage {
  input?: number;
  output?: number;
  model?: string;
}

/**
 * Prompt and completion tokens of a result, and the model that answered, in
 * the shapes `tokensOf` reads (a stream's recording: its `usage` and its
 * chunks' `model`). `undefined` fields when not reported.
 */

export function usageOf(result: unknown): Usage {
  const r = result as { usage?: unknown; model?: unknown; modelId?: unknown; response?: { modelId?: unknown }; chunks?: unknown } | null | undefined;
  if (r === null || typeof r !== 'object') return {};
  const u = (r.usage ?? {}) as Record<string, unknown>;
  const input = count(u.prompt_tokens) ?? count(u.input_tokens) ?? count(u.inputTokens);
  const output = count(u.completion_tokens) ?? count(u.output_tokens) ?? count(u.outputTokens);
  const chunk = Array.isArray(r.chunks) ? (r.chunks.find((c) => typeof (c as { model?: unknown } | null)?.model === 'string') as { model: string } | undefined) : undefined;
  const model = [r.model, r.modelId, r.response?.modelId, chunk?.model].find((m): m is string => typeof m === 'string' && m !== '');
  return { ...(input === undefined ? {} : { input }), ...(output === undefined ? {} : { output }), ...(model === undefined ? {} : { model }) };
}

/** What a stored result saves each hit, by `prices` (0 without a price for its model or its usage). */
export function costOf(stored: StoredResult, prices: Prices | undefined): number {
  if (prices === undefined || stored.usage === undefined || stored.model === undefined) return 0;
  const price = Object.hasOwn(prices, stored.model) ? prices[stored.model] : undefined;
  if (price === undefined) return 0;
  return (stored.usage.input * price.input + stored.usage.output * price.output) / 1e6;
}

/**
 * The tokens a result cost, from the `usage` it carries, in the shapes the
 * common APIs report: OpenAI (`total_tokens`, or `prompt_tokens` +
 * `completion_tokens`), Anthropic and the OpenAI Responses API
 * (`input_tokens` + `output_tokens`), the AI SDK (`totalTokens`, or
 * `inputTokens` + `outputTokens`, each a number or `{ total }`).
 * `undefined` when none is found. Wrappers take `countTokens` for others.
 */
export function tokensOf(result: unknown): number | undefined {
  const usage = (result as { usage?: unknown } | null | undefined)?.usage;
  if (usage === null || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  return (
    count(u.total_tokens) ??
    sum(u.prompt_tokens, u.completion_tokens) ??
    sum(u.input_tokens, u.output_tokens) ??
    count(u.totalTokens) ??
    sum(u.inputTokens, u.outputTokens)
  );
}

function count(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  // AI SDK spec V3 nests its counts: `{ total, noCache, cacheRead, ... }`.
  if (value !== null && typeof value === 'object') return count((value as { total?: unknown }).total);
  return undefined;
}

function sum(a: unknown, b: unknown): number | undefined {
  const x = count(a);
  const y = count(b);
  return x === undefined && y === undefined ? undefined : (x ?? 0) + (y ?? 0);
}
