import { afterEach, beforeEach, describe } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import type { Cache } from '../../src/core/types.js';
import { REDIS_URL, uniquePrefix } from './redis.js';
import { describeWith, type SuiteDeclaration } from './skips.js';

export interface BackendContext {
  /** A fresh, empty cache for the running test. */
  cache(): Cache;
}

/**
 * Declares `body` once per backend: memory always, Redis when one answers
 * (skipped and reported otherwise).
 * Each test gets its own cache; on Redis, its own keyPrefix.
 */
export function describeEachBackend(label: string, body: (ctx: BackendContext) => void): void {
  const variants: [string, SuiteDeclaration, () => Promise<Cache>][] = [
    ['memory', describe, async () => createMemoryCache()],
    ['redis', describeWith('redis'), () => createDragonflyCache({ url: REDIS_URL, keyPrefix: uniquePrefix(label.replace(/[^A-Za-z0-9_.-]+/g, '-')) })],
  ];
  for (const [name, declare, create] of variants) {
    declare(`${label} on ${name}`, () => {
      let current: Cache | undefined;
      beforeEach(async () => {
        current = await create();
      });
      afterEach(async () => {
        await current?.clear();
        await current?.close();
        current = undefined;
      });
      body({
        cache: () => {
          if (!current) throw new Error('no cache outside a test');
          return current;
        },
      });
    });
  }
}
