import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { describeWith } from '../helpers/skips.js';

// The staleness bound of the tiered cache across real processes (README, "Two tiers").

const WORKER = fileURLToPath(new URL('../fixtures/tiered-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WINDOW_MS = 200;

interface Op {
  op: 'get' | 'set' | 'delete';
  key: string;
  value: string | null;
  start: number;
  end: number;
}

interface WorkerStats {
  op: 'stats';
  l1Hits: number;
  l2Hits: number;
  misses: number;
  link: { subscribed: boolean; losses: number; received: number };
}

function run(prefix: string, id: number, runMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, REDIS_URL, prefix, String(id), String(runMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/**
 * The reads the model forbids: a value whose write was followed by another
 * write (or delete) of its key that started after it ended and resolved at
 * least `windowMs` before the read started; or a miss although a set of the
 * key resolved `windowMs` before the read, with no delete that could have
 * come after that set. Values are unique per write, so each names its write.
 */
export function staleReads(ops: Op[], windowMs: number): string[] {
  const writes = ops.filter((o) => o.op !== 'get');
  const origin = new Map(writes.filter((o) => o.op === 'set').map((o) => [o.value as string, o]));
  const found: string[] = [];
  for (const read of ops) {
    if (read.op !== 'get') continue;
    const settled = writes.filter((w) => w.key === read.key && w.end + windowMs <= read.start);
    if (read.value !== null) {
      const source = origin.get(read.value);
      if (source === undefined || source.key !== read.key) found.push(`read ${read.value} under ${read.key}, never written there`);
      else {
        const newer = settled.find((w) => w.start > source.end);
        if (newer) found.push(`read ${read.value} of ${read.key} at ${read.start}, replaced by a ${newer.op} that resolved at ${newer.end}`);
      }
    } else {
      for (const set of settled) {
        if (set.op !== 'set') continue;
        // Wall-clock milliseconds: a delete that starts in the millisecond the read ends may have come first.
        const explained = writes.some((d) => d.op === 'delete' && d.key === read.key && d.end >= set.start && d.start <= read.end);
        if (!explained) found.push(`missed ${read.key} at ${read.start}, set to ${set.value} at ${set.end} and never deleted since`);
      }
    }
  }
  return found;
}

describeWith('redis')('tiered cache across processes', () => {
  const admin = new Redis(REDIS_URL);
  afterAll(() => admin.disconnect());

  it('the model rejects a stale value and an unexplained miss, and accepts what the window allows', () => {
    const set = (value: string, start: number, end: number): Op => ({ op: 'set', key: 'k', value, start, end });
    const get = (value: string | null, start: number): Op => ({ op: 'get', key: 'k', value, start, end: start + 1 });
    const del = (start: number, end: number): Op => ({ op: 'delete', key: 'k', value: null, start, end });
    expect(staleReads([set('v1', 0, 10), set('v2', 20, 30), get('v1', 100)], WINDOW_MS)).toEqual([]);
    expect(staleReads([set('v1', 0, 10), set('v2', 20, 30), get('v1', 230)], WINDOW_MS)).toHaveLength(1);
    expect(staleReads([set('v1', 0, 10), del(20, 30), get('v1', 230)], WINDOW_MS)).toHaveLength(1);
    expect(staleReads([set('v1', 0, 10), get(null, 230)], WINDOW_MS)).toHaveLength(1);
    expect(staleReads([set('v1', 0, 10), del(5, 12), get(null, 230)], WINDOW_MS)).toEqual([]);
    // A delete in the very millisecond the read ended explains its miss.
    expect(staleReads([set('v1', 0, 10), del(231, 231), get(null, 230)], WINDOW_MS)).toEqual([]);
    expect(staleReads([set('v1', 0, 10), set('v2', 5, 15), get('v1', 400)], WINDOW_MS)).toEqual([]);
  });

  it(`a read starting ${WINDOW_MS} ms after a write or delete resolved in another process never returns the old value (4 processes, random operations)`, { timeout: 60_000 }, async () => {
    const prefix = uniquePrefix('tier-x');
    const workers = Array.from({ length: 4 }, (_, id) => run(prefix, id, 4000));
    const deadline = Date.now() + 30_000;
    while (Number(await admin.get(`${prefix}:ready`)) < 4) {
      if (Date.now() > deadline) throw new Error('the workers did not start');
      await sleep(20);
    }
    await admin.set(`${prefix}:go`, '1');
    const outcomes = await Promise.all(workers);
    const ops: Op[] = [];
    const stats: WorkerStats[] = [];
    for (const o of outcomes) {
      expect(o.code, o.stderr).toBe(0);
      for (const line of o.stdout.trim().split('\n')) {
        const parsed = JSON.parse(line) as Op | WorkerStats;
        if (parsed.op === 'stats') stats.push(parsed);
        else ops.push(parsed);
      }
    }
    expect(staleReads(ops, WINDOW_MS)).toEqual([]);
    const gets = ops.filter((o) => o.op === 'get').length;
    expect(gets).toBeGreaterThan(400);
    // The memory tier answered, and every process heard the others.
    for (const s of stats) {
      expect(s.l1Hits).toBeGreaterThan(0);
      expect(s.link.received).toBeGreaterThan(0);
      expect(s.link).toMatchObject({ subscribed: true, losses: 0 });
    }
  });
});
