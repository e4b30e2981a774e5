/**
 * Prometheus text exposition of caches and wrappers (`prometheusMetrics`), no dependency.
 *
 * @packageDocumentation
 * @module cachekit/prometheus
 */
import { CacheError } from '../core/errors.js';
import { describeValue } from '../core/options.js';
import type { Cache, CacheStats } from '../core/types.js';
import type { WrapperStats } from '../llm/entry.js';
import { cacheStats } from '../llm/wrapper-stats.js';

/** The `Content-Type` of Prometheus' text exposition format, version 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What `prometheusMetrics` reads at each scrape, each under the name its series carry. */
export interface PrometheusSources {
  /** Caches by name (`{ sessions: cache }`): the `cache` label of their series. */
  caches?: Record<string, Cache>;
  /** Wrappers by name (`{ support: cachedOpenAI(...) }`): the `wrapper` label of their series. */
  wrappers?: Record<string, object>;
}

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: string[];
}

/**
 * The Prometheus text exposition of the caches' and wrappers' counters, read
 * when called (one `stats()` per cache, bounded in time on any keyspace: see
 * `CacheStats.sizeMethod`), for a `/metrics` handler. No dependency and no
 * registry: the caches keep their counters anyway, so a scrape reads them,
 * and the text can be concatenated with `prom-client`'s `register.metrics()`.
 * A cache whose `stats()` fails shows `cachekit_up 0` and no other series.
 * Latency histograms come through OpenTelemetry (`cachekit/opentelemetry`).
 *
 * Series: `cachekit_up`, `cachekit_requests_total{result="hit"|"miss"}`,
 * `cachekit_errors_total`, `cachekit_sets_total`, `cachekit_deletes_total`,
 * `cachekit_evictions_total`, `cachekit_expirations_total`,
 * `cachekit_entries` (with `cachekit_entries_margin`, its 99% margin when
 * estimated), `cachekit_memory_bytes`, `cachekit_listener_errors_total`, a
 * fallback cache's `cachekit_breaker_open` and `cachekit_breaker_opened_total`;
 * per wrapper `cachekit_llm_requests_total{result="hit"|"miss"|"bypass"}`,
 * `cachekit_llm_errors_total`, `cachekit_llm_writes_dropped_total`,
 * `cachekit_llm_tokens_saved_total`, `cachekit_llm_upstream_time_saved_seconds_total`.
 *
 * @example
 * import { PROMETHEUS_CONTENT_TYPE, prometheusMetrics } from 'cachekit/prometheus';
 * http.createServer(async (req, res) => {
 *   res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
 *   res.end(await prometheusMetrics({ caches: { sessions: cache }, wrappers: { support: gw } }));
 * }).listen(9464);
 */
export async function prometheusMetrics(sources: PrometheusSources): Promise<string> {
  const caches = entriesOf(sources?.caches, 'caches');
  const wrappers = entriesOf(sources?.wrappers, 'wrappers');
  const families = new Map<string, Family>();
  const put = (name: string, type: Family['type'], help: string, labels: Record<string, string>, value: number) => {
    let family = families.get(name);
    if (family === undefined) {
      family = { name, type, help, samples: [] };
      families.set(name, family);
    }
    const rendered = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    family.samples.push(`${name}{${rendered}} ${formatValue(value)}`);
  };

  const read = await Promise.all(caches.map(([, cache]) => (cache as Cache).stats().then((stats) => stats, () => undefined)));
  caches.forEach(([name, value], i) => {
    const cache = value as Cache;
    const stats = read[i] as CacheStats | undefined;
    const labels = { cache: name, backend: cache.kind };
    put('cachekit_up', 'gauge', 'Whether the last stats() of the cache answered (1) or failed (0).', labels, stats === undefined ? 0 : 1);
    if (stats === undefined) return;
    put('cachekit_requests_total', 'counter', 'Reads by result (per key for batches).', { ...labels, result: 'hit' }, stats.hits);
    put('cachekit_requests_total', 'counter', 'Reads by result (per key for batches).', { ...labels, result: 'miss' }, stats.misses);
    put('cachekit_errors_total', 'counter', 'Operations that failed, plus unreadable entries.', labels, stats.errors);
    put('cachekit_sets_total', 'counter', 'Entries stored.', labels, stats.sets);
    put('cachekit_deletes_total', 'counter', 'Entries removed by delete or clearPattern.', labels, stats.deletes);
    put('cachekit_evictions_total', 'counter', 'Entries evicted to make room (Dragonfly: server-wide).', labels, stats.evictions);
    put('cachekit_expirations_total', 'counter', 'Entries that reached their TTL (Dragonfly: server-wide).', labels, stats.expirations);
    put('cachekit_entries', 'gauge', 'Live entries (estimated on Dragonfly, see cachekit_entries_margin).', labels, stats.size);
    put('cachekit_entries_margin', 'gauge', 'Half-width of the 99% interval of cachekit_entries (0 when counted).', labels, stats.sizeMargin);
    put('cachekit_memory_bytes', 'gauge', 'Bytes held by the live entries.', labels, Math.round(stats.memoryMb * 1024 * 1024));
    put('cachekit_listener_errors_total', 'counter', 'Event listener calls that threw or rejected.', labels, stats.listenerErrors);
    const circuit = (cache as { circuit?: () => { state: string; opened: number } }).circuit;
    if (typeof circuit === 'function') {
      const state = circuit.call(cache);
      put('cachekit_breaker_open', 'gauge', 'Whether the fallback cache serves from its fallback (1: open or half-open).', labels, state.state === 'closed' ? 0 : 1);
      put('cachekit_breaker_opened_total', 'counter', 'Times the circuit opened.', labels, state.opened);
    }
  });

  for (const [name, wrapper] of wrappers) {
    let stats: WrapperStats;
    try {
      stats = cacheStats(wrapper as object);
    } catch {
      throw new CacheError(`prometheusMetrics: wrappers.${name} must be what a cachekit wrapper returned, got ${describeValue(wrapper)}`, 'validation');
    }
    const labels = { wrapper: name };
    const help = 'Wrapper calls by result.';
    put('cachekit_llm_requests_total', 'counter', help, { ...labels, result: 'hit' }, stats.hits);
    put('cachekit_llm_requests_total', 'counter', help, { ...labels, result: 'miss' }, stats.misses);
    put('cachekit_llm_requests_total', 'counter', help, { ...labels, result: 'bypass' }, stats.bypasses);
    put('cachekit_llm_errors_total', 'counter', 'Cache failures calls survived (failing open).', labels, stats.errors);
    put('cachekit_llm_writes_dropped_total', 'counter', 'Results not stored (refused, or too many writes in flight).', labels, stats.writesDropped);
    put('cachekit_llm_tokens_saved_total', 'counter', 'Tokens hits did not spend upstream (not billable usage).', labels, stats.tokensSaved);
    put('cachekit_llm_upstream_time_saved_seconds_total', 'counter', 'Upstream time hits did not wait.', labels, stats.latencySavedMs / 1000);
  }

  let text = '';
  for (const family of families.values()) {
    text += `# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n${family.samples.join('\n')}\n`;
  }
  return text;
}

function entriesOf(record: unknown, name: string): [string, unknown][] {
  if (record === undefined) return [];
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new CacheError(`prometheusMetrics: ${name} must be an object of names to ${name}, got ${describeValue(record)}`, 'validation');
  }
  const entries = Object.entries(record);
  if (name === 'caches') {
    for (const [key, cache] of entries) {
      if (cache === null || typeof cache !== 'object' || typeof (cache as Cache).stats !== 'function') {
        throw new CacheError(`prometheusMetrics: caches.${key} must be a cachekit Cache, got ${describeValue(cache)}`, 'validation');
      }
    }
  }
  return entries;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
