/**
 * OpenTelemetry metrics of caches and wrappers (`recordMetrics`), through `@opentelemetry/api`.
 *
 * @packageDocumentation
 * @module cachekit/opentelemetry
 */
import { metrics, type Attributes, type Meter } from '@opentelemetry/api';
import { CacheError } from '../core/errors.js';
import type { CacheEvent, CacheEventListener, CacheEvents, CacheEventType } from '../core/events.js';
import { checkOptions, describeValue, optionNames } from '../core/options.js';
import { cacheEvents } from '../llm/wrapper-events.js';

/** Options of `recordMetrics`. */
export interface OpenTelemetryMetricsOptions {
  /**
   * The meter instruments are created on. Default:
   * `metrics.getMeter('cachekit')` of `@opentelemetry/api`, that is the
   * global MeterProvider your SDK setup registered (none: nothing is recorded).
   */
  meter?: Meter;
  /**
   * `cachekit.name` on every data point, to tell caches or wrappers apart
   * (`'sessions'`, `'support-bot'`). A short fixed string: never a key, a
   * user or a tenant. Default: no such attribute.
   */
  name?: string;
  /** `gen_ai.provider.name` on a wrapper's data points (`'openai'`, `'anthropic'`, ...). Default: none. */
  provider?: string;
  /** `gen_ai.operation.name` on a wrapper's data points (`'chat'`, `'embeddings'`, ...). Default: none. */
  operation?: string;
  /**
   * Adds `cachekit.tenant` (the tenant id) to every data point. Default
   * `false`: each tenant multiplies every series, and an unbounded number of
   * tenants makes the metrics backend pay for it. Turn it on for a handful.
   */
  tenantAttribute?: boolean;
}

const OPTIONS = optionNames<OpenTelemetryMetricsOptions>({ meter: true, name: true, provider: true, operation: true, tenantAttribute: true });
const WHERE = 'recordMetrics';
const RESULTS: readonly CacheEventType[] = ['hit', 'miss', 'stale', 'bypass', 'error'];
const RECORDED: readonly CacheEventType[] = [...RESULTS, 'set', 'delete', 'evict', 'expire'];

/**
 * Records a cache's or a wrapper's events as OpenTelemetry metrics, and
 * returns a function that stops recording. Nothing is recorded on an
 * operation's path: the instruments are fed from the events, which are
 * delivered after each operation answered.
 *
 * | instrument | kind, unit | what |
 * | --- | --- | --- |
 * | `cachekit.requests` | counter, `{request}` | reads by `cachekit.result`: `hit`, `miss`, `stale`, `bypass`, `error` (an error of any operation counts) |
 * | `cachekit.evictions` | counter, `{entry}` | entries evicted to make room |
 * | `cachekit.expirations` | counter, `{entry}` | entries that reached their TTL |
 * | `cachekit.operation.duration` | histogram, `s` | each cache operation's time, by `cachekit.operation` and `cachekit.result` |
 * | `cachekit.llm.tokens_saved` | counter, `{token}` | tokens a wrapper hit did not spend upstream |
 * | `cachekit.llm.upstream_time_saved` | counter, `s` | upstream time a wrapper hit did not wait |
 *
 * Attributes: `cachekit.backend` (`memory`, `dragonfly`, `llm`),
 * `cachekit.operation`, `cachekit.tier` (which cache of a fallback cache
 * answered), `cachekit.namespace` (a wrapper's), `cachekit.name`, and on a
 * wrapper's points the GenAI ones: `gen_ai.request.model` (when the wrapper
 * knows it), `gen_ai.provider.name`, `gen_ai.operation.name`. Never a key;
 * the tenant only with `tenantAttribute`. A hit is never recorded as
 * `gen_ai.client.token.usage`: that counts billable tokens, which a hit did not use.
 *
 * @param target A cache (`createMemoryCache`, `createDragonflyCache`, ...) or what a wrapper returned (`withCache`, `cachedOpenAI`, ...).
 * @example
 * import { recordMetrics } from 'cachekit/opentelemetry';
 * const stop = recordMetrics(cache, { name: 'sessions' });
 * recordMetrics(cachedOpenAI(client, { cache }), { provider: 'openai', operation: 'chat' });
 */
export function recordMetrics(target: object, options: OpenTelemetryMetricsOptions = {}): () => void {
  checkOptions(WHERE, options, OPTIONS);
  for (const name of ['name', 'provider', 'operation'] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== 'string' || value === '')) throw new CacheError(`${WHERE}: ${name} must be a non-empty string, got ${describeValue(value)}`, 'validation');
  }
  if (options.tenantAttribute !== undefined && typeof options.tenantAttribute !== 'boolean') {
    throw new CacheError(`${WHERE}: tenantAttribute must be true or false, got ${describeValue(options.tenantAttribute)}`, 'validation');
  }
  const meter = options.meter ?? metrics.getMeter('cachekit');
  if (typeof meter?.createCounter !== 'function') throw new CacheError(`${WHERE}: meter must be an OpenTelemetry Meter, got ${describeValue(meter)}`, 'validation');
  const events = eventsOfTarget(target);

  const requests = meter.createCounter('cachekit.requests', { unit: '{request}', description: 'Cache reads by result (hit, miss, stale, bypass, error).' });
  const evictions = meter.createCounter('cachekit.evictions', { unit: '{entry}', description: 'Entries evicted to make room.' });
  const expirations = meter.createCounter('cachekit.expirations', { unit: '{entry}', description: 'Entries that reached their TTL.' });
  const duration = meter.createHistogram('cachekit.operation.duration', { unit: 's', description: 'Time of each cache operation.' });
  const tokensSaved = meter.createCounter('cachekit.llm.tokens_saved', { unit: '{token}', description: 'Tokens cache hits did not spend upstream (not billable usage).' });
  const timeSaved = meter.createCounter('cachekit.llm.upstream_time_saved', { unit: 's', description: 'Upstream time cache hits did not wait.' });

  const fixed: Attributes = {};
  if (options.name !== undefined) fixed['cachekit.name'] = options.name;
  const genAi: Attributes = {};
  if (options.provider !== undefined) genAi['gen_ai.provider.name'] = options.provider;
  if (options.operation !== undefined) genAi['gen_ai.operation.name'] = options.operation;

  const attributesOf = (event: CacheEvent): Attributes => {
    const a: Attributes = { ...fixed, 'cachekit.backend': event.source, 'cachekit.operation': event.operation };
    if (event.tier !== undefined) a['cachekit.tier'] = event.tier;
    if (event.namespace !== undefined) a['cachekit.namespace'] = event.namespace;
    if (options.tenantAttribute === true && event.tenantId !== undefined) a['cachekit.tenant'] = event.tenantId;
    if (event.source === 'llm') {
      Object.assign(a, genAi);
      if (event.model !== undefined) a['gen_ai.request.model'] = event.model;
    }
    return a;
  };

  const listener: CacheEventListener = (event) => {
    const attributes = attributesOf(event);
    if (RESULTS.includes(event.type)) requests.add(event.count, { ...attributes, 'cachekit.result': event.type });
    else if (event.type === 'evict') evictions.add(event.count, attributes);
    else if (event.type === 'expire') expirations.add(event.count, attributes);
    if (event.durationMs !== undefined) duration.record(event.durationMs / 1000, { ...attributes, 'cachekit.result': event.type });
    if (event.tokensSaved !== undefined && event.tokensSaved > 0) tokensSaved.add(event.tokensSaved, attributes);
    if (event.latencySavedMs !== undefined && event.latencySavedMs > 0) timeSaved.add(event.latencySavedMs / 1000, attributes);
  };
  for (const type of RECORDED) events.on(type, listener);
  return () => {
    for (const type of RECORDED) events.off(type, listener);
  };
}

/** A cache's own events, or a wrapper's (`cacheEvents`). */
function eventsOfTarget(target: unknown): CacheEvents {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) {
    throw new CacheError(`${WHERE}: target must be a cachekit cache or wrapper, got ${describeValue(target)}`, 'validation');
  }
  const cache = target as Partial<CacheEvents> & { kind?: unknown; get?: unknown };
  if (typeof cache.kind === 'string' && typeof cache.get === 'function' && typeof cache.on === 'function') return cache as CacheEvents;
  try {
    return cacheEvents(target);
  } catch {
    throw new CacheError(`${WHERE}: target must be a cachekit cache or what a cachekit wrapper returned, got ${describeValue(target)}`, 'validation');
  }
}
