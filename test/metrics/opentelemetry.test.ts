import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { createFallbackCache } from '../../src/backends/fallback.js';
import { createMemoryCache } from '../../src/backends/memory.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { withCache } from '../../src/llm/with-cache.js';
import { recordMetrics } from '../../src/metrics/opentelemetry.js';
import { createFailingCache } from '../helpers/failing-cache.js';

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A MeterProvider read on demand through the SDK's in-memory exporter. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  return {
    meter: provider.getMeter('test'),
    async collect(): Promise<Map<string, MetricData>> {
      await settle();
      const { resourceMetrics } = await reader.collect();
      return new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
    },
  };
}

function points(metric: MetricData | undefined): { attributes: Record<string, unknown>; value: unknown }[] {
  return (metric?.dataPoints ?? []).map((p) => ({ attributes: p.attributes, value: p.value }));
}

class Gateway {
  model = 'gpt-4o-mini';
  async generate(prompt: string) {
    return { text: `about ${prompt}`, usage: { total_tokens: 30 } };
  }
}

describe('recordMetrics (OpenTelemetry, in-memory metric reader)', () => {
  it("counts a cache's reads by result, evictions, and records operation latency in seconds, without keys or tenants", async () => {
    const { meter, collect } = sdk();
    const cache = createMemoryCache({ maxSize: 1 });
    recordMetrics(cache, { meter, name: 'sessions' });
    await cache.set('user:1', 1, { tenantId: 'acme' });
    await cache.get('user:1', { tenantId: 'acme' });
    await cache.get('user:2');
    await cache.set('user:3', 3);
    const m = await collect();
    expect(points(m.get('cachekit.requests'))).toEqual(
      expect.arrayContaining([
        { attributes: { 'cachekit.name': 'sessions', 'cachekit.backend': 'memory', 'cachekit.operation': 'get', 'cachekit.result': 'hit' }, value: 1 },
        { attributes: { 'cachekit.name': 'sessions', 'cachekit.backend': 'memory', 'cachekit.operation': 'get', 'cachekit.result': 'miss' }, value: 1 },
      ]),
    );
    expect(points(m.get('cachekit.evictions'))).toEqual([{ attributes: { 'cachekit.name': 'sessions', 'cachekit.backend': 'memory', 'cachekit.operation': 'server' }, value: 1 }]);
    const duration = m.get('cachekit.operation.duration');
    expect(duration?.descriptor.unit).toBe('s');
    expect(duration?.dataPoints.length).toBeGreaterThan(0);
    const everything = JSON.stringify([...m.values()].map((x) => x.dataPoints.map((p) => p.attributes)));
    expect(everything).not.toContain('user:');
    expect(everything).not.toContain('acme');
  });

  it('adds the tenant only when asked, and the tier of a fallback cache', async () => {
    const { meter, collect } = sdk();
    const cache = createFallbackCache({ primary: createFailingCache(), fallback: createMemoryCache() });
    recordMetrics(cache, { meter, tenantAttribute: true });
    await cache.get('k', { tenantId: 'acme' });
    const m = await collect();
    expect(points(m.get('cachekit.requests'))).toEqual([
      { attributes: { 'cachekit.backend': 'memory', 'cachekit.operation': 'get', 'cachekit.tier': 'fallback', 'cachekit.tenant': 'acme', 'cachekit.result': 'miss' }, value: 1 },
    ]);
  });

  it("records a wrapper's hits, misses and bypasses with GenAI attributes, tokens and upstream time saved, and never as gen_ai.client.token.usage", async () => {
    const { meter, collect } = sdk();
    const gw = withCache(new Gateway(), { cache: createMemoryCache(), namespace: 'support' });
    const stop = recordMetrics(gw, { meter, provider: 'openai', operation: 'chat' });
    await gw.generate('AI');
    await new Promise((r) => setTimeout(r, 5));
    await gw.generate('AI');
    await gw.generate('AI');
    await withCacheControl({ bypass: true }, () => gw.generate('AI'));
    const m = await collect();
    const genAi = { 'cachekit.backend': 'llm', 'cachekit.operation': 'call', 'cachekit.namespace': 'support', 'gen_ai.provider.name': 'openai', 'gen_ai.operation.name': 'chat' };
    expect(points(m.get('cachekit.requests'))).toEqual(
      expect.arrayContaining([
        { attributes: { ...genAi, 'cachekit.result': 'hit' }, value: 2 },
        { attributes: { ...genAi, 'cachekit.result': 'miss' }, value: 1 },
      ]),
    );
    expect(points(m.get('cachekit.llm.tokens_saved'))).toEqual([{ attributes: genAi, value: 60 }]);
    expect(m.get('cachekit.llm.upstream_time_saved')?.descriptor.unit).toBe('s');
    expect(m.has('gen_ai.client.token.usage')).toBe(false);
    stop();
    await gw.generate('AI');
    expect(points((await collect()).get('cachekit.requests')).find((p) => p.attributes['cachekit.result'] === 'hit')?.value).toBe(2);
  });

  it('refuses what it cannot record, naming the option', () => {
    expect(() => recordMetrics({})).toThrow(/recordMetrics: target must be a cachekit cache or what a cachekit wrapper returned/);
    expect(() => recordMetrics(createMemoryCache(), { tenantAttributes: true } as never)).toThrow(/did you mean "tenantAttribute"/);
    expect(() => recordMetrics(createMemoryCache(), { name: '' })).toThrow(/name must be a non-empty string/);
  });
});
