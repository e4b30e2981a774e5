/**
 * The caching core (memory, Dragonfly/Redis, fallback and tiered caches behind one `Cache` contract, events, stats) and the LLM middleware (`requestKey`, `withCache`, `cachedRag`, `@Cached`, `memoizeTask`).
 *
 * @packageDocumentation
 * @module cachekit
 */
export type { BatchEntries, Cache, CacheEntry, CacheStats, EntryInfo, EntryOptions, GetOrSetOptions, ScopeOptions, SetOptions, SingleFlightMode, SingleFlightOptions, StatsOptions } from './core/types.js';
export { CACHE_EVENT_TYPES, type CacheEvent, type CacheEventListener, type CacheEvents, type CacheEventType, type CacheLogger } from './core/events.js';
export { CACHE_ERROR_TYPES, CacheError, DragonflyConnectionError, type CacheErrorOptions, type CacheErrorType } from './core/errors.js';
export { MAX_KEY_LENGTH, MAX_PATTERN_LENGTH, MAX_TAGS, MAX_TENANT_LENGTH, MAX_TTL_SECONDS } from './core/keys.js';
export { TAG_GUARD_MS } from './core/tags.js';
export { MAX_TRACKED_TENANTS } from './core/stats.js';
export {
  batchCacheGet,
  batchCacheSet,
  cacheClearPattern,
  cacheDelete,
  cacheGet,
  cacheGetOrSet,
  cacheInvalidateTags,
  cacheSet,
  getCacheStats,
  validateCache,
} from './core/functions.js';
export { createMemoryCache, type MemoryCacheOptions } from './backends/memory.js';
export { createDragonflyCache, type ClusterNodeAddress, type DragonflyCacheOptions } from './backends/dragonfly.js';
export { createFallbackCache, type CircuitState, type CircuitStats, type FallbackCache, type FallbackCacheOptions } from './backends/fallback.js';
export { createTieredCache, type TieredCache, type TieredCacheOptions, type TieredCacheStats, type TierLinkStats } from './backends/tiered.js';
export { requestKey, REQUEST_KEY_VERSION, type RequestKeyOptions } from './llm/request-key.js';
export { explainKey, type KeyExplanation } from './llm/explain-key.js';
export { withCacheControl, type CacheControl } from './llm/cache-control.js';
export type { ModelPrice, Prices, WrapperStats } from './llm/entry.js';
export { cacheInfo, type CacheInfo } from './llm/cache-info.js';
export { cacheStats } from './llm/wrapper-stats.js';
export { cacheEvents } from './llm/wrapper-events.js';
export { withCache, type WithCacheOptions } from './llm/with-cache.js';
export { IDENTITY_FIELDS } from './llm/identity.js';
export { cachedRag, type CachedRagOptions, type QueryFn, type RagAnswer, type RagObject, type RagTarget } from './llm/cached-rag.js';
export { Cached, type AsyncMethod, type CachedDecorator, type CachedOptions } from './llm/cached-decorator.js';
export { memoizeTask, taskMetadata, type MemoizeTaskOptions, type TaskMetadata } from './llm/memoize-task.js';
