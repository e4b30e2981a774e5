#!/usr/bin/env node
// What a set's encoding costs over JSON.stringify, for profilers:
//   valgrind --tool=callgrind node bench/profile-encode.mjs <encode|stringify> <n>
// encodes the 2 KB value (`twoKb`) n times after 20 000 warm-up calls; (instructions at n - at 0) / n
// is one call. `encode` is cachekit's: the validation walk (functions, symbols, cycles, depth, class
// instances refused before anything is written), then JSON.stringify. It is internal, so this
// bundles src/core/serialization.ts first (same cost at n = 0, so it cancels out).
import { buildSync } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { twoKb } from './workloads/values.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const [mode = 'encode', n = '100000'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'ck-encode-'));
const outfile = join(dir, 'serialization.mjs');
buildSync({ entryPoints: [join(here, '..', 'src', 'core', 'serialization.ts')], bundle: true, format: 'esm', platform: 'node', outfile, logLevel: 'warning' });
const { encode } = await import(pathToFileURL(outfile).href);
rmSync(dir, { recursive: true });

const calls = { encode: () => encode(twoKb), stringify: () => JSON.stringify(twoKb) };
const call = calls[mode];
if (!call) throw new Error(`unknown mode ${mode}`);
let length = 0;
for (let i = 0; i < 20_000; i++) length += call().length;
for (let i = 0; i < Number(n); i++) length += call().length;
if (length === 0) throw new Error('nothing encoded');
