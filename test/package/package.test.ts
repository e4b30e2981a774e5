// The package as users get it: built from the current source into a scratch
// folder, packed with `npm pack`, linted (publint, attw) and installed into
// scratch consumer projects (ESM with node16 resolution, CommonJS with node10)
// that compile and run a user's program against it. Every sub-path export is
// covered without listing it here: the list comes from package.json.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { entries } from '../../tsup.config.js';

const root = resolve(import.meta.dirname, '../..');
const fixtures = join(import.meta.dirname, 'consumer');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, unknown>;
  typesVersions: Record<string, Record<string, string[]>>;
  peerDependencies?: Record<string, string>;
};
/** Sub-paths users import: `.`, `./openai`, ... (not `./package.json`). */
const subpaths = Object.keys(pkg.exports).filter((p) => p !== './package.json');
const specifier = (subpath: string) => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`);

// The outer `npm test` hands its npm_* settings to child processes; a nested
// npm must read the user's own configuration instead.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { encoding: 'utf8', env, ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}:\n${String(result.stdout)}\n${String(result.stderr)}`);
  }
  return String(result.stdout);
}

function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

let work: string;
let tarball: string;
let packed: PackResult;
let consumer: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cachekit-package-'));
  const stage = join(work, 'stage');
  // Built into the scratch folder, so the working tree's dist/ is left alone.
  run(join(root, 'node_modules/.bin/tsup'), ['--out-dir', join(stage, 'dist'), '--silent'], { cwd: root });
  for (const file of ['package.json', 'README.md', 'LICENSE', 'BENCHMARKS.md', 'docs/SCALING.md']) cpSync(join(root, file), join(stage, file));
  packed = (JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: stage })) as [PackResult])[0];
  tarball = join(work, packed.filename);

  // One install serves both consumer projects: they sit below it.
  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  const peers = Object.keys(pkg.peerDependencies ?? {}).map((name) => `${name}@${installedVersion(name)}`);
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...peers, `typescript@${installedVersion('typescript')}`, `@types/node@${installedVersion('@types/node')}`], { cwd: consumer });
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds only what users need: dist, the README, the LICENSE, BENCHMARKS.md, docs/SCALING.md and package.json', () => {
    const paths = packed.files.map((f) => f.path).sort();
    expect(paths.filter((p) => !p.startsWith('dist/'))).toEqual(['BENCHMARKS.md', 'LICENSE', 'README.md', 'docs/SCALING.md', 'package.json']);
    expect(paths.filter((p) => p.startsWith('dist/') && !/\.(c?js|d\.c?ts)$/.test(p))).toEqual([]);
    console.log(`[package] ${packed.filename}: ${packed.files.length} files, ${(packed.size / 1024).toFixed(1)} kB packed, ${(packed.unpackedSize / 1024).toFixed(1)} kB unpacked`);
  });

  it('README links only to files the tarball holds', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string).filter((t) => !/^(https?:|mailto:|#)/.test(t));
    const shipped = new Set(packed.files.map((f) => f.path));
    expect(targets.filter((t) => !shipped.has(t.replace(/^\.\//, '').replace(/#.*$/, '')))).toEqual([]);
  });

  it('has, for every sub-path export, a build entry and a typesVersions line for node10 resolution, and nothing else', () => {
    const entryOf = (subpath: string) => (subpath === '.' ? 'index' : subpath.slice(2));
    expect(subpaths.map(entryOf).sort()).toEqual(Object.keys(entries).sort());
    for (const subpath of subpaths) {
      const name = entryOf(subpath);
      expect(pkg.exports[subpath], subpath).toEqual({ import: `./dist/${name}.js`, require: `./dist/${name}.cjs` });
    }
    expect(pkg.typesVersions).toEqual({ '*': Object.fromEntries(subpaths.filter((s) => s !== '.').map((s) => [s.slice(2), [`./dist/${s.slice(2)}.d.cts`]])) });
  });

  it('passes publint --strict', async () => {
    const { messages, pkg: linted } = await publint({ pack: { tarball: readFileSync(tarball).buffer as ArrayBuffer }, strict: true, level: 'suggestion' });
    expect(messages.map((m) => formatMessage(m, linted) ?? m.code)).toEqual([]);
  });

  it('passes attw (are the types wrong) under every resolution, node10 included, for every sub-path', () => {
    const result = spawnSync(join(root, 'node_modules/.bin/attw'), [tarball, '--format', 'json'], { encoding: 'utf8', env });
    const report = JSON.parse(result.stdout) as { analysis: { problems: unknown[]; entrypoints: Record<string, unknown> } };
    expect(Object.keys(report.analysis.entrypoints).sort()).toEqual([...subpaths, './package.json'].sort());
    expect(report.analysis.problems).toEqual([]);
    expect(result.status).toBe(0);
  });
});

describe('the installed package', () => {
  it('loads every sub-path export through import and require alike', () => {
    const script = `
      const { createRequire } = require('node:module');
      (async () => {
        for (const s of ${JSON.stringify(subpaths.map(specifier))}) {
          const esm = Object.keys(await import(s)).filter((k) => k !== 'default' && k !== 'module.exports').sort();
          const cjs = Object.keys(require(s)).sort();
          if (esm.length === 0 || JSON.stringify(esm) !== JSON.stringify(cjs)) throw new Error(s + ': ' + esm + ' vs ' + cjs);
        }
        console.log('exports ok');
      })().catch((e) => { console.error(e); process.exit(1); });`;
    expect(run(process.execPath, ['-e', script], { cwd: consumer })).toContain('exports ok');
  });

  it('installs the cachekit command (package.json bin, in the tarball), which runs from an ESM and a CommonJS project alike', () => {
    const bin = (pkg as { bin?: Record<string, string> }).bin ?? {};
    expect(Object.keys(bin)).toEqual(['cachekit']);
    expect(packed.files.map((f) => f.path)).toContain((bin.cachekit as string).replace(/^\.\//, ''));
    for (const type of ['module', 'commonjs']) {
      const dir = join(consumer, `bin-${type}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
      expect(run(join(consumer, 'node_modules/.bin/cachekit'), ['--help'], { cwd: dir })).toContain('Usage: cachekit <command>');
    }
  });

  it('shares withCacheControl and cacheStats between the ESM and CommonJS builds loaded in one process', () => {
    cpSync(join(fixtures, 'dual-package.mjs'), join(consumer, 'dual-package.mjs'));
    expect(run(process.execPath, ['dual-package.mjs'], { cwd: consumer })).toContain('dual-package ok');
  });

  const projects = {
    'an ESM TypeScript project (strict, module node16)': { type: 'module', compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
    'a CommonJS TypeScript project (strict, module commonjs: node10 resolution)': { type: 'commonjs', compilerOptions: { module: 'commonjs', esModuleInterop: true } },
  };
  it('an ai 6 project (spec V3, @ai-sdk/provider 3) type-checks cacheMiddlewareV3 with skipLibCheck off: the declarations name no V4 type', () => {
    // The declarations once imported V4 types from @ai-sdk/provider, which its major 3 lacks.
    const dir = join(work, 'ai6');
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ai6-consumer', private: true, type: 'module' }));
    const ai6 = JSON.parse(readFileSync(join(root, 'node_modules/ai6/package.json'), 'utf8')) as { version: string };
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, `ai@${ai6.version}`, `typescript@${installedVersion('typescript')}`, `@types/node@${installedVersion('@types/node')}`, '@types/json-schema'], { cwd: dir });
    writeFileSync(
      join(dir, 'main.ts'),
      [
        "import { wrapLanguageModel, type LanguageModel } from 'ai';",
        "import { cacheMiddlewareV3 } from 'cachekit/ai-sdk';",
        "import { createMemoryCache } from 'cachekit';",
        'declare const model: Exclude<LanguageModel, string>;',
        'export const cached = wrapLanguageModel({ model: model as never, middleware: cacheMiddlewareV3({ cache: createMemoryCache() }) });',
      ].join('\n'),
    );
    const compilerOptions = { strict: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', types: ['node'], noEmit: true, skipLibCheck: false };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['main.ts'] }));
    run(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', dir]);
  }, 180_000);

  for (const [label, project] of Object.entries(projects)) {
    it(`${label} type-checks a user's program (wrapped functions keep their types) and runs the guide's example`, () => {
      const dir = join(consumer, project.type);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: project.type }));
      const compilerOptions = { strict: true, target: 'ES2022', lib: ['ES2023'], types: ['node'], outDir: 'out', rootDir: '.', skipLibCheck: false, ...project.compilerOptions };
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['main.ts'] }));
      cpSync(join(fixtures, 'main.ts'), join(dir, 'main.ts'));
      run(process.execPath, [join(consumer, 'node_modules/typescript/bin/tsc'), '-p', dir]);
      const redisUrl = inject('redisUrl');
      const output = run(process.execPath, [join(dir, 'out/main.js')], { cwd: dir, env: { ...env, ...(redisUrl ? { REDIS_URL: redisUrl } : {}) } });
      expect(output).toContain('consumer ok');
    });
  }
});
