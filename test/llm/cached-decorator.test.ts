import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transform } from 'esbuild';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../src/backends/memory.js';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import { withCacheControl } from '../../src/llm/cache-control.js';
import { Cached } from '../../src/llm/cached-decorator.js';
import { explainKey } from '../../src/llm/explain-key.js';
import { cacheStats } from '../../src/llm/wrapper-stats.js';
import type { Services } from '../fixtures/decorated-services.js';
import { describeEachBackend } from '../helpers/llm-backends.js';

// Vitest 4 transforms TypeScript with oxc, which leaves TC39 decorators
// unlowered (Node 20 cannot parse them), so the decorated classes are compiled
// here, the way users' own builds compile them: by tsc and by esbuild, with
// standard decorators and with experimentalDecorators.
type Mode = 'standard' | 'legacy';
type Compiler = 'typescript' | 'esbuild';
type Define = (cached: typeof Cached, cache: Cache, slowGate?: Promise<void>) => Services;

const fixtures = {
  services: readFileSync(new URL('../fixtures/decorated-services.ts', import.meta.url), 'utf8'),
  private: readFileSync(new URL('../fixtures/decorated-private.ts', import.meta.url), 'utf8'),
};
const outDir = mkdtempSync(join(tmpdir(), 'ck-decorators-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

async function compile(compiler: Compiler, mode: Mode): Promise<Define> {
  return ((await load(compiler, mode, 'services')) as { defineServices: Define }).defineServices;
}

async function load(compiler: Compiler, mode: Mode, name: keyof typeof fixtures): Promise<unknown> {
  const fixture = fixtures[name];
  const legacy = mode === 'legacy';
  const js =
    compiler === 'typescript'
      ? ts.transpileModule(fixture, {
          compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, experimentalDecorators: legacy, useDefineForClassFields: true },
        }).outputText
      : (await transform(fixture, { loader: 'ts', format: 'esm', target: 'es2022', tsconfigRaw: { compilerOptions: { experimentalDecorators: legacy } } })).code;
  const file = join(outDir, `${name}-${compiler}-${mode}.mjs`);
  writeFileSync(file, js);
  return import(pathToFileURL(file).href);
}

const variants: [Compiler, Mode][] = [
  ['typescript', 'standard'],
  ['typescript', 'legacy'],
  ['esbuild', 'standard'],
  ['esbuild', 'legacy'],
];

describe.each(['typescript', 'esbuild'] as const)('@Cached on a #private method, compiled by %s with standard decorators', (compiler) => {
  type Private = typeof import('../fixtures/decorated-private.js');
  let fixture: Private;
  beforeAll(async () => {
    fixture = (await load(compiler, 'standard', 'private')) as Private;
  });

  it('caches it like a public method when given a namespace', async () => {
    const cache = createMemoryCache();
    const Named = fixture.defineNamed(Cached, cache);
    const a = new Named();
    expect(await a.ask('q')).toBe('q (1)');
    expect(await a.ask('q')).toBe('q (1)');
    expect(a.calls).toBe(1);
    const keys: string[] = [];
    for await (const key of cache.keys('v1:Named.secret:*')) keys.push(key);
    expect(keys).toHaveLength(1);
    expect(await cache.get(keys[0]!)).toMatchObject({ value: 'q (1)' });
  });

  it('throws a validation CacheError when the class is defined, not on every call, without a namespace', () => {
    expect(() => fixture.defineUnnamed(Cached, createMemoryCache())).toThrow(
      expect.objectContaining({ errorType: 'validation', message: expect.stringContaining('#secret') }),
    );
  });
});

describe.each(variants)('@Cached compiled by %s with %s decorators', (compiler, mode) => {
  let define: Define;
  beforeAll(async () => {
    define = await compile(compiler, mode);
  });

  it(`receives the ${mode} decorator arguments`, () => {
    const { arity } = define(Cached, createMemoryCache());
    expect(arity).toEqual([mode === 'legacy' ? 3 : 2]);
  });

  describeEachBackend(`@Cached (${compiler}, ${mode})`, ({ cache }) => {
    it('answers a repeated call from the cache, across instances of the class', async () => {
      const { Answers } = define(Cached, cache());
      const a = new Answers();
      const b = new Answers();
      const first = await a.ask('What is AI?');
      expect(await a.ask('What is AI?')).toEqual(first);
      expect(await b.ask('What is AI?')).toEqual(first);
      expect(a.calls + b.calls).toBe(1);
      expect(cacheStats(Answers.prototype.ask)).toMatchObject({ hits: 2, misses: 1 });
    });

    it('stores under v1:<Class>.<method>:<sha256 of the identity and the arguments>', async () => {
      const c = cache();
      const { Answers } = define(Cached, c);
      const a = new Answers();
      await a.echo('hi');
      const { key, hashed } = await explainKey.call(a, Answers.prototype.echo, 'hi');
      expect(key).toMatch(/^v1:Answers\.echo:[0-9a-f]{64}$/);
      expect(hashed).toEqual({ code: expect.stringMatching(/^[0-9a-f]{16}$/), identity: {}, input: ['hi'] });
      expect(await c.get(key!)).toMatchObject({ value: 'hi' });
    });

    it('keys on the instance’s identity fields as withCache does: instances with other models never share', async () => {
      const c = cache();
      const { Llm } = define(Cached, c);
      const small = new Llm('small-model');
      const large = new Llm('large-model');
      expect(await small.generate('q')).toBe('small-model: q');
      expect(await large.generate('q')).toBe('large-model: q');
      expect(await new Llm('small-model').generate('q')).toBe('small-model: q');
      expect(small.calls + large.calls).toBe(2);
      const { key, hashed } = await explainKey.call(large, Llm.prototype.generate, 'q');
      expect(hashed).toMatchObject({ identity: { model: 'large-model' }, input: ['q'] });
      expect(key).toMatch(/^v1:Llm\.generate:/);
      expect(await c.get(key!)).toMatchObject({ value: 'large-model: q' });
    });

    it('keeps classes, methods and arguments apart', async () => {
      const { Answers, Other } = define(Cached, cache());
      const a = new Answers();
      const o = new Other();
      await a.ask('q');
      await a.echo('q');
      await a.ask('other q');
      await o.ask('q');
      expect(a.calls).toBe(3);
      expect(o.calls).toBe(1);
    });

    it('keys a subclass call under the declaring class', async () => {
      const { Answers, SubAnswers } = define(Cached, cache());
      const base = new Answers();
      const sub = new SubAnswers();
      await base.echo('q');
      await sub.echo('q');
      expect(sub.calls).toBe(0);
    });

    it('caches static methods', async () => {
      const services = define(Cached, cache());
      expect(await services.version(3)).toBe(3);
      expect(await services.version(3)).toBe(3);
      expect(services.staticCalls()).toBe(1);
    });

    it('takes the cache from this.cache when none is given', async () => {
      const c = cache();
      const { Answers } = define(Cached, createMemoryCache());
      const a = new Answers(c);
      await a.fromInstance('q');
      await a.fromInstance('q');
      expect(a.calls).toBe(1);
      expect(await c.get((await explainKey.call(a, Answers.prototype.fromInstance, 'q')).key!)).toBeDefined();
    });

    it('rejects with a validation CacheError when there is no cache to use', async () => {
      const { Answers } = define(Cached, cache());
      await expect(new Answers().fromInstance('q')).rejects.toMatchObject({ errorType: 'validation' });
    });

    it('does not cache rejections: the next call runs again', async () => {
      const { Answers } = define(Cached, cache());
      const a = new Answers();
      await expect(a.flaky('q')).rejects.toThrow('flaky failure for q');
      expect(await a.flaky('q')).toBe('q');
      expect(await a.flaky('q')).toBe('q');
      expect(a.calls).toBe(2);
    });

    it('uses a custom key function, so a trace id does not split entries', async () => {
      const { Answers } = define(Cached, cache());
      const a = new Answers();
      expect(await a.traced('q', 'trace-1')).toBe('q (trace-1)');
      expect(await a.traced('q', 'trace-2')).toBe('q (trace-1)');
      expect(a.calls).toBe(1);
    });

    it('runs concurrent identical calls once and gives every caller the result', async () => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const { Answers } = define(Cached, cache(), gate);
      const a = new Answers();
      const calls = Array.from({ length: 6 }, () => a.slow('q'));
      await sleep(20);
      open();
      expect(await Promise.all(calls)).toEqual(Array(6).fill('q'));
      expect(a.calls).toBe(1);
    });

    it('honours per-call controls', async () => {
      const { Answers } = define(Cached, cache());
      const a = new Answers();
      await a.ask('q');
      const fresh = await withCacheControl({ refresh: true }, () => a.ask('q'));
      expect(fresh.call).toBe(2);
      expect((await a.ask('q')).call).toBe(2);
    });
  });
});

describe('@Cached types', () => {
  it('type-checks on async methods under experimentalDecorators too (tsc checks the standard mode with the project)', () => {
    const program = ts.createProgram([fileURLToPath(new URL('../fixtures/decorated-services.ts', import.meta.url))], {
      experimentalDecorators: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2024.d.ts'],
      types: ['node'],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  });
});

describe('@Cached misuse', () => {
  it('throws a validation CacheError for bad options', () => {
    expect(() => Cached({ ttl: 0 })).toThrow(CacheError);
    expect(() => Cached({ cache: {} as never })).toThrow(CacheError);
    expect(() => Cached({ namespace: '' })).toThrow(CacheError);
  });

  it('refuses to decorate anything but a method', () => {
    const decorate = Cached({ cache: createMemoryCache() }) as (...args: unknown[]) => unknown;
    expect(() => decorate(undefined, { kind: 'field', name: 'x' })).toThrow(CacheError);
    expect(() => decorate({}, 'x', { get: () => 1 })).toThrow(CacheError);
  });
});
