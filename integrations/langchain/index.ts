export { cachedChatModel, type CachedChatModelOptions, type ChatCallType } from './chat-model.js';
export type { HitMark } from './stored.js';
export { cachedEmbeddings, type CachedEmbeddingsOptions } from './embeddings.js';
export { CHAT_FIELDS_OUT_OF_KEY, type ChatMode } from './key-input.js';
export { LangChainCache, type LangChainCacheOptions } from './langchain-cache.js';
export { cacheInfo, cacheStats, explainKey, withCacheControl, type CacheControl, type CacheInfo, type KeyExplanation, type WrapperStats } from '../../src/llm/engine.js';
