export type { BatchEntries, Cache, CacheStats, ScopeOptions, SetOptions } from './core/types.js';
export { CACHE_ERROR_TYPES, CacheError, DragonflyConnectionError, type CacheErrorType } from './core/errors.js';
export { MAX_KEY_LENGTH, MAX_TENANT_LENGTH, MAX_TTL_SECONDS } from './core/keys.js';
export {
  batchCacheGet,
  batchCacheSet,
  cacheClearPattern,
  cacheDelete,
  cacheGet,
  cacheSet,
  getCacheStats,
  validateCache,
} from './core/functions.js';
export { createMemoryCache, type MemoryCacheOptions } from './backends/memory.js';
export { createDragonflyCache, type DragonflyCacheOptions } from './backends/dragonfly.js';
