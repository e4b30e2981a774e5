export { cachedOpenAI, type CachedOpenAIOptions } from './cached-openai.js';
export { PARAMS_OUT_OF_KEY, type OpenAIEndpoint } from './request-params.js';
export { cacheInfo, cacheStats, explainKey, withCacheControl, type CacheControl, type CacheInfo, type KeyExplanation, type WrapperStats } from '../../src/llm/engine.js';
