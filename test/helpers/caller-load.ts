const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What reached the callers of a fail-open load. */
export interface Tally {
  calls: number;
  escaped: number;
  wrong: number;
  maxMs: number;
  slowest: Record<string, number>;
  firstEscape?: unknown;
}

/** One call; resolves `true` when the answer is the right one. */
export type CheckedCall = () => Promise<boolean>;

/**
 * Concurrent callers of every named call until stopped, counting exceptions
 * that escaped, wrong answers and the slowest call per name.
 */
export function callers(calls: Record<string, CheckedCall>, perName = 3) {
  const tally: Tally = { calls: 0, escaped: 0, wrong: 0, maxMs: 0, slowest: {} };
  let running = true;
  const loops = Object.entries(calls).flatMap(([name, call]) =>
    Array.from({ length: perName }, async () => {
      while (running) {
        const start = performance.now();
        tally.calls++;
        try {
          if (!(await call())) tally.wrong++;
        } catch (error) {
          tally.escaped++;
          tally.firstEscape ??= error;
        }
        const ms = performance.now() - start;
        tally.maxMs = Math.max(tally.maxMs, ms);
        tally.slowest[name] = Math.max(tally.slowest[name] ?? 0, Math.round(ms));
        await sleep(1);
      }
    }),
  );
  return {
    tally,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
