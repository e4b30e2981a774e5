import type { CacheStats } from './types.js';

/** The counters a backend keeps itself; size and memory are measured when stats are read. */
export class Counters {
  hits = 0;
  misses = 0;
  sets = 0;
  deletes = 0;
  evictions = 0;
  expirations = 0;
  errors = 0;
  staleHits = 0;
}

/** How many tenants keep counters of their own: the most recently active ones. */
export const MAX_TRACKED_TENANTS = 1000;

/**
 * Counters for the whole cache plus one set for each of the most recently
 * active tenants, so a tenant's stats count only its own operations.
 * Untenanted calls touch one object only.
 *
 * Bounded: one set per tenant ever seen grew without end (52 MB of heap after
 * 200 000 one-off tenants). A tenant's counters count its operations since it
 * was last tracked: it is forgotten once `max` other tenants were active after
 * it, and counts from zero when it is active again. Reading a tenant's stats
 * is not activity and tracks nobody. The total always counts everything.
 */
export class CounterSet {
  readonly total = new Counters();
  // Map order is recency order: an active tenant moves to the end, the first is forgotten.
  private readonly byTenant = new Map<string, Counters>();
  // The tenant of the last call, already at the end: a run of calls for one tenant skips the move.
  private lastScope: string | undefined;
  private lastCounters: Counters | undefined;

  constructor(private readonly max = MAX_TRACKED_TENANTS) {}

  /** Tenants whose counters are kept now. */
  get tracked(): number {
    return this.byTenant.size;
  }

  /**
   * The counters of the tenant of `scope`, tracked from now on, or `undefined`
   * for untenanted scopes (`g:` on Dragonfly, empty in memory; a tenant's is longer).
   */
  private active(scope: string): Counters | undefined {
    if (scope.length <= 2) return undefined;
    if (scope === this.lastScope) return this.lastCounters;
    let counters = this.byTenant.get(scope);
    if (counters !== undefined) {
      this.byTenant.delete(scope);
    } else {
      counters = new Counters();
      if (this.byTenant.size >= this.max) this.byTenant.delete(this.byTenant.keys().next().value as string);
    }
    this.byTenant.set(scope, counters);
    this.lastScope = scope;
    this.lastCounters = counters;
    return counters;
  }

  /** For reading stats: the scope's counters, zeros for a tenant not tracked (which stays untracked). */
  forScope(scope: string | undefined): Counters {
    if (scope === undefined || scope.length <= 2) return this.total;
    return this.byTenant.get(scope) ?? new Counters();
  }

  hit(scope: string, n = 1): void {
    this.total.hits += n;
    const t = this.active(scope);
    if (t) t.hits += n;
  }

  miss(scope: string, n = 1): void {
    this.total.misses += n;
    const t = this.active(scope);
    if (t) t.misses += n;
  }

  add(scope: string, field: 'sets' | 'deletes' | 'errors' | 'evictions' | 'expirations' | 'staleHits', n = 1): void {
    this.total[field] += n;
    const t = this.active(scope);
    if (t) t[field] += n;
  }

  /** For what happens to a tenant's entries without it doing anything (evictions, expirations): never starts tracking it. */
  addIfTracked(scope: string, field: 'evictions' | 'expirations', n = 1): void {
    this.total[field] += n;
    const t = scope.length <= 2 ? undefined : this.byTenant.get(scope);
    if (t) t[field] += n;
  }
}

/** How `size` and `memoryMb` were obtained, for `toStats`. */
export interface Measured {
  size: number;
  bytes: number;
  method: 'counted' | 'estimated';
  /** Half-width of the 99% interval on `size`, in entries (0 when counted). */
  margin: number;
}

export function toStats(c: Counters, measured: Measured, listenerErrors: number, server?: { evictions: number; expirations: number }): CacheStats {
  const reads = c.hits + c.misses;
  return {
    hits: c.hits,
    misses: c.misses,
    hitRate: reads === 0 ? 0 : c.hits / reads,
    missRate: reads === 0 ? 0 : c.misses / reads,
    size: measured.size,
    memoryMb: measured.bytes / (1024 * 1024),
    sizeMethod: measured.method,
    sizeMargin: measured.margin,
    sets: c.sets,
    deletes: c.deletes,
    evictions: server ? server.evictions : c.evictions,
    expirations: server ? server.expirations : c.expirations,
    errors: c.errors,
    listenerErrors,
    staleHits: c.staleHits,
  };
}
