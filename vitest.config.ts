import { defineConfig } from 'vitest/config';

// CACHEKIT_TEST_OPENAI=6 runs the suite against the previous openai major,
// installed beside the current one as `openai6` (package.json): every `openai`
// and `openai/...` import, in the tests and in integrations/openai, resolves there.
const openaiMajor = process.env.CACHEKIT_TEST_OPENAI;
if (openaiMajor !== undefined && openaiMajor !== '' && openaiMajor !== '6' && openaiMajor !== '7') {
  throw new Error(`CACHEKIT_TEST_OPENAI must be 6 or 7 (7 is the default), got ${JSON.stringify(openaiMajor)}`);
}

export default defineConfig({
  resolve: {
    alias: openaiMajor === '6' ? [{ find: /^openai(?=\/|$)/, replacement: 'openai6' }] : [],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
