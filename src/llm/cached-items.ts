import { backgroundWrite, emitCallEvent, failOpen, isStored, setEvent, writeOptions, type CallPlan, type CallSite } from './cached-call.js';
import type { StoredResult } from './entry.js';
import { createHash } from 'node:crypto';
import { locksOf, sharedFlight } from '../core/shared-flight.js';
import { copiesByEncoding, type Copies, type Hold } from '../core/single-flight.js';

/** What one upstream call for the missing items answered. */
export interface ItemsAnswer<V, A> {
  /** The value of each item sent, in the order sent; `undefined` for one that must not be stored. */
  values: (V | undefined)[];
  /** Upstream's whole answer, for the caller (usage, headers, metadata). */
  answer: A;
  /** The tokens the call cost, split over its items by `weights`. Default 0. */
  tokens?: number | undefined;
}

/** One batch call (embeddings) cached item by item. */
export interface ItemsCall<V, A> {
  /** One key per item of the call, in the caller's order. */
  keys: readonly string[];
  /** Sends the items at `missing` (indexes into `keys`, ascending) upstream in one call. */
  upstream: (missing: number[]) => Promise<ItemsAnswer<V, A>>;
  /** Whether a stored value can answer this call (the right encoding, say); otherwise the item is a miss. Default: any. */
  usable?: ((value: unknown) => boolean) | undefined;
  /** How much of the batch's tokens each sent item gets (its length, say), for `tokensSaved`. Default: equal shares. */
  weights?: ((missing: number[]) => number[]) | undefined;
  /** Copies of an upstream answer for callers who join it. Default: through the cache's encoding. */
  copies?: Copies<ItemsAnswer<V, A>> | undefined;
  /** `false` when the call must neither join nor be joined (the caller's own abort signal). Default `true`. */
  share?: boolean | undefined;
}

/** Every item's value in the caller's order, which came from the cache, and upstream's answer when any item went there. */
export interface ItemsResult<V, A> {
  values: (V | undefined)[];
  cached: boolean[];
  answer?: A | undefined;
}

/**
 * Reads every item's key in one `getMany`, sends only the missing items
 * upstream in one call (identical concurrent batches of misses share it),
 * stores each fresh value under its own key in the background, and answers
 * every item in the caller's order. A full hit counts one hit (tokens of
 * every item saved, the longest upstream time saved); otherwise one miss,
 * with the cached items' tokens saved (litellm#39057 counted them twice).
 */
export async function cachedItems<V, A>(site: CallSite<unknown>, plan: CallPlan, call: ItemsCall<V, A>): Promise<ItemsResult<V, A>> {
  const { keys } = call;
  const skipRead = plan.control?.bypass === true || plan.control?.refresh === true;
  if (skipRead) {
    site.stats.bypasses++;
    if (site.events.listening) emitCallEvent(site, plan, 'bypass', undefined, { operation: 'items', count: keys.length });
  }
  const found = skipRead ? new Map<string, StoredResult<V>>() : await readItems<V>(site, plan, keys, call.usable);

  const missing: number[] = [];
  for (let i = 0; i < keys.length; i++) if (!found.has(keys[i] as string)) missing.push(i);
  const fromStore = keys.map((key) => found.get(key));
  let saved = 0;
  for (const entry of found.values()) saved += entry.tokens ?? 0;
  if (missing.length === 0) {
    site.stats.hits++;
    site.stats.tokensSaved += saved;
    const longest = Math.max(...[...found.values()].map((entry) => entry.durationMs));
    site.stats.latencySavedMs += longest;
    if (site.events.listening) emitCallEvent(site, plan, 'hit', undefined, { operation: 'items', count: keys.length, tokensSaved: saved, latencySavedMs: longest });
    return { values: fromStore.map((entry) => (entry as StoredResult<V>).value), cached: keys.map(() => true) };
  }
  if (!skipRead) site.stats.misses++;
  site.stats.tokensSaved += saved;
  if (!skipRead && site.events.listening) {
    // One call, partly answered: its cached items are hits (with what they saved), the rest misses.
    if (found.size > 0) emitCallEvent(site, plan, 'hit', undefined, { operation: 'items', count: found.size, tokensSaved: saved, latencySavedMs: 0 });
    emitCallEvent(site, plan, 'miss', undefined, { operation: 'items', count: missing.length });
  }

  const fetch = async (hold?: Hold<ItemsAnswer<V, A>>): Promise<ItemsAnswer<V, A>> => {
    const started = performance.now();
    const fresh = await call.upstream(missing);
    const durationMs = performance.now() - started;
    const write = storeItems(site, plan, missing.map((i) => keys[i] as string), fresh, call.weights?.(missing), durationMs);
    // Joiners of a held batch count a hit saving its tokens and time.
    if (write && hold) hold(fresh, { write, stored: { value: fresh, storedAt: Date.now(), durationMs, tokens: fresh.tokens ?? 0 } });
    return fresh;
  };
  const flight = `items\u0000${missing.map((i) => keys[i]).join('\u0000')}`;
  const locks = site.singleFlight !== undefined && call.share !== false && !skipRead ? locksOf(site.cache) : undefined;
  let fresh: ItemsAnswer<V, A>;
  if (locks === undefined) {
    fresh =
      call.share === false
        ? await fetch()
        : await (site.flights.join<ItemsAnswer<V, A>>(plan.tenantId, flight, plan.control?.refresh === true)?.answer ??
            site.flights.run(plan.tenantId, flight, fetch, call.copies ?? copiesByEncoding));
  } else {
    // Across processes the batch is one flight, locked under a digest of its keys. Its items are
    // written by one setMany (keys of many slots), so unlike a single entry a holder that lost its
    // lock may still store them: the same input's vectors, never another's.
    const missingKeys = missing.map((i) => keys[i] as string);
    const shared = (hold: Hold<Batch<V, A>>): Promise<Batch<V, A>> =>
      sharedFlight<Batch<V, A>>(locks, site.singleFlight!, {
        key: `items:${createHash('sha256').update(flight).digest('hex')}`,
        tenantId: plan.tenantId,
        read: async () => {
          const stored = await readItems<V>(site, plan, missingKeys, call.usable, true);
          return stored.size === missingKeys.length ? { stored: missingKeys.map((key) => (stored.get(key) as StoredResult<V>).value) } : undefined;
        },
        // A batch's items are written by setMany, never carried in the message.
        served: () => undefined,
        produce: async () => {
          let write: Promise<unknown> | undefined;
          const answer = await fetch((value, held) => {
            write = held.write;
            hold({ fresh: value }, held);
          });
          return { answer: { fresh: answer }, write };
        },
        failed: (error) => {
          try {
            failOpen(site.stats, error);
          } catch {
            // The flight fails open whatever the error.
          }
        },
      });
    const copies = call.copies ?? copiesByEncoding;
    const batch = await (site.flights.join<Batch<V, A>>(plan.tenantId, flight)?.answer ??
      site.flights.run<Batch<V, A>>(plan.tenantId, flight, shared, (b) => ('fresh' in b ? wrapCopies(copies(b.fresh)) : copiesByEncoding(b))));
    if ('stored' in batch) {
      // Another process's flight stored them: answered as cached items.
      const stored = batch.stored;
      let next = 0;
      const values = fromStore.map((entry) => (entry ? entry.value : stored[next++]));
      return { values, cached: keys.map(() => true) };
    }
    fresh = batch.fresh;
  }
  if (fresh.values.length !== missing.length) throw new Error(`upstream answered ${fresh.values.length} items for the ${missing.length} sent`);
  const values: (V | undefined)[] = [];
  let next = 0;
  for (let i = 0; i < keys.length; i++) {
    const entry = fromStore[i];
    values.push(entry ? entry.value : fresh.values[next++]);
  }
  return { values, cached: fromStore.map((entry) => entry !== undefined), answer: fresh.answer };
}

/** A batch's outcome inside one process: upstream's answer, or the values another process's flight stored. */
type Batch<V, A> = { fresh: ItemsAnswer<V, A> } | { stored: V[] };

function wrapCopies<V, A>(copy: (held: boolean) => ItemsAnswer<V, A>): (held: boolean) => Batch<V, A> {
  return (held) => ({ fresh: copy(held) });
}

async function readItems<V>(
  site: CallSite<unknown>,
  plan: CallPlan,
  keys: readonly string[],
  usable: ((value: unknown) => boolean) | undefined,
  rethrow = false,
): Promise<Map<string, StoredResult<V>>> {
  const found = new Map<string, StoredResult<V>>();
  let stored: Map<string, unknown>;
  try {
    stored = await site.cache.getMany(keys, plan.tenantId === undefined ? undefined : { tenantId: plan.tenantId });
  } catch (error) {
    if (rethrow) throw error;
    failOpen(site.stats, error);
    return found;
  }
  for (const [key, entry] of stored) {
    if (isStored(entry) && (usable === undefined || usable(entry.value))) found.set(key, entry as StoredResult<V>);
  }
  return found;
}

function storeItems<V, A>(
  site: CallSite<unknown>,
  plan: CallPlan,
  keys: string[],
  fresh: ItemsAnswer<V, A>,
  weights: number[] | undefined,
  durationMs: number,
): Promise<void> | undefined {
  if (plan.control?.bypass || plan.control?.noStore) return undefined;
  if (site.shouldCache && !site.shouldCache(fresh.answer)) return undefined;
  const shares = tokenShares(weights ?? keys.map(() => 1), fresh.tokens ?? 0);
  const storedAt = Date.now();
  const entries: [string, StoredResult<V>][] = [];
  keys.forEach((key, j) => {
    const value = fresh.values[j];
    if (value !== undefined) entries.push([key, { value, storedAt, durationMs, tokens: shares[j] as number }]);
  });
  if (entries.length === 0) return undefined;
  return backgroundWrite(site.cache, site.stats, (cache, options) => cache.setMany(entries, options), writeOptions(plan), site.events.listening ? setEvent(site, plan, undefined, entries.length) : undefined);
}

/**
 * Splits a batch's tokens over its items in proportion to `weights`.
 * Upstream reports usage per batch only, so this is an estimate, but the
 * shares add up to the batch's total: tokens saved are never counted twice.
 */
function tokenShares(weights: number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0) || 1;
  const shares: number[] = [];
  let before = 0;
  let cumulative = 0;
  for (const weight of weights) {
    cumulative += weight;
    const upTo = Math.round((total * cumulative) / sum);
    shares.push(upTo - before);
    before = upTo;
  }
  return shares;
}
