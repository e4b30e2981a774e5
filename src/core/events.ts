import { CacheError } from './errors.js';
import { describeValue } from './options.js';

/** Every event a cache or a wrapper can emit. */
export const CACHE_EVENT_TYPES = ['hit', 'miss', 'set', 'delete', 'evict', 'expire', 'error', 'bypass', 'stale', 'breaker-open', 'breaker-close', 'reconnect'] as const;

/**
 * - `hit` / `miss`: a read found a live entry / found nothing (caches: per
 *   `get`, or one of each per `getMany` with `count` keys; wrappers: per call).
 * - `set`: entries stored (caches: `set`, `add`, `setMany`; wrappers: a fresh
 *   result's background write landed).
 * - `delete`: entries removed by `delete`, `deleteIfEquals`, `clearPattern` or `clear`.
 * - `evict` / `expire`: entries removed to make room / that reached their TTL
 *   (memory: one event per entry, with its key; Dragonfly: the server's
 *   counters, read every 5 s while someone listens, one event with the `count`
 *   since the last reading and no key).
 * - `error`: an operation failed (caches: the rejection the caller got;
 *   wrappers: a cache failure the call survived by failing open).
 * - `bypass`: a wrapper call skipped the read (`bypass`, `refresh`).
 * - `stale`: an expired entry was served (defined for grace, which serves it;
 *   nothing emits it yet).
 * - `breaker-open` / `breaker-close`: a fallback cache's circuit opened (calls
 *   go to the fallback) / closed again (the primary answers); a tiered cache's
 *   breaker in front of its Redis tier opened (calls fail fast) / closed.
 * - `reconnect`: a Dragonfly connection came back after it was lost;
 *   `durationMs` is how long it was down.
 */
export type CacheEventType = (typeof CACHE_EVENT_TYPES)[number];

/** What every event carries; fields that do not apply are absent. */
export interface CacheEvent<E extends CacheEventType = CacheEventType> {
  /** Which event this is (see `CacheEventType`). */
  type: E;
  /** Who emitted it: a cache's `kind` (`'memory'`, `'dragonfly'`, `'fallback'`, `'tiered'`) or `'llm'` for a wrapper. */
  source: string;
  /**
   * What was running: a cache method (`'get'`, `'getMany'`, `'set'`, ...),
   * `'call'` or `'items'` for a wrapper, `'server'` for Dragonfly's counters,
   * `'connection'`, `'circuit'`.
   */
  operation: string;
  /** The key as the caller gave it (a wrapper's: its request key); absent for batches and server-side counts. */
  key?: string;
  /** Entries concerned: 1 for one key, the batch's hits (or misses, sets, deletes) otherwise. */
  count: number;
  /** The tenant of the operation, when it had one. */
  tenantId?: string;
  /** How long the operation took, in milliseconds (`reconnect`: how long the link was down). On one event per operation. */
  durationMs?: number;
  /** The failure (`error` events): a `CacheError`. */
  error?: unknown;
  /** Which cache of a composite answered: `'primary'` or `'fallback'` (fallback cache), `'l1'` or `'l2'` (tiered cache). */
  tier?: string;
  /** A wrapper's namespace (`withCache`, `cachedRag`, ...: the one its keys are made in). */
  namespace?: string;
  /** The model asked for, when a wrapper knows it (`cachedOpenAI`: the request's `model`). */
  model?: string;
  /** Tokens a wrapper hit did not spend upstream (from the stored entry). */
  tokensSaved?: number;
  /** Upstream milliseconds a wrapper hit did not wait (how long the stored answer took to produce). */
  latencySavedMs?: number;
}

/** A listener; its return value is ignored (a returned Promise is not awaited, its rejection is counted). */
export type CacheEventListener<E extends CacheEventType = CacheEventType> = (event: CacheEvent<E>) => unknown;

/** `on`/`off` of every cache and of `cacheEvents(wrapper)`. */
export interface CacheEvents {
  /**
   * Calls `listener` for every event of `type` from now on, after the
   * operation answered (listeners run on the next turn of the event loop,
   * never awaited: a
   * throwing, rejecting or slow-to-settle listener neither breaks nor delays
   * an operation; each failure is counted in `listenerErrors` of the stats).
   * No event object is built while nobody listens. An unknown `type` or a
   * non-function is a `validation` error. Returns the same object, for chaining.
   *
   * @example
   * cache.on('miss', (e) => console.log('miss', e.key, e.tenantId)).on('error', (e) => log.warn(e.error));
   */
  on<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this;
  /** Stops calling `listener` for `type`; a listener not registered is ignored. Returns the same object. */
  off<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this;
}

/**
 * A standard logger (console, pino, winston, bunyan: anything with these four
 * methods taking a message first). cachekit logs connection trouble only,
 * never keys or values: `warn` when a link drops or a breaker opens, `info`
 * when it is back, `debug` for each failed reconnection attempt in between.
 */
export interface CacheLogger {
  /** Not used by cachekit today; required so any standard logger fits as is. */
  error(message: string, ...rest: unknown[]): unknown;
  /** A link failed or dropped, a breaker opened. */
  warn(message: string, ...rest: unknown[]): unknown;
  /** A link came back, a breaker closed. */
  info(message: string, ...rest: unknown[]): unknown;
  /** Each failed reconnection attempt during an outage. */
  debug(message: string, ...rest: unknown[]): unknown;
}

/** Checks a `logger` option: `undefined`, or an object with the four methods. */
export function checkLogger(where: string, logger: unknown): CacheLogger | undefined {
  if (logger === undefined) return undefined;
  const l = logger as Partial<Record<keyof CacheLogger, unknown>> | null;
  const missing = l === null || typeof l !== 'object' ? ['error', 'warn', 'info', 'debug'] : (['error', 'warn', 'info', 'debug'] as const).filter((m) => typeof l[m] !== 'function');
  if (missing.length > 0) {
    throw new CacheError(`${where}: logger must have error, warn, info and debug methods (console or pino), got ${describeValue(logger)}${l !== null && typeof l === 'object' ? ` without ${missing.join(', ')}` : ''}`, 'validation');
  }
  return logger as CacheLogger;
}

/** Calls a logger without letting it break the caller (a logger is code we do not own). */
export function log(logger: CacheLogger | undefined, level: keyof CacheLogger, message: string): void {
  if (logger === undefined) return;
  try {
    logger[level](message);
  } catch {
    // A broken logger must not break a reconnection handler.
  }
}

type Lists = { [E in CacheEventType]?: CacheEventListener<E>[] };

// Kept from load time, so fake timers installed later (vi.useFakeTimers, sinon) never hold events back.
const later = globalThis.setImmediate;

/**
 * The event hub of one cache or wrapper. Hot paths test `listening` (one
 * field read) before building anything; events are queued and delivered in
 * one `setImmediate` per burst: after every microtask, so after the caller's
 * `await` of the emitting operation has resumed (a microtask would run
 * before it, and a slow listener would delay the answer).
 */
export class EventHub implements CacheEvents {
  /** Whether any listener is registered for any type. */
  listening = false;
  /** Listener calls that threw or returned a rejected Promise. */
  listenerErrors = 0;
  private lists: Lists = {};
  private queue: CacheEvent[] = [];
  private scheduled = false;
  /** Told when a type gains its first listener or loses its last (Dragonfly starts and stops its counter polling). */
  onChange: ((type: CacheEventType, listened: boolean) => void) | undefined;

  /** Whether anyone listens to `type`. */
  has(type: CacheEventType): boolean {
    return this.lists[type] !== undefined;
  }

  on<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    checkListener('on', type, listener);
    const list = this.lists[type] as CacheEventListener<E>[] | undefined;
    // Copied on write: a listener that adds or removes listeners never disturbs a delivery under way.
    (this.lists as Record<string, unknown>)[type] = list === undefined ? [listener] : [...list, listener];
    this.listening = true;
    if (list === undefined) this.onChange?.(type, true);
    return this;
  }

  off<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    checkListener('off', type, listener);
    const list = this.lists[type] as CacheEventListener<E>[] | undefined;
    if (list === undefined || !list.includes(listener)) return this;
    const rest = list.filter((l) => l !== listener);
    if (rest.length > 0) (this.lists as Record<string, unknown>)[type] = rest;
    else {
      delete this.lists[type];
      this.listening = CACHE_EVENT_TYPES.some((t) => this.lists[t] !== undefined);
      this.onChange?.(type, false);
    }
    return this;
  }

  /** Queues `event` for its listeners (none: dropped). Call only when `listening`. */
  emit(event: CacheEvent): void {
    if (this.lists[event.type] === undefined) return;
    this.queue.push(event);
    if (this.scheduled) return;
    this.scheduled = true;
    later(this.drain);
  }

  private readonly drain = (): void => {
    const queue = this.queue;
    this.queue = [];
    this.scheduled = false;
    for (const event of queue) this.dispatch(event);
  };

  /** Calls the listeners of `event.type` now (for hubs that forward another hub's deliveries). */
  dispatch(event: CacheEvent): void {
    const list = this.lists[event.type] as CacheEventListener[] | undefined;
    if (list === undefined) return;
    for (const listener of list) {
      try {
        const returned = listener(event);
        if (returned !== null && typeof returned === 'object' && typeof (returned as PromiseLike<unknown>).then === 'function') {
          (returned as PromiseLike<unknown>).then(undefined, this.failed);
        }
      } catch {
        this.listenerErrors++;
      }
    }
  }

  private readonly failed = (): void => {
    this.listenerErrors++;
  };
}

function checkListener(where: string, type: unknown, listener: unknown): void {
  if (!(CACHE_EVENT_TYPES as readonly unknown[]).includes(type)) {
    throw new CacheError(`${where}: unknown event ${describeValue(type)} (events: ${CACHE_EVENT_TYPES.join(', ')})`, 'validation');
  }
  if (typeof listener !== 'function') throw new CacheError(`${where}: listener must be a function, got ${describeValue(listener)}`, 'validation');
}
