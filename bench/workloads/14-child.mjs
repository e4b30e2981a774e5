// One of the 4 processes of workload 14: makes one wrapper with singleFlight 'shared'
// on the parent's redis-server, waits for the start time, fires its share of the
// identical calls, and reports when each answered (epoch ms, sub-millisecond).
const { distUrl, openaiDistUrl, redisUrl, prefix, wrapper, calls, startAt, upstreamUrl } = JSON.parse(process.argv[2]);
const ck = await import(distUrl);
const cache = await ck.createDragonflyCache({ url: redisUrl, keyPrefix: prefix, commandTimeout: 2000 });
const shared = { singleFlight: 'shared', lockTtl: 10, ttl: 300 };
const upstream = async (q) => {
  const response = await fetch(`${upstreamUrl}/?q=${encodeURIComponent(q)}`);
  return { q, ...(await response.json()) };
};
let call;
if (wrapper === 'getOrSet') call = (q) => cache.getOrSet(`q:${q}`, () => upstream(q), shared);
else if (wrapper === 'withCache') {
  const gateway = ck.withCache({ model: 'm', generate: upstream }, { cache, namespace: 'gateway', ...shared });
  call = (q) => gateway.generate(q);
} else if (wrapper === 'cachedRag') {
  const rag = ck.cachedRag(upstream, { cache, namespace: 'rag', ...shared });
  call = (q) => rag(q);
} else if (wrapper === '@Cached') {
  class Service {
    async ask(q) {
      return upstream(q);
    }
  }
  const descriptor = Object.getOwnPropertyDescriptor(Service.prototype, 'ask');
  Object.defineProperty(Service.prototype, 'ask', ck.Cached({ cache, namespace: 'Service.ask', ...shared })(Service.prototype, 'ask', descriptor));
  const service = new Service();
  call = (q) => service.ask(q);
} else if (wrapper === 'memoizeTask') {
  const task = ck.memoizeTask(async function answer(q) {
    return upstream(q);
  }, { cache, ttl: 300, lockTtl: 10 });
  call = (q) => task(q);
} else {
  const { default: OpenAI } = await import('openai');
  const { cachedOpenAI } = await import(openaiDistUrl);
  const client = cachedOpenAI(new OpenAI({ baseURL: `${upstreamUrl}/v1`, apiKey: 'bench', maxRetries: 0 }), { cache, ...shared });
  call = (q) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: q }] });
}
process.send({ ready: true });
// A warm-up flight first (another question, at the same instant in every process), so the measured
// one runs warm code, as in a server that has been up for a while, not a process's first call.
await new Promise((r) => setTimeout(r, Math.max(0, startAt - 1000 - Date.now())));
await Promise.all(Array.from({ length: calls }, () => call('a warm-up question')));
await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
const answeredAt = [];
const answers = await Promise.all(
  Array.from({ length: calls }, () =>
    call('the same question').then((answer) => {
      answeredAt.push(performance.timeOrigin + performance.now());
      return JSON.stringify(answer);
    }),
  ),
);
process.send({ answeredAt, distinct: new Set(answers).size });
await cache.close();
