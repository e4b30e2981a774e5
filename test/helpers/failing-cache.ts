import { DragonflyConnectionError } from '../../src/core/errors.js';
import { getOrSet } from '../../src/core/get-or-set.js';
import type { Cache } from '../../src/core/types.js';

/**
 * A cache in the state of a Dragonfly that went away: every operation rejects
 * with the connection error the real backend reports, `validate` answers false.
 * A fault helper for fail-open tests, not a stand-in for a backend.
 */
export function createFailingCache(): Cache {
  const down = () => Promise.reject(new DragonflyConnectionError('Dragonfly at 127.0.0.1:1 is unreachable'));
  const cache: Cache = {
    kind: 'failing',
    on: () => cache,
    off: () => cache,
    inspect: down,
    // The read-through every backend runs, over these failing reads and writes.
    getOrSet: (key, factory, options) => getOrSet(cache, { staleHit() {}, unstorable() {} }, key, factory, options),
    readEntry: down,
    writeEntry: down,
    invalidateTags: down,
    get: down,
    set: down,
    add: down,
    delete: down,
    deleteIfEquals: down,
    clearPattern: down,
    keys: () => ({ [Symbol.asyncIterator]: () => ({ next: down }) }),
    getMany: down,
    setMany: down,
    stats: down,
    validate: () => Promise.resolve(false),
    clear: down,
    close: () => Promise.resolve(),
  };
  return cache;
}
