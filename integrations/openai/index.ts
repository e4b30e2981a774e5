/**
 * `cachedOpenAI`: the official `openai` SDK client, cached (chat, completions, responses, embeddings item by item, streams replayed).
 *
 * @packageDocumentation
 * @module cachekit/openai
 */
export { cachedOpenAI, type CachedOpenAIOptions } from './cached-openai.js';
export { PARAMS_OUT_OF_KEY, type OpenAIEndpoint } from './request-params.js';
export { cacheEvents, cacheInfo, cacheStats, explainKey, withCacheControl, type CacheControl, type CacheInfo, type KeyExplanation, type WrapperStats } from '../../src/llm/engine.js';
