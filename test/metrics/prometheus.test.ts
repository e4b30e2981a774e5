// The example server (examples/metrics-server.ts) as a real process, scraped over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { prometheusMetrics } from '../../src/metrics/prometheus.js';
import { createFailingCache } from '../helpers/failing-cache.js';
import { describeWith } from '../helpers/skips.js';

const root = resolve(import.meta.dirname, '../..');

/** Parses the text exposition: `name{labels} value` lines, and the TYPE of each family. */
function parse(text: string) {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    const sample = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (sample) samples.set(`${sample[1]}${sample[2] ?? ''}`, Number(sample[3]));
  }
  return { samples, types };
}

describeWith('redis')('the example metrics server (examples/metrics-server.ts), scraped over HTTP', () => {
  let child: ChildProcess;
  let base: string;

  beforeAll(async () => {
    child = spawn(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'examples/metrics-server.ts')], {
      env: { ...process.env, PORT: '0', REDIS_URL: inject('redisUrl') as string },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    base = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const found = /metrics on (http:\/\/\S+)\/metrics/.exec(out);
        if (found) resolve(found[1] as string);
      });
      child.once('exit', (code) => reject(new Error(`the example exited with ${code}`)));
    });
  }, 30_000);

  afterAll(() => {
    child?.kill('SIGTERM');
  });

  it('serves the Prometheus text format with the cache and wrapper counters, which move with traffic', async () => {
    await fetch(`${base}/ask?q=ai`).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 50));
    await fetch(`${base}/ask?q=ai`).then((r) => r.text());
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const { samples, types } = parse(await response.text());
    expect(types.get('cachekit_requests_total')).toBe('counter');
    expect(types.get('cachekit_entries')).toBe('gauge');
    expect(samples.get('cachekit_up{cache="answers",backend="dragonfly"}')).toBe(1);
    expect(samples.get('cachekit_requests_total{cache="answers",backend="dragonfly",result="hit"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('cachekit_llm_requests_total{wrapper="support",result="hit"}')).toBe(1);
    expect(samples.get('cachekit_llm_requests_total{wrapper="support",result="miss"}')).toBe(1);
    expect(samples.get('cachekit_llm_tokens_saved_total{wrapper="support"}')).toBe(42);
    expect(samples.get('cachekit_llm_upstream_time_saved_seconds_total{wrapper="support"}')).toBeGreaterThan(0.01);
    expect(samples.has('cachekit_entries_margin{cache="answers",backend="dragonfly"}')).toBe(true);
  });
});

describe('prometheusMetrics', () => {
  it('reports a cache whose stats() fail as down, escapes label values, and refuses what it cannot read', async () => {
    const text = await prometheusMetrics({ caches: { 'a"b\\c': createMemoryCache(), down: createFailingCache() } });
    expect(text).toContain('cachekit_up{cache="a\\"b\\\\c",backend="memory"} 1');
    expect(text).toContain('cachekit_up{cache="down",backend="failing"} 0');
    expect(text).not.toContain('cachekit_entries{cache="down"');
    await expect(prometheusMetrics({ caches: { x: {} as never } })).rejects.toThrow(/caches\.x must be a cachekit Cache/);
    await expect(prometheusMetrics({ wrappers: { x: {} } })).rejects.toThrow(/wrappers\.x must be what a cachekit wrapper returned/);
  });
});
