// Workload 14: the cross-process stampede per wrapper with singleFlight 'shared':
// 4 processes x 250 concurrent identical misses against one Redis, an upstream
// (a local HTTP server; an OpenAI-shaped one for cachedOpenAI) that counts its
// calls. Reports the upstream calls, and how long after the holder's first answer
// (its upstream's return) the waiters in the other processes answered.
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { check, median, progress } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PROCESSES = 4;
const CALLS = 1000;
const UPSTREAM_MS = 100;
const WRAPPERS = ['getOrSet', 'withCache', 'cachedRag', '@Cached', 'memoizeTask', 'cachedOpenAI chat'];
// The hop across processes alone: one caller per process, so no process hands out 250 copies first.
const HOP = { wrapper: 'withCache', calls: PROCESSES };

async function countingUpstream() {
  let calls = 0;
  const server = createServer((req, res) => {
    const n = ++calls;
    const chat = req.url.startsWith('/v1/chat/completions');
    const drain = () =>
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify(
            chat
              ? { id: `chatcmpl-${n}`, object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'an answer' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }
              : { n },
          ),
        );
      }, UPSTREAM_MS);
    req.resume();
    req.on('end', drain);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, calls: () => calls, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

async function round(redisUrl, upstream, wrapper, r, calls = CALLS) {
  const dist = join(here, '..', '..', 'dist');
  const before = upstream.calls();
  const startAt = Date.now() + 3000;
  const args = {
    distUrl: pathToFileURL(join(dist, 'index.js')).href,
    openaiDistUrl: pathToFileURL(join(dist, 'openai.js')).href,
    redisUrl,
    prefix: `bench14-${r}-${process.pid}-${Date.now()}`,
    wrapper,
    calls: calls / PROCESSES,
    startAt,
    upstreamUrl: upstream.url,
  };
  const children = Array.from({ length: PROCESSES }, () => fork(join(here, '14-child.mjs'), [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const reports = await Promise.all(
    children.map(
      (child) =>
        new Promise((resolve, reject) => {
          child.on('message', (m) => m.answeredAt !== undefined && resolve(m));
          child.on('exit', (code) => code !== 0 && reject(new Error(`child exited with ${code}`)));
        }),
    ),
  );
  await Promise.all(children.map((c) => new Promise((res) => (c.exitCode !== null ? res() : c.on('exit', res)))));
  const first = Math.min(...reports.flatMap((p) => p.answeredAt));
  const others = reports.filter((p) => !p.answeredAt.includes(first));
  return {
    // Minus the warm-up flight's one call.
    upstream: upstream.calls() - before - 1,
    distinct: Math.max(...reports.map((p) => p.distinct)),
    hops: others.map((p) => Math.min(...p.answeredAt) - first),
    added: others.flatMap((p) => p.answeredAt.map((t) => t - first)),
  };
}

const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

export default {
  id: 14,
  title: 'Cross-process stampede per wrapper (singleFlight: shared)',
  async run({ redis, quick }) {
    const server = await redis();
    const upstream = await countingUpstream();
    const rounds = quick ? 1 : 3;
    const rows = [];
    let worst = 0;
    try {
      for (const { wrapper, calls } of [...WRAPPERS.map((wrapper) => ({ wrapper, calls: CALLS })), HOP]) {
        const samples = [];
        const name = calls === CALLS ? wrapper : `${wrapper}, ${PROCESSES} processes x 1 call`;
        for (let r = 0; r < (calls === CALLS ? rounds : rounds * 3); r++) {
          progress(`14 shared stampede: ${name}, round ${r + 1}`);
          samples.push(await round(server.url, upstream, wrapper, r, calls));
        }
        const added = samples.flatMap((s) => s.added).sort((a, b) => a - b);
        const hops = samples.flatMap((s) => s.hops);
        worst = Math.max(worst, ...samples.map((s) => s.upstream));
        rows.push({
          name,
          display: samples.map((s) => s.upstream).join(', '),
          extra: `first answer per waiting process ${median(hops).toFixed(1)} ms (median); all waiters ${at(added, 0.5).toFixed(1)} ms median, ${at(added, 0.99).toFixed(1)} ms p99`,
        });
      }
    } finally {
      await upstream.close();
    }
    return {
      tables: [
        {
          title: `14. Shared stampede: ${PROCESSES} processes x ${CALLS / PROCESSES} identical misses (last row: x 1), upstream takes ${UPSTREAM_MS} ms (upstream calls per round; waiters' added latency after the holder's first answer)`,
          valueHeader: 'upstream calls, each round',
          extra: "waiters' added latency",
          rows,
        },
      ],
      checks: [check(`shared stampede across ${PROCESSES} processes, every wrapper: upstream calls`, 'exactly 1', String(worst), worst === 1)],
    };
  },
};
