export { cachedOpenAI, type CachedOpenAIOptions } from './cached-openai.js';
export { PARAMS_OUT_OF_KEY, type OpenAIEndpoint } from './request-params.js';
export { cacheStats } from '../../src/llm/wrapper-stats.js';
export { withCacheControl, type CacheControl } from '../../src/llm/cache-control.js';
export type { WrapperStats } from '../../src/llm/entry.js';
