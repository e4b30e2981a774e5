// Loads both builds of the installed package in one process, as an app whose
// dependencies mix `import` and `require` does, and checks that per-call
// controls and stats cross between the copies (the dual-package hazard).
import { createRequire } from 'node:module';
import * as esm from 'cachekit';
import * as esmOpenAI from 'cachekit/openai';
import OpenAI from 'openai';

const require = createRequire(import.meta.url);
const cjs = require('cachekit');
const cjsOpenAI = require('cachekit/openai');

function check(what, ok) {
  if (!ok) throw new Error(`dual-package check failed: ${what}`);
}

check('two copies are loaded', esm.withCache !== cjs.withCache && esmOpenAI.cachedOpenAI !== cjsOpenAI.cachedOpenAI);

class Gateway {
  calls = 0;
  async generate(prompt) {
    this.calls++;
    return `answer to ${prompt}`;
  }
}

for (const [made, control] of [
  [cjs, esm],
  [esm, cjs],
]) {
  const gateway = new Gateway();
  const wrapped = made.withCache(gateway, { cache: made.createMemoryCache() });
  await wrapped.generate('q');
  await control.withCacheControl({ bypass: true }, () => wrapped.generate('q'));
  check('withCacheControl from the other copy', gateway.calls === 2);
  check('cacheStats from the other copy', control.cacheStats(wrapped).bypasses === 1);
}

let upstream = 0;
const fetch = async (_url, init) => {
  upstream++;
  const body = JSON.parse(String(init.body));
  const completion = { id: `c${upstream}`, object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: 'hi', refusal: null } }] };
  return new Response(JSON.stringify(completion), { status: 200, headers: { 'content-type': 'application/json' } });
};
const openai = cjsOpenAI.cachedOpenAI(new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1', maxRetries: 0, fetch }), { cache: cjs.createMemoryCache() });
const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] };
await openai.chat.completions.create(request);
await esm.withCacheControl({ refresh: true }, () => openai.chat.completions.create(request));
check('cachekit (ESM) withCacheControl reaches cachekit/openai (CJS)', upstream === 2);
const stats = esm.cacheStats(openai);
check('cachekit (ESM) cacheStats reads cachekit/openai (CJS)', stats.misses === 1 && stats.bypasses === 1);
console.log('dual-package ok');
