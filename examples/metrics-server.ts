// A /metrics endpoint for Prometheus, and OpenTelemetry metrics beside it.
// `tsx examples/metrics-server.ts` (PORT, default 9464; REDIS_URL for a Dragonfly/Redis cache,
// else a memory cache), then `curl localhost:9464/metrics`. Each request to /ask?q=... goes
// through a cached gateway, so the counters move.
import { createServer } from 'node:http';
import { createDragonflyCache, createMemoryCache, withCache, type Cache } from '../src/index.js';
import { recordMetrics } from '../src/metrics/opentelemetry.js';
import { PROMETHEUS_CONTENT_TYPE, prometheusMetrics } from '../src/metrics/prometheus.js';

class Gateway {
  model = 'gpt-4o-mini';
  async generate(prompt: string) {
    await new Promise((resolve) => setTimeout(resolve, 20)); // the "LLM"
    return { text: `an answer about ${prompt}`, usage: { total_tokens: 42 } };
  }
}

const cache: Cache = process.env.REDIS_URL ? await createDragonflyCache({ url: process.env.REDIS_URL, keyPrefix: 'metrics-demo' }) : createMemoryCache();
const gateway = withCache(new Gateway(), { cache, namespace: 'support', ttl: 600 });
// With an OpenTelemetry SDK registered (its MeterProvider global), these go to its exporter too.
recordMetrics(cache, { name: 'answers' });
recordMetrics(gateway, { provider: 'openai', operation: 'chat' });

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/metrics') {
    prometheusMetrics({ caches: { answers: cache }, wrappers: { support: gateway } }).then(
      (text) => {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
        res.end(text);
      },
      (error: unknown) => {
        res.writeHead(500).end(String(error));
      },
    );
  } else if (url.pathname === '/ask') {
    gateway.generate(url.searchParams.get('q') ?? 'nothing').then((answer) => res.end(answer.text));
  } else {
    res.writeHead(404).end();
  }
});

server.listen(Number(process.env.PORT ?? 9464), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`metrics on http://127.0.0.1:${port}/metrics`);
});

const stop = () => server.close(() => void cache.close().then(() => process.exit(0)));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
