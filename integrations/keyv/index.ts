export { KeyvCachekit, type KeyvCachekitCapabilities, type KeyvCachekitEntry, type KeyvCachekitOptions } from './keyv-cachekit.js';
