/**
 * The cached-call engine as an integration sees it: the one surface every
 * file under integrations/ imports from (with the core's errors and types).
 * An integration owns its framework's shapes only: how a call becomes key
 * input, how an answer becomes a stored value and back, how stream parts map
 * onto recorded chunks. Reading, single-flight, storing in the background,
 * failing open, grace (stale answers, backoff, soft timeouts), tags, cost,
 * `cacheInfo` marks, shared live streams (`startStream`/`joinStream`),
 * per-call controls, stats and key explanations are here, once.
 * If an integration needs more than this, add it here, not a deeper import.
 */
export {
  answerStored,
  cachedCall,
  callerFreshness,
  countBypass,
  createCallSite,
  emitCallEvent,
  failOpen,
  gracedCall,
  planCall,
  readCached,
  readThen,
  storeResult,
  type CachedCall,
  type CallPlan,
  type CallSite,
  type Miss,
} from './cached-call.js';
export { cachedItems, type ItemsAnswer, type ItemsCall, type ItemsResult } from './cached-items.js';
export { currentCacheControl, withCacheControl, type CacheControl } from './cache-control.js';
export { tokensOf, type ModelPrice, type Prices, type StoredResult, type Usage, type WrapperStats } from './entry.js';
export { explainKey, registerKeyRecipe, type KeyExplanation, type KeyRecipe, type RecipeResult } from './explain-key.js';
export { checkBoolean, checkFunction, checkSiteOptions, FRESHNESS_OPTIONS, optionNames, siteFreshness, type FreshnessOptions } from './options.js';
export { namespacedKey, requestKey } from './request-key.js';
export { copiesByEncoding, type Copies } from '../core/single-flight.js';
export { isRecording, joinStream, replayChunks, startStream, type RecordedStream, type SharedStream, type StreamCall, type StreamShape, type UpstreamStream } from './stream-record.js';
export { cacheInfo, markServed, type CacheInfo } from './cache-info.js';
export { cacheStats, registerStats } from './wrapper-stats.js';
export { cacheEvents } from './wrapper-events.js';
export type { CacheEvent, CacheEventListener, CacheEvents, CacheEventType } from '../core/events.js';
