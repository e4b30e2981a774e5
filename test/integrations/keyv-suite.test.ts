// The Keyv project's own storage-adapter suite (@keyv/test-suite 2.1, for Keyv 5),
// run on KeyvCachekit over each backend. Its parts load timekeeper, bignumber.js
// and json-bigint; the package's sqlite3 dependency is never imported by them.
import keyvTestSuite, { keyvApiTests, keyvIteratorTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import * as test from 'vitest';
import { describe } from 'vitest';
import { KeyvCachekit } from '../../integrations/keyv/index.js';
import { describeEachBackend } from '../helpers/llm-backends.js';

// The suite types `test` as its own vitest's module (a nested vitest 4); it calls only it, beforeEach and afterEach.
const vitest = test as unknown as Parameters<typeof keyvTestSuite>[0];

describeEachBackend('@keyv/test-suite', ({ cache }) => {
  const store = () => new KeyvCachekit(cache());
  describe('keyvTestSuite', () => keyvTestSuite(vitest, Keyv, store));
  describe('keyvApiTests', () => keyvApiTests(vitest, Keyv, store));
  describe('keyvValueTests', () => keyvValueTests(vitest, Keyv, store));
  describe('keyvNamespaceTest', () => keyvNamespaceTest(vitest, Keyv, store));
  describe('keyvIteratorTests', () => keyvIteratorTests(vitest, Keyv, store));
});

describeEachBackend('@keyv/test-suite in a tenant', ({ cache }) => {
  const store = () => new KeyvCachekit(cache(), { tenantId: 'acme:eu*' });
  describe('keyvTestSuite', () => keyvTestSuite(vitest, Keyv, store));
  describe('keyvIteratorTests', () => keyvIteratorTests(vitest, Keyv, store));
});
