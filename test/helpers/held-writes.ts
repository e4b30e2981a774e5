import { FLIGHT_LOCKS, locksOf, type FlightLocks } from '../../src/core/shared-flight.js';
import type { Cache } from '../../src/core/types.js';

/**
 * A real cache whose writes (`set`, `setMany`) wait until `release()`: the
 * state of a slow server between a miss's answer and its write landing. A
 * fault helper, like `createFailingCache`: reads and everything else are the
 * real cache's own.
 */
export function holdWrites(cache: Cache): { cache: Cache; pending: () => number; release: () => void } {
  let waiting: (() => void)[] = [];
  let open = false;
  const later = <T>(write: () => Promise<T>): Promise<T> => {
    if (open) return write();
    return new Promise<void>((resolve) => waiting.push(resolve)).then(write);
  };
  const held = new Proxy(cache, {
    get(target, prop) {
      if (prop === 'set') return (...args: Parameters<Cache['set']>) => later(() => target.set(...args));
      if (prop === 'setMany') return (...args: Parameters<Cache['setMany']>) => later(() => target.setMany(...args));
      // A shared flight's write goes through the backend's locks: held the same way.
      if (prop === FLIGHT_LOCKS) {
        const locks = locksOf(target);
        if (locks === undefined) return undefined;
        const heldLocks: FlightLocks = {
          acquire: (...args) => locks.acquire(...args),
          beat: (...args) => locks.beat(...args),
          release: (...args) => locks.release(...args),
          listen: (...args) => locks.listen(...args),
          commit: (...args) => later(() => locks.commit(...args)),
        };
        return () => heldLocks;
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    cache: held,
    pending: () => waiting.length,
    release: () => {
      open = true;
      const ready = waiting;
      waiting = [];
      for (const go of ready) go();
    },
  };
}
