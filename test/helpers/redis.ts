import { inject } from 'vitest';

/**
 * The Redis for the suite: the throwaway `redis-server` test/global-setup.ts
 * started, or the one REDIS_URL named. When there is none, tests that need it
 * are declared with `describeWith('redis')` / `itWith('redis')`
 * (test/helpers/skips.ts) and skipped loudly; this is then a port nothing
 * listens on.
 */
export const REDIS_URL: string = inject('redisUrl') ?? 'redis://127.0.0.1:1';

/** Whether a Redis answers for the suite. Declare tests with `describeWith('redis')` rather than reading this. */
export const redisAvailable: boolean = inject('redisUrl') !== null;

let counter = 0;
/** A key prefix no other test (or test file, or run) uses, so files can run in parallel on one server. */
export function uniquePrefix(label: string): string {
  return `ckt-${label}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}
