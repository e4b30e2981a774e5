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
}

/**
 * Counters for the whole cache plus one set per tenant seen, so a tenant's
 * stats count only its own operations. Untenanted calls touch one object only.
 */
export class CounterSet {
  readonly total = new Counters();
  private readonly byTenant = new Map<string, Counters>();

  /**
   * `scope` is the backend's raw-key scope prefix. Untenanted scopes (`g:` on
   * Dragonfly, empty in memory) share the total only; a tenant's is longer.
   */
  tenant(scope: string): Counters | undefined {
    if (scope.length <= 2) return undefined;
    let counters = this.byTenant.get(scope);
    if (!counters) this.byTenant.set(scope, (counters = new Counters()));
    return counters;
  }

  forScope(scope: string | undefined): Counters {
    return scope === undefined ? this.total : (this.tenant(scope) ?? this.total);
  }

  hit(scope: string, n = 1): void {
    this.total.hits += n;
    const t = this.tenant(scope);
    if (t) t.hits += n;
  }

  miss(scope: string, n = 1): void {
    this.total.misses += n;
    const t = this.tenant(scope);
    if (t) t.misses += n;
  }

  add(scope: string, field: 'sets' | 'deletes' | 'errors' | 'evictions' | 'expirations', n = 1): void {
    this.total[field] += n;
    const t = this.tenant(scope);
    if (t) t[field] += n;
  }
}

export function toStats(c: Counters, size: number, bytes: number, server?: { evictions: number; expirations: number }): CacheStats {
  const reads = c.hits + c.misses;
  return {
    hits: c.hits,
    misses: c.misses,
    hitRate: reads === 0 ? 0 : c.hits / reads,
    missRate: reads === 0 ? 0 : c.misses / reads,
    size,
    memoryMb: bytes / (1024 * 1024),
    sets: c.sets,
    deletes: c.deletes,
    evictions: server ? server.evictions : c.evictions,
    expirations: server ? server.expirations : c.expirations,
    errors: c.errors,
  };
}
