#!/usr/bin/env node
// cachekit benchmarks against its peers. From the repo root: `npm run bench [-- --quick] [-- --only 1,4]`.
// Imports the BUILT package (../dist), never src. Starts a private redis-server
// on a free port for the Redis workloads and stops it at the end.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmtOps, progressDone, startRedis } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg
  ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',').map(Number)
  : undefined;

// --listen: every cache and cachedOpenAI client the workloads make gets a listener on every
// event (a counter), to measure what events cost on the hot path against a run without it.
const listen = args.includes('--listen');

const built = await import(pathToFileURL(join(here, '..', 'dist', 'index.js')).href);
let builtOpenAI;
try {
  builtOpenAI = await import(pathToFileURL(join(here, '..', 'dist', 'openai.js')).href);
} catch {
  builtOpenAI = undefined;
}
let heard = 0;
const onEvery = (target, skip = []) => {
  for (const type of built.CACHE_EVENT_TYPES) if (!skip.includes(type)) target.on(type, () => void heard++);
};
const ck = listen
  ? {
      ...built,
      createMemoryCache: (...a) => {
        const cache = built.createMemoryCache(...a);
        onEvery(cache);
        return cache;
      },
      createDragonflyCache: async (...a) => {
        const cache = await built.createDragonflyCache(...a);
        // Not evict/expire: on Dragonfly they poll INFO every 5 s, off the hot path, and the
        // workloads starve the event loop for seconds (memory blocks that never yield), so a
        // poll's reply waits past ioredis's socketTimeout and the connection is dropped.
        onEvery(cache, ['evict', 'expire']);
        return cache;
      },
    }
  : built;
const ckOpenAI =
  listen && builtOpenAI
    ? {
        ...builtOpenAI,
        cachedOpenAI: (...a) => {
          const client = builtOpenAI.cachedOpenAI(...a);
          onEvery(builtOpenAI.cacheEvents(client));
          return client;
        },
      }
    : builtOpenAI;

const files = [
  '1-memory.mjs',
  '2-redis.mjs',
  '3-batch.mjs',
  '4-request-key.mjs',
  '5-llm-hit.mjs',
  '6-stampede.mjs',
  '7-clear-pattern.mjs',
  '8-memory-cost.mjs',
  '9-ai-sdk-hit.mjs',
  '10-langchain-hit.mjs',
  '11-keyv-hit.mjs',
  '12-tags.mjs',
  '13-tiered.mjs',
  '14-shared-stampede.mjs',
  '15-cluster.mjs',
];

let redis;
const ctx = {
  ck,
  ckOpenAI,
  quick,
  rounds: quick ? 3 : 9,
  blockMs: quick ? 30 : 150,
  /** The private redis-server, started on first use. */
  async redis() {
    redis ??= await startRedis(['--enable-debug-command', 'local']);
    return redis;
  },
};
const cleanup = () => redis?.stop();
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

const started = Date.now();
const results = [];
try {
  for (const file of files) {
    const id = Number(file.split('-')[0]);
    if (only && !only.includes(id)) continue;
    const w0 = Date.now();
    let mod;
    try {
      mod = (await import(`./workloads/${file}`)).default;
    } catch (error) {
      results.push({ id, title: file, skipped: `cannot load: ${error.message}`, tables: [], checks: [] });
      continue;
    }
    try {
      const out = await mod.run(ctx);
      results.push({ id, title: mod.title, seconds: (Date.now() - w0) / 1000, ...out });
    } catch (error) {
      results.push({ id, title: mod.title, skipped: `failed: ${error.stack ?? error}`, tables: [], checks: [] });
    }
    progressDone();
    print(results.at(-1));
  }
} finally {
  cleanup();
}

const machine = {
  date: new Date().toISOString(),
  command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  node: process.version,
  redis: redis?.version ?? redisCliVersion(),
  quick,
  listen,
  eventsHeard: heard,
  seconds: (Date.now() - started) / 1000,
};
writeFileSync(join(here, 'results.json'), JSON.stringify({ machine, results }, null, 2) + '\n');

const all = results.flatMap((r) => r.checks.map((c) => ({ workload: r.id, ...c })));
const checks = all.filter((c) => !c.proposed);
const proposals = all.filter((c) => c.proposed);
const row = (c) => `| ${c.workload} | ${c.name} | ${c.target} | ${c.actual}${c.detail ? ` (${c.detail})` : ''} | ${c.pass ? 'PASS' : '**FAIL**'} |`;
console.log(`\n## Targets (${checks.filter((c) => c.pass).length}/${checks.length} PASS)\n`);
console.log('| # | Target | Required | Measured | Result |\n|---|---|---|---|---|');
for (const c of checks) console.log(row(c));
for (const r of results.filter((r) => r.skipped)) console.log(`| ${r.id} | ${r.title} | - | not run: ${r.skipped.split('\n')[0]} | **MISSING** |`);
if (proposals.length > 0) {
  console.log(`\n## Proposed targets, where the issue's is out of reach (${proposals.filter((c) => c.pass).length}/${proposals.length} PASS)\n`);
  console.log('| # | Target | Required | Measured | Result |\n|---|---|---|---|---|');
  for (const c of proposals) console.log(row(c));
}
console.log(
  `\n${listen ? `listeners on every event: ${heard} events heard · ` : ''}${machine.date} · ${machine.cpus} cores (${machine.cpuModel}) · Node ${machine.node} · Redis ${machine.redis} · ${machine.command} · ${machine.seconds.toFixed(0)} s`,
);

function redisCliVersion() {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

function print(result) {
  console.log(`\n### ${result.id}. ${result.title}${result.seconds ? ` (${result.seconds.toFixed(1)} s)` : ''}`);
  if (result.skipped) {
    console.log(`\nNot run: ${result.skipped}`);
    return;
  }
  for (const t of result.tables) {
    console.log(`\n${t.title}${t.note ? ` (${t.note})` : ''}\n`);
    const ratios = t.reference !== undefined;
    console.log(`| Contender | ${t.valueHeader ?? `${t.unit ?? 'ops/s'} (median)`} |${ratios ? ` vs ${t.reference} |` : ''}${t.extra ? ` ${t.extra} |` : ''}`);
    console.log(`|---|---:|${ratios ? '---:|' : ''}${t.extra ? '---|' : ''}`);
    for (const row of t.rows) {
      const value = row.display ?? (row.opsPerSec !== undefined ? fmtOps(row.opsPerSec) : String(row.value));
      const ratio = row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}x`;
      console.log(`| ${row.name} | ${value} |${ratios ? ` ${ratio} |` : ''}${t.extra ? ` ${row.extra ?? ''} |` : ''}`);
    }
  }
}
