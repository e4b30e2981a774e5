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
}

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
}

export function emptyWrapperStats(): WrapperStats {
  return { hits: 0, misses: 0, bypasses: 0, errors: 0, writesDropped: 0, tokensSaved: 0, latencySavedMs: 0, listenerErrors: 0 };
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
