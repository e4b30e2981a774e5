import { defineConfig } from 'tsup';

// One entry per sub-path export. Adding `cachekit/<name>`: one line here, plus
// its line in package.json's `exports` and `typesVersions` (test/package checks
// that the three agree, and runs publint and attw on every export).
export const entries = {
  index: 'src/index.ts',
  openai: 'integrations/openai/index.ts',
  'ai-sdk': 'integrations/ai-sdk/index.ts',
  langchain: 'integrations/langchain/index.ts',
  keyv: 'integrations/keyv/index.ts',
  opentelemetry: 'src/metrics/opentelemetry.ts',
  prometheus: 'src/metrics/prometheus.ts',
};

// The `cachekit` command (package.json `bin`): built with the library, not a sub-path export.
export const binEntries = {
  cli: 'src/cli/main.ts',
};

export default defineConfig({
  entry: { ...entries, ...binEntries },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  // No source maps: dist is plain, unminified JavaScript whose stack traces
  // already read well, and the maps were 60% of the tarball.
  sourcemap: false,
  target: 'node22',
  // Peer dependencies (openai, and the SDKs of later integrations) are
  // external automatically, sub-paths (`openai/core/...`) included.
  // Shared modules go to one chunk per format, so the entries share one copy
  // of the engine; the per-call context and the stats registry are shared even
  // across copies (the ESM and CJS builds in one process) through globalThis.
  splitting: true,
});
