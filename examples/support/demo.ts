import { type Cache, createDragonflyCache, createMemoryCache } from '../../src/index.js';

/** The memory cache, or Dragonfly when REDIS_URL is set; emptied so every run starts with a miss. */
export async function openCache(keyPrefix: string): Promise<Cache> {
  const url = process.env.REDIS_URL;
  const cache = url ? await createDragonflyCache({ url, keyPrefix }) : createMemoryCache();
  await cache.clear();
  return cache;
}

/** Runs one call and prints its label and latency. */
export async function timed<T>(label: string, call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await call();
  console.log(`${label.padEnd(52)} ${(performance.now() - started).toFixed(1).padStart(8)} ms`);
  return result;
}
