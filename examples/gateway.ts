// withCache around an LLM gateway (the guide's `gateway.generate("What is AI?")`).
// Offline by default: a fake gateway that sleeps like an LLM. Set OPENAI_BASE_URL
// and OPENAI_API_KEY (and optionally OPENAI_MODEL) to call a real
// OpenAI-compatible endpoint instead; set REDIS_URL to cache on Dragonfly/Redis.
import { cacheStats, withCache, withCacheControl } from '../src/index.js';
import { openCache, timed } from './support/demo.js';

interface Generation {
  text: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** Answers after 400 ms, as a small model behind a gateway would. */
class FakeGateway {
  constructor(readonly model: string) {}

  async generate(prompt: string, options: { temperature?: number } = {}): Promise<Generation> {
    await new Promise((resolve) => setTimeout(resolve, 400));
    const text = `[${this.model}, t=${options.temperature ?? 1}] ${prompt} A field of computer science.`;
    return { text, usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 } };
  }
}

/** The same interface over a real OpenAI-compatible endpoint. */
class HttpGateway {
  constructor(
    readonly model: string,
    readonly baseURL: string,
    private readonly apiKey: string,
  ) {}

  async generate(prompt: string, options: { temperature?: number } = {}): Promise<Generation> {
    const response = await fetch(`${this.baseURL.replace(/\/$/, '')}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.apiKey}` },
      body: JSON.stringify({ model: this.model, messages: [{ role: 'user', content: prompt }], temperature: options.temperature }),
    });
    if (!response.ok) throw new Error(`gateway answered ${response.status}: ${await response.text()}`);
    const body = (await response.json()) as { choices: { message: { content: string } }[]; usage: Generation['usage'] };
    return { text: body.choices[0]?.message.content ?? '', usage: body.usage };
  }
}

async function main(): Promise<void> {
  const cache = await openCache('example-gateway');
  const { OPENAI_BASE_URL, OPENAI_API_KEY } = process.env;
  const model = process.env.OPENAI_MODEL ?? 'gpt-4o-mini';
  const upstream = OPENAI_BASE_URL && OPENAI_API_KEY ? new HttpGateway(model, OPENAI_BASE_URL, OPENAI_API_KEY) : new FakeGateway(model);
  console.log(`cache: ${cache.kind}; upstream: ${upstream instanceof HttpGateway ? OPENAI_BASE_URL : 'offline fake gateway'}\n`);

  const gateway = withCache(upstream, { cache, ttl: 600 });
  const first = await timed('miss: generate("What is AI?")', () => gateway.generate('What is AI?'));
  await timed('hit:  generate("What is AI?")', () => gateway.generate('What is AI?'));
  console.log(`answer: ${first.text}\n`);

  await timed('miss: other options (temperature 0)', () => gateway.generate('What is AI?', { temperature: 0 }));
  await timed('bypass: withCacheControl({ bypass: true })', () => withCacheControl({ bypass: true }, () => gateway.generate('What is AI?')));
  await timed('miss: tenant "acme" has its own entries', () => withCacheControl({ tenantId: 'acme' }, () => gateway.generate('What is AI?')));
  if (upstream instanceof FakeGateway) {
    const other = withCache(new FakeGateway('llama-3.1-8b'), { cache, ttl: 600 });
    await timed('miss: a gateway with another default model', () => other.generate('What is AI?'));
  }

  const stats = cacheStats(gateway);
  console.log('\nstats of the first gateway:', { ...stats, latencySavedMs: Math.round(stats.latencySavedMs) });
  await cache.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
