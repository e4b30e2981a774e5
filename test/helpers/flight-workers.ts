import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Args, Report } from '../fixtures/flight-worker.js';

const WORKER = fileURLToPath(new URL('../fixtures/flight-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** One worker process of test/fixtures/flight-worker.ts. */
export interface FlightWorker {
  process: ChildProcess;
  /** Its report, once it exits 0; rejects with its stderr otherwise. */
  report: Promise<Report>;
}

/** Starts a worker; see test/fixtures/flight-worker.ts for what it does. */
export function startFlightWorker(args: Args): FlightWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const report = new Promise<Report>((resolve, reject) =>
    child.on('close', (code, signal) => {
      if (code === 0) resolve(JSON.parse(stdout) as Report);
      else reject(new Error(`worker ${child.pid} exited ${code ?? signal}: ${stderr}`));
    }),
  );
  // A killed worker's report is never read: its rejection must not go unhandled.
  report.catch(() => {});
  return { process: child, report };
}

/** Waits until `check` holds, polling every 10 ms, for at most `ms`. */
export async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Waits for `n` workers of `prefix` to be ready, then lets them go at once. */
export async function go(redis: Redis, prefix: string, n: number): Promise<void> {
  await until(async () => Number(await redis.get(`${prefix}:ready`)) >= n, `${n} workers to start`, 60_000);
  await redis.set(`${prefix}:go`, '1');
}

/** A local upstream every worker calls over HTTP: counts requests and when each arrived (epoch ms), answers after `delayMs`. */
export interface CountingUpstream {
  url: string;
  calls(): number;
  arrivals(): number[];
  close(): Promise<void>;
}

export async function startCountingUpstream(delayMs: number): Promise<CountingUpstream> {
  const arrivals: number[] = [];
  const server = createServer((req, res) => {
    arrivals.push(performance.timeOrigin + performance.now());
    const n = arrivals.length;
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ n }));
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => arrivals.length,
    arrivals: () => [...arrivals],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Median and p99 of `values`. */
export function percentiles(values: number[]): { median: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { median: at(0.5), p99: at(0.99) };
}
