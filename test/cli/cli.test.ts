// The real `cachekit` binary (the built dist/cli.js, run by node as npx would)
// against the suite's Redis, plus one interactive session in a pseudo-terminal.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import type { Cache } from '../../src/core/types.js';
import { describeWith } from '../helpers/skips.js';

const root = resolve(import.meta.dirname, '../..');
let work: string;
let bin: string;
const prefix = `cli${process.pid}`;
let cache: Cache;

function cli(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', REDIS_URL: inject('redisUrl') ?? '', ...options.env }, input: options.input ?? '', timeout: 20_000 });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describeWith('redis')('the cachekit command', () => {
  beforeAll(async () => {
    // Built into a scratch folder under node_modules (so the build finds its dependencies there),
    // leaving the working tree's dist/ alone.
    mkdirSync(join(root, 'node_modules/.cache'), { recursive: true });
    work = mkdtempSync(join(root, 'node_modules/.cache/cachekit-cli-'));
    execFileSync(join(root, 'node_modules/.bin/tsup'), ['--out-dir', join(work, 'dist'), '--silent', '--no-dts'], { cwd: root });
    bin = join(work, 'dist/cli.js');
    cache = await createDragonflyCache({ url: inject('redisUrl') as string, keyPrefix: prefix });
    await cache.setMany(Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`user:${i}`, { i }])), { ttl: 600 });
    await cache.set('doc:1', { title: 'one' }, { tenantId: 'acme' });
    await cache.set('v1:support:abc', { value: { model: 'gpt-4o-mini', choices: [] }, storedAt: Date.parse('2026-11-30T10:00:00Z'), durationMs: 812, tokens: 120 });
  }, 120_000);

  afterAll(async () => {
    await cache?.clear();
    await cache?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('prints help for itself and every command, with exit code 0', () => {
    const top = cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.out).toMatch(/Commands:[\s\S]*stats[\s\S]*keys[\s\S]*inspect[\s\S]*clear[\s\S]*explain-key/);
    for (const command of ['stats', 'keys', 'inspect', 'clear', 'explain-key']) {
      const help = cli([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.out, command).toContain(`cachekit ${command}`);
    }
  });

  it('reports a bad command line in one line with exit code 2', () => {
    for (const args of [['bogus'], ['stats', '--nope'], ['inspect'], ['clear'], ['keys', 'extra']]) {
      const run = cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.err.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect(cli(['stats'], { env: { REDIS_URL: '' } }).err).toMatch(/no server given: pass --url/);
  });

  it('never shows the password of an unreachable server, and exits 1', () => {
    const run = cli(['stats', '--url', 'redis://admin:hunter2-secret@127.0.0.1:1']);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/^cachekit: could not connect to Dragonfly at 127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(run.err + run.out).not.toContain('hunter2');
  });

  it('stats prints the counters and the estimated size, and --json an object', () => {
    const text = cli(['stats', '--prefix', prefix]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/entries\s+/);
    const json = JSON.parse(cli(['stats', '--prefix', prefix, '--exact', '--json']).out) as { size: number; sizeMethod: string };
    expect(json).toMatchObject({ size: 3002, sizeMethod: 'counted' });
    expect(JSON.parse(cli(['stats', '--prefix', prefix, '--tenant', 'acme', '--exact', '--json']).out)).toMatchObject({ size: 1, sizeMethod: 'counted' });
  });

  it('stats --watch refreshes every second until interrupted', async () => {
    const child = spawn(process.execPath, [bin, 'stats', '--watch', '--json', '--prefix', prefix], { env: { PATH: process.env.PATH ?? '', REDIS_URL: inject('redisUrl') as string } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const started = Date.now();
    while (out.split('\n').filter(Boolean).length < 3 && Date.now() - started < 8000) await new Promise((r) => setTimeout(r, 50));
    const elapsed = Date.now() - started;
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    const frames = out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { at: string; size: number });
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(elapsed).toBeGreaterThanOrEqual(1800);
    expect(Date.parse(frames[2]!.at) - Date.parse(frames[0]!.at)).toBeGreaterThanOrEqual(1800);
    expect(code).toBe(0);
  });

  it('keys streams the matching keys of the scope', () => {
    const run = cli(['keys', '--prefix', prefix, '--pattern', 'user:1??']);
    expect(run.code).toBe(0);
    expect(run.out.trim().split('\n').sort()).toEqual(Array.from({ length: 100 }, (_, i) => `user:${100 + i}`).sort());
    expect(cli(['keys', '--prefix', prefix, '--tenant', 'acme', '--json']).out.trim()).toBe('"doc:1"');
  });

  it('inspect shows value, TTL, size, and for an LLM entry its model, when it was stored and the tokens it saves', () => {
    const llm = cli(['inspect', 'v1:support:abc', '--prefix', prefix]);
    expect(llm.code).toBe(0);
    expect(llm.out).toMatch(/model\s+gpt-4o-mini/);
    expect(llm.out).toMatch(/stored\s+2026-11-30T10:00:00\.000Z/);
    expect(llm.out).toMatch(/tokens saved\s+120 per hit/);
    expect(llm.out).toMatch(/ttl left\s+never expires/);
    const json = JSON.parse(cli(['inspect', 'user:7', '--prefix', prefix, '--json']).out) as { ttl: number; bytes: number; value: unknown };
    expect(json.value).toEqual({ i: 7 });
    expect(json.ttl).toBeGreaterThan(500);
    expect(json.bytes).toBeGreaterThan(0);
    expect(cli(['inspect', 'doc:1', '--prefix', prefix, '--tenant', 'acme', '--json']).code).toBe(0);
    const missing = cli(['inspect', 'doc:1', '--prefix', prefix]);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('cachekit: no live entry under "doc:1"\n');
  });

  it('clear counts first (--dry-run deletes nothing), refuses without a terminal or --yes, and deletes with --yes', () => {
    expect(cli(['clear', '--prefix', prefix, '--pattern', 'user:2*', '--dry-run']).out).toMatch(/^1111 entries matching "user:2\*" .* would be deleted \(dry run: nothing deleted\)/);
    const refused = cli(['clear', '--prefix', prefix, '--pattern', 'user:2*']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/refusing to delete 1111 entries .* pass --yes/);
    const done = JSON.parse(cli(['clear', '--prefix', prefix, '--pattern', 'user:2*', '--yes', '--json']).out) as { matched: number; deleted: number };
    expect(done).toMatchObject({ matched: 1111, deleted: 1111 });
    expect(cli(['keys', '--prefix', prefix, '--pattern', 'user:2*']).out).toBe('');
  });

  it('clear asks on a terminal, and deletes with a progress bar once answered yes (a pseudo-terminal session)', () => {
    const command = `${process.execPath} ${bin} clear --prefix ${prefix} --pattern 'user:1*'`;
    // script(1) gives the command a pseudo-terminal; the answer arrives once the prompt is up.
    const declined = spawnSync('sh', ['-c', `(sleep 1; printf 'n\\r') | script -qfc "${command}" /dev/null`], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', REDIS_URL: inject('redisUrl') as string }, timeout: 20_000 });
    expect(declined.stdout).toMatch(/Delete 1111 entries matching "user:1\*" under prefix cli\d+\? \[y\/N\]/);
    expect(declined.stdout).toContain('aborted: nothing deleted');
    const accepted = spawnSync('sh', ['-c', `(sleep 1; printf 'y\\r') | script -qfc "${command}" /dev/null`], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', REDIS_URL: inject('redisUrl') as string }, timeout: 20_000 });
    expect(accepted.stdout).toMatch(/\[█+\] 100%  1111\/1111  \d+\/s  ETA 0s/);
    expect(accepted.stdout).toMatch(/deleted 1111 entries matching "user:1\*"/);
    expect(cli(['keys', '--prefix', prefix, '--pattern', 'user:1*']).out).toBe('');
  });

  it('explain-key tells the key of a plain request or of one cachedOpenAI would send, and what was dropped', () => {
    const file = join(work, 'request.json');
    writeFileSync(file, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], user: 'u-1' }));
    const openai = JSON.parse(cli(['explain-key', file, '--for', 'openai', '--json']).out) as { key: string; dropped: string[] };
    expect(openai.key).toMatch(/^v1:openai:[0-9a-f]{64}$/);
    expect(openai.dropped).toEqual(['params.user']);
    const gateway = JSON.parse(cli(['explain-key', file, '--for', 'openai', '--base-url', 'https://gateway.example/v1', '--json']).out) as { key: string };
    expect(gateway.key).not.toBe(openai.key);
    const plain = JSON.parse(cli(['explain-key', '-', '--namespace', 'demo', '--json'], { input: '{"q":"hi"}' }).out) as { key: string; hashed: unknown };
    expect(plain).toMatchObject({ key: expect.stringMatching(/^v1:demo:/) as string, hashed: { q: 'hi' } });
    const broken = cli(['explain-key', join(work, 'absent.json')]);
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/^cachekit: cannot read .*absent\.json as JSON: ENOENT/);
  });
});
