import { Redis } from 'ioredis';

/** Where the shared Redis for the suite lives. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function probe(): Promise<boolean> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Whether the Redis part of the suite runs. Without a server it is skipped
 * loudly, except on CI (`CI=true`), where a missing Redis fails the run.
 */
export const redisAvailable: boolean = await probe();

if (!redisAvailable) {
  const message = `No Redis answers at ${REDIS_URL}: the Redis tests are SKIPPED. Start one with: redis-server --daemonize yes --port 6379 --save "" --appendonly no`;
  if (process.env.CI === 'true') throw new Error(`${message} (CI=true: failing instead of skipping)`);
  console.warn(`\n*** ${message} ***\n`);
}

let counter = 0;
/** A key prefix no other test (or test file, or run) uses, so files can run in parallel on one server. */
export function uniquePrefix(label: string): string {
  return `ckt-${label}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}
