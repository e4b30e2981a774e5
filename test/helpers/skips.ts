// The one way a test declares that it needs infrastructure the machine may
// lack. Nothing is skipped in silence: each skip is noted here and listed at
// the end of the run by test/global-setup.ts. (On CI the setup fails instead
// when redis-server is missing, so these skip only on a developer's machine.)
import { appendFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, inject, it, type TestContext } from 'vitest';

/** `redis`: a Redis for the shared-server tests (REDIS_URL); `redis-server`: the binary, for tests that start their own. */
export type Requirement = 'redis' | 'redis-server';

const available: Record<Requirement, boolean> = {
  redis: inject('redisUrl') !== null,
  'redis-server': inject('redisServerInstalled'),
};

/** Whether `need` is there. Prefer `describeWith`/`itWith`, which also report the skip. */
export function has(need: Requirement): boolean {
  return available[need];
}

function note(need: Requirement, kind: 'suite' | 'test', name: string): void {
  const testPath = expect.getState().testPath;
  const file = testPath ? relative(process.cwd(), testPath) : '(unknown file)';
  appendFileSync(join(inject('skipLogDir'), `${process.pid}.jsonl`), `${JSON.stringify({ need, kind, name, file })}\n`);
}

export type SuiteDeclaration = (name: string, body: () => void) => void;
export type TestDeclaration = (name: string, body: (context: TestContext) => unknown, timeout?: number) => void;

/** `describe` when `need` is there; otherwise the suite is skipped and reported. */
export function describeWith(need: Requirement): SuiteDeclaration {
  if (available[need]) return (name, body) => describe(name, body);
  return (name, body) => {
    note(need, 'suite', name);
    describe.skip(name, body);
  };
}

/** `it` when `need` is there; otherwise the test is skipped and reported. */
export function itWith(need: Requirement): TestDeclaration {
  if (available[need]) return (name, body, timeout) => it(name, body, timeout);
  return (name, body, timeout) => {
    note(need, 'test', name);
    it.skip(name, body, timeout);
  };
}
