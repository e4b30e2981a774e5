// cachekit/ai-sdk: the Vercel AI SDK's language model middleware and a cached embedding model.
export { cacheMiddleware, cacheMiddlewareV3, type CacheMiddlewareOptions, type MiddlewareCall, type MiddlewareCallType } from './cache-middleware.js';
export { OPTIONS_OUT_OF_KEY, PROVIDER_OPTIONS_OUT_OF_KEY, type ModelIdentity } from './call-key.js';
export { cachedEmbeddingModel, type CachedEmbeddingModelOptions } from './embedding-model.js';
export type { CacheLanguageModelMiddleware, EmbeddingModelLike } from './spec-types.js';
export type { HitMark } from './stored-parts.js';
export { cacheInfo, cacheStats, explainKey, withCacheControl, type CacheControl, type CacheInfo, type KeyExplanation, type WrapperStats } from '../../src/llm/engine.js';
