// Runs once per `vitest run`, in the main process, before any test worker starts.
// It gives the Redis tests a server of their own, so `npm test` never touches a
// developer's Redis and its data: a throwaway `redis-server` on a free port
// (no persistence, killed at teardown), unless REDIS_URL names one to use.
// At teardown it prints every suite and test that was skipped, and why.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './helpers/free-port.js';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis the suite's shared-server tests use; `null` when there is none (those tests are skipped, and said so). */
    redisUrl: string | null;
    /** Whether `redis-server` is on PATH, for the tests that start, stop and hurt servers of their own. */
    redisServerInstalled: boolean;
    /** Where test workers note what they skipped (test/helpers/skips.ts); read back at teardown. */
    skipLogDir: string;
  }
}

const INSTALL_HINT = 'install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)';

/** Thrown to stop the run with one line: the stack of a setup file says nothing useful. */
function fatal(message: string): Error {
  const error = new Error(message);
  error.stack = `Error: ${message}`;
  return error;
}

function isCI(): boolean {
  const value = process.env.CI;
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function startThrowawayServer(): Promise<{ url: string; child: ChildProcess }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    const until = Date.now() + 10_000;
    while (child.exitCode === null && Date.now() < until) {
      if (await answers(url)) return { url, child };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGKILL');
    // Another process may have taken the port between the probe and the spawn.
    if (attempt === 2) throw fatal(`the throwaway redis-server did not answer on port ${port} within 10 s`);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

interface SkipRecord {
  need: string;
  kind: 'suite' | 'test';
  name: string;
  file: string;
}

const REASONS: Record<string, string> = {
  redis: 'no Redis for the suite',
  'redis-server': 'no redis-server binary to start private servers with',
};

function reportSkips(dir: string): void {
  const records = new Map<string, SkipRecord>();
  for (const name of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      const record = JSON.parse(line) as SkipRecord;
      records.set(`${record.need}\0${record.file}\0${record.name}`, record);
    }
  }
  if (records.size === 0) return;
  const lines = [...records.values()]
    .sort((a, b) => a.need.localeCompare(b.need) || a.file.localeCompare(b.file) || a.name.localeCompare(b.name))
    .map((r) => `***   ${r.file}: ${r.kind} "${r.name}" (${REASONS[r.need] ?? r.need})`);
  console.warn(`\n*** SKIPPED ${records.size} suite(s)/test(s) for missing infrastructure; to run them, ${INSTALL_HINT} or set REDIS_URL:\n${lines.join('\n')}\n`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const ci = isCI();
  const installed = spawnSync('redis-server', ['--version']).status === 0;
  if (!installed && ci) throw fatal(`redis-server is not on PATH: ${INSTALL_HINT}. (CI is set, so the suite fails instead of skipping the Redis tests.)`);

  let url: string | null = null;
  let child: ChildProcess | undefined;
  const given = process.env.REDIS_URL;
  if (given !== undefined && given !== '') {
    if (await answers(given)) url = given;
    else if (ci) throw fatal(`REDIS_URL names a Redis that does not answer. Start it, or unset REDIS_URL to let the suite start its own redis-server.`);
    else console.warn('\n*** REDIS_URL names a Redis that does not answer: the Redis tests are SKIPPED (listed at the end). ***\n');
  } else if (installed) {
    ({ url, child } = await startThrowawayServer());
    const started = child;
    process.once('exit', () => started.kill('SIGKILL'));
  } else {
    console.warn(`\n*** redis-server is not on PATH: only the memory tests run; the Redis tests are SKIPPED (listed at the end). To run them, ${INSTALL_HINT}. ***\n`);
  }

  const skipLogDir = mkdtempSync(join(tmpdir(), 'cachekit-skips-'));
  project.provide('redisUrl', url);
  project.provide('redisServerInstalled', installed);
  project.provide('skipLogDir', skipLogDir);

  return async () => {
    if (child) await stop(child);
    reportSkips(skipLogDir);
    rmSync(skipLogDir, { recursive: true, force: true });
  };
}
