import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', openai: 'integrations/openai/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['openai'],
  // Both entries must share one copy of the per-call context (AsyncLocalStorage)
  // and the stats registry, in CJS too, or withCacheControl from 'cachekit'
  // would not reach cachedOpenAI from 'cachekit/openai'.
  splitting: true,
});
