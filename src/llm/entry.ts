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
  /** Total tokens upstream reported (`usage.total_tokens`), when it did. */
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
  /** Tokens not spent thanks to hits (from the stored `usage`). */
  tokensSaved: number;
  /** Upstream milliseconds not waited thanks to hits. */
  latencySavedMs: number;
}

export function emptyWrapperStats(): WrapperStats {
  return { hits: 0, misses: 0, bypasses: 0, errors: 0, tokensSaved: 0, latencySavedMs: 0 };
}

/** `usage.total_tokens` of an OpenAI-style result, if it has one. */
export function tokensOf(result: unknown): number | undefined {
  const usage = (result as { usage?: { total_tokens?: unknown } } | null)?.usage;
  return typeof usage?.total_tokens === 'number' ? usage.total_tokens : undefined;
}
