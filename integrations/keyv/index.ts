export { KeyvCachekit, type KeyvCachekitCapabilities, type KeyvCachekitEntry, type KeyvCachekitOptions, type KeyvStorageMethod, type KeyvStorageMethodCapability } from './keyv-cachekit.js';
