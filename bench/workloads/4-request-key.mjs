// Workload 4: the request key of a chat request with ~16 KB of messages and tools.
import { createHash } from 'node:crypto';
import fastStable from 'fast-json-stable-stringify';
import objectHash from 'object-hash';
import safeStable from 'safe-stable-stringify';
import { check, forAbout, interleave, proposal, withRatios } from '../lib.mjs';

const paragraph =
  'The retrieval step returned these passages; answer only from them and cite the passage ids. If the passages do not ' +
  'contain the answer, say so plainly instead of guessing. Keep the answer under two hundred words. ';

function tool(name, i) {
  return {
    type: 'function',
    function: {
      name,
      description: `Tool ${i}: ${paragraph.slice(0, 160)}`,
      parameters: {
        type: 'object',
        properties: {
          query: { type: 'string', description: 'What to look up, in the user language.' },
          limit: { type: 'integer', minimum: 1, maximum: 50, default: 10 },
          filters: { type: 'object', properties: { source: { type: 'string', enum: ['wiki', 'tickets', 'docs'] }, since: { type: 'string', format: 'date' } } },
        },
        required: ['query'],
        additionalProperties: false,
      },
      strict: true,
    },
  };
}

/** An OpenAI chat request whose JSON is about 16 KB. */
export function chatRequest() {
  const messages = [{ role: 'system', content: paragraph.repeat(4) }];
  const request = {
    model: 'gpt-4o-mini',
    messages,
    tools: ['search_docs', 'search_tickets', 'get_weather', 'lookup_order'].map(tool),
    tool_choice: 'auto',
    temperature: 0.2,
    max_tokens: 800,
    response_format: { type: 'text' },
  };
  // Conversation turns until the request is about 16 KB.
  for (let i = 0; JSON.stringify(request).length < 16_000; i++) {
    messages.push({ role: 'user', content: `Question ${i}: ${paragraph.slice(0, 120 + (i % 5) * 20)}` });
    messages.push({ role: 'assistant', content: `Answer ${i}: ${paragraph.slice(0, 200)}` });
  }
  return request;
}

export default {
  id: 4,
  title: 'Request key of a ~16 KB chat request',
  async run({ ck, rounds, blockMs }) {
    const request = chatRequest();
    const bytes = JSON.stringify(request);
    const sha = (text) => createHash('sha256').update(text).digest('hex');
    let sink = 0;
    const cs = [
      { name: 'cachekit requestKey', fn: () => ck.requestKey(request) },
      { name: 'object-hash (defaults)', fn: () => objectHash(request) },
      { name: 'safe-stable-stringify + SHA-256', fn: () => sha(safeStable(request)) },
      { name: 'fast-json-stable-stringify + SHA-256', fn: () => sha(fastStable(request)) },
      // Not a contender (key order changes its output): the fastest serialize-then-hash JavaScript has.
      { name: 'JSON.stringify + SHA-256 (not canonical)', fn: () => sha(JSON.stringify(request)) },
      { name: 'floor: SHA-256 of the serialized bytes', fn: () => sha(bytes) },
    ];
    if (ck.requestKey(request) !== ck.requestKey(structuredClone(request))) throw new Error('requestKey is not deterministic');
    const rows = await interleave(
      '4 request key',
      cs.map((c) => ({
        name: c.name,
        run: () =>
          forAbout(blockMs, () => {
            for (let i = 0; i < 20; i++) sink += c.fn().length;
            return 20;
          }),
      })),
      { rounds },
    );
    if (sink < 0) console.log(sink);
    const v = (n) => rows.find((r) => r.name === n).opsPerSec;
    const a = v('cachekit requestKey') / v('object-hash (defaults)');
    const b = v('floor: SHA-256 of the serialized bytes') / v('cachekit requestKey');
    const native = v('floor: SHA-256 of the serialized bytes') / v('JSON.stringify + SHA-256 (not canonical)');
    return {
      tables: [
        {
          title: `4. Request key, chat request of ${(bytes.length / 1024).toFixed(1)} KB (${request.messages.length} messages, ${request.tools.length} tools)`,
          unit: 'keys/s',
          reference: 'cachekit requestKey',
          rows: withRatios(rows, 'cachekit requestKey').map((r) => ({ ...r, display: `${r.opsPerSec.toFixed(0)} (${(1e6 / r.opsPerSec).toFixed(1)} µs)` })),
        },
      ],
      checks: [
        check('request key vs object-hash', '>= 5x faster', `${a.toFixed(1)}x`, a >= 5),
        check('request key vs SHA-256 floor', 'within 3x', `${b.toFixed(2)}x the floor's time`, b <= 3, `native JSON.stringify + SHA-256: ${native.toFixed(2)}x`),
        proposal('request key vs native JSON.stringify + SHA-256 (not canonical)', 'at most its time (<= 1x)', `${(b / native).toFixed(2)}x its time`, b <= native),
      ],
    };
  },
};
