import { DragonflyConnectionError } from '../../src/core/errors.js';
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
