import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const testDir = import.meta.dirname;
// The helper itself, and this file, which names the patterns it forbids.
const allowed = new Set(['helpers/skips.ts', 'skips.test.ts']);
const skipCall = /\b(?:describe|it|test|suite)\s*\.\s*(?:skip|skipIf|runIf)\b|\b(?:xit|xdescribe)\s*\(|\.skip\(\s*\)/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(ts|mts|cts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

describe('skipping tests', () => {
  it('goes through describeWith/itWith (test/helpers/skips.ts), which report every skip, never skip/skipIf/runIf directly', () => {
    const offenders: string[] = [];
    for (const file of sources(testDir)) {
      const name = relative(testDir, file);
      if (allowed.has(name)) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (skipCall.test(line)) offenders.push(`test/${name}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
