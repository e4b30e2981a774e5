// Shared harness: interleaved rounds, medians, progress, a private Redis server.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

let lastProgressLength = 0;
/** One rewritten status line on stderr (a plain line per update when stderr is not a TTY). */
export function progress(text) {
  if (process.stderr.isTTY) {
    const pad = Math.max(0, lastProgressLength - text.length);
    process.stderr.write(`\r${text}${' '.repeat(pad)}`);
    lastProgressLength = text.length;
  } else {
    process.stderr.write(`${text}\n`);
  }
}
export function progressDone() {
  if (process.stderr.isTTY && lastProgressLength) process.stderr.write(`\r${' '.repeat(lastProgressLength)}\r`);
  lastProgressLength = 0;
}

/**
 * Runs every contender once per round, in an order rotated each round so none
 * always runs first (or right after GC-heavy neighbours). `run()` does one
 * timed block and returns the number of operations it did (or `{ ops }`).
 * The first `warmup` rounds are run and discarded. Returns median ops/s and
 * every sample per contender.
 */
export async function interleave(label, contenders, { rounds, warmup = 1 }) {
  const samples = new Map(contenders.map((c) => [c.name, []]));
  const total = rounds + warmup;
  for (let r = 0; r < total; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length];
      progress(`${label}: round ${r + 1}/${total}${r < warmup ? ' (warm-up)' : ''} - ${c.name}`);
      const t0 = process.hrtime.bigint();
      const ops = await c.run();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r >= warmup) samples.get(c.name).push(ops / seconds);
    }
  }
  return contenders.map((c) => ({ name: c.name, opsPerSec: median(samples.get(c.name)), samples: samples.get(c.name) }));
}

/** Runs `body(i)` `n` times, awaiting each: how users call an async cache one request at a time. */
export async function sequential(n, body) {
  for (let i = 0; i < n; i++) await body(i);
  return n;
}

/** `n` operations spread over `callers` concurrent async loops. */
export async function concurrent(n, callers, body) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) await body(i);
  };
  await Promise.all(Array.from({ length: callers }, worker));
  return n;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A private redis-server on a free port, without persistence, so workloads can
 * read INFO commandstats and SLOWLOG, and fill a million keys, without touching
 * anyone else's server. `stop()` kills only this process.
 */
export async function startRedis(extraArgs = []) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ck-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], {
    stdio: 'ignore',
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error('redis-server exited at start (is it installed?)');
    if (cli(port, ['ping']).trim() === 'PONG') break;
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s');
    await sleep(50);
  }
  const version = /redis_version:(\S+)/.exec(cli(port, ['info', 'server']))?.[1] ?? 'unknown';
  return {
    port,
    version,
    url: `redis://127.0.0.1:${port}`,
    stop() {
      if (!exited) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function cli(port, args) {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout ?? '';
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `INFO commandstats` as { command: calls }. */
export async function commandStats(redis) {
  const info = await redis.info('commandstats');
  const out = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

export function statsDelta(before, after, ignore = ['info']) {
  const out = {};
  for (const [cmd, calls] of Object.entries(after)) {
    const d = calls - (before[cmd] ?? 0);
    if (d > 0 && !ignore.includes(cmd)) out[cmd] = d;
  }
  return out;
}

export function fmtOps(x) {
  if (!Number.isFinite(x)) return String(x);
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(1);
}

/** Rows with ratios to the reference contender. */
export function withRatios(rows, reference, key = 'opsPerSec') {
  const ref = rows.find((r) => r.name === reference)?.[key];
  return rows.map((r) => ({ ...r, ratio: ref ? r[key] / ref : undefined }));
}

export function check(name, target, actual, pass, detail = '') {
  return { name, target, actual, pass, detail };
}

/**
 * A target we propose where the is out of reach for any implementation
 * with the same contract (the matching `check` carries the floor that shows it).
 */
export function proposal(name, target, actual, pass, detail = '') {
  return { ...check(name, target, actual, pass, detail), proposed: true };
}

/**
 * Repeats `chunk()` (which returns how many operations it did) until `ms` have
 * passed, so fast and slow contenders each get a block of about the same time.
 */
export async function forAbout(ms, chunk) {
  const end = performance.now() + ms;
  let ops = 0;
  do ops += await chunk();
  while (performance.now() < end);
  return ops;
}
