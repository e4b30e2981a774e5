import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';

/** What a test is doing to the server when an operation starts. */
export type Phase = 'up' | 'fault' | 'recovering';

export interface Sample {
  op: string;
  phase: Phase;
  start: number;
  end: number;
  ok: boolean;
  error?: unknown;
}

export interface Violation {
  key: string;
  wrote: string;
  read: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A load of mixed operations (get, set + read-back, delete, getMany, setMany,
 * clearPattern) from several concurrent workers, each on its own keys so a
 * worker's own history says what a read must return. Every operation is timed.
 */
export class MixedLoad {
  phase: Phase = 'up';
  /** Bumped by the test whenever the server lost its data (SIGKILL + restart): an older write may then read as a miss. */
  epoch = 0;
  readonly samples: Sample[] = [];
  readonly violations: Violation[] = [];
  /** Set calls that answered true and were read back intact by the next get. */
  verifiedWrites = 0;
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly cache: Cache,
    private readonly workerCount = 8,
  ) {}

  start(): void {
    this.running = true;
    for (let w = 0; w < this.workerCount; w++) this.workers.push(this.worker(w));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  /** Resolves with the end time (`performance.now()`) of the first successful operation that started at or after `since`. */
  async firstSuccessSince(since: number, withinMs: number): Promise<number> {
    const until = performance.now() + withinMs;
    for (;;) {
      const hit = this.samples.find((s) => s.ok && s.start >= since);
      if (hit) return hit.end;
      if (performance.now() > until) throw new Error(`no operation succeeded within ${withinMs} ms of recovery`);
      await sleep(5);
    }
  }

  private async timed<T>(op: string, work: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    const phase = this.phase;
    const start = performance.now();
    try {
      const value = await work();
      this.samples.push({ op, phase, start, end: performance.now(), ok: true });
      return { ok: true, value };
    } catch (error) {
      this.samples.push({ op, phase, start, end: performance.now(), ok: false, error });
      return { ok: false };
    }
  }

  private async worker(w: number): Promise<void> {
    let n = 0;
    const key = () => `w${w}:k${Math.floor(Math.random() * 40)}`;
    while (this.running) {
      n++;
      // Callers out of step with each other, as in an application: each operation may find
      // another one's batch still waiting for its reply.
      if (n % 2 === 0) await sleep(Math.random() * 3);
      const dice = Math.random();
      if (dice < 0.3) {
        await this.timed('get', () => this.cache.get(key()));
      } else if (dice < 0.55) {
        const k = key();
        // Values differ in size so a torn or mixed write could not pass for the right one.
        const value = { w, n, body: `${w}:${n}:`.padEnd(16 + ((n * 97) % 3000), String.fromCharCode(97 + (n % 26))) };
        const epoch = this.epoch;
        const wrote = await this.timed('set', () => this.cache.set(k, value));
        if (wrote.ok && wrote.value === true) {
          const read = await this.timed('get', () => this.cache.get(k));
          if (read.ok) {
            const expected = JSON.stringify(value);
            const got = JSON.stringify(read.value);
            if (got === expected) this.verifiedWrites++;
            else if (!(read.value === undefined && this.epoch !== epoch)) this.violations.push({ key: k, wrote: expected.slice(0, 60), read: String(got).slice(0, 60) });
          }
        }
      } else if (dice < 0.65) {
        await this.timed('delete', () => this.cache.delete(key()));
      } else if (dice < 0.8) {
        await this.timed('getMany', () => this.cache.getMany([key(), key(), key(), key()]));
      } else if (dice < 0.92) {
        const entries = new Map<string, unknown>();
        for (let i = 0; i < 5; i++) entries.set(`w${w}:m${i}`, { w, n, i });
        await this.timed('setMany', () => this.cache.setMany(entries, { ttl: 30 }));
      } else {
        await this.timed('clearPattern', () => this.cache.clearPattern(`w${w}:m*`));
      }
    }
  }
}

export interface Figures {
  attempted: number;
  failed: number;
  maxMs: number;
  maxFaultMs: number;
  errorTypes: Record<string, number>;
  untyped: number;
}

/** Counts, longest operation overall and during the fault, and the error types seen. */
export function figures(samples: readonly Sample[]): Figures {
  const errorTypes: Record<string, number> = {};
  let untyped = 0;
  let maxMs = 0;
  let maxFaultMs = 0;
  let failed = 0;
  for (const s of samples) {
    const ms = s.end - s.start;
    maxMs = Math.max(maxMs, ms);
    if (s.phase === 'fault') maxFaultMs = Math.max(maxFaultMs, ms);
    if (s.ok) continue;
    failed++;
    const type = s.error instanceof CacheError ? `${s.error.name}/${s.error.errorType}` : `untyped:${String(s.error)}`;
    if (!(s.error instanceof CacheError)) untyped++;
    errorTypes[type] = (errorTypes[type] ?? 0) + 1;
  }
  return { attempted: samples.length, failed, maxMs, maxFaultMs, errorTypes, untyped };
}
