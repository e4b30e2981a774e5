import { BaseCache } from '@langchain/core/caches';
import type { Generation } from '@langchain/core/outputs';
import * as crypto from 'node:crypto';
import type { Cache } from '../../src/core/types.js';
import {
  checkSiteOptions,
  countBypass,
  createCallSite,
  namespacedKey,
  optionNames,
  planCall,
  readCached,
  registerKeyRecipe,
  registerStats,
  siteFreshness,
  storeResult,
  type CallSite,
  type FreshnessOptions,
} from '../../src/llm/engine.js';
import { generationOf, storedGeneration, tokensOfGenerations, usageOfResult, type StoredGeneration } from './stored.js';

/**
 * Options of `new LangChainCache(options)`. `tags` and `prices` work as on
 * every wrapper (`tags` gets the generations in their stored form, each
 * message as `toDict()` gives it, then the prompt); `grace` and the other freshness options do not apply: a
 * `BaseCache` is never told that the model call after a miss failed, so
 * there is no moment to answer stale.
 */
export interface LangChainCacheOptions extends Pick<FreshnessOptions<unknown, [prompt: string]>, 'tags' | 'prices'> {
  /** Where generations are stored. Required. */
  cache: Cache;
  /** TTL of stored generations, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /** Readable key segment: keys are `v1:<namespace>:<sha256>`. Default: `'langchain-cache'`. */
  namespace?: string;
  /** Tenant whose entries are read and written; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
}

const OPTIONS = optionNames<LangChainCacheOptions>({ cache: true, ttl: true, namespace: true, tenantId: true, tags: true, prices: true });

/**
 * What `getBufferString` (the text a chat model hands a `BaseCache`) writes
 * for a content block it cannot render: `[image]`, `[audio]`, `[video]`,
 * `[file]`, `[text-plain file]`, and `[<type>]` for any other block type.
 * Two prompts that differ only inside such blocks render alike
 * (langchainjs#10092), so a prompt holding one is never served or stored.
 * The pattern also matches a user who typed `[image]`: a miss, never a false hit.
 */
const PLACEHOLDER = /\[[a-z][a-z0-9_-]*(?: file)?\]/;

// Upstream time is measured from the lookup that missed to the update that
// follows it; the map is bounded because a call that fails never updates.
const MAX_PENDING = 10_000;

/**
 * A LangChain `BaseCache` on a cachekit cache: `new ChatOpenAI({ cache: new
 * LangChainCache({ cache }) })`, or any LangChain model's `cache` option.
 * Keys hash the prompt and the model's llm string (which, for ChatOpenAI,
 * holds the API key in plain text: it is hashed, never stored). Generations
 * round-trip with their message, tool calls and `generationInfo`.
 *
 * A `BaseCache` sees only the prompt as text, so it cannot tell two images
 * apart: prompts with content placeholders are bypasses. `cachedChatModel`
 * keys on the real messages; prefer it for multimodal calls and streams.
 */
export class LangChainCache extends BaseCache<Generation[]> {
  private readonly site: CallSite<unknown>;
  private readonly namespace: string;
  private readonly started = new Map<string, number>();
  private readonly tagged: boolean;

  constructor(options: LangChainCacheOptions) {
    super();
    checkSiteOptions('LangChainCache', options, OPTIONS);
    this.namespace = options.namespace ?? 'langchain-cache';
    const { tags, prices } = siteFreshness('LangChainCache', options);
    this.site = createCallSite({
      cache: options.cache,
      ttl: options.ttl,
      tenantId: options.tenantId,
      countTokens: storedTokens,
      usage: (value) => usageOfResult({ generations: value as StoredGeneration[] }),
      namespace: this.namespace,
      tags,
      prices,
    });
    this.tagged = tags !== undefined;
    registerStats(this, this.site.stats);
    const { tenantId } = options;
    /** `explainKey(langChainCache, prompt, llmString)`. */
    registerKeyRecipe(this, ([prompt, llmKey]) =>
      typeof prompt === 'string' && PLACEHOLDER.test(prompt)
        ? { bypass: 'the prompt holds a content placeholder ([image], [audio], [file], ...): a BaseCache cannot tell such prompts apart' }
        : { input: keyInput(String(prompt), String(llmKey)), namespace: this.namespace, tenantId },
    );
  }

  /**
   * The generations stored for `prompt` and `llmKey` (what LangChain calls
   * before a model call), or `null` on a miss, a bypass, a prompt holding a
   * content placeholder, and when the cache fails.
   */
  async lookup(prompt: string, llmKey: string): Promise<Generation[] | null> {
    if (PLACEHOLDER.test(prompt)) {
      countBypass(this.site.stats);
      return null;
    }
    const key = namespacedKey(keyInput(prompt, llmKey), this.namespace);
    const hit = await readCached(this.site, planCall(this.site), key);
    if (hit === undefined || !Array.isArray(hit.value)) {
      if (this.started.size >= MAX_PENDING) this.started.clear();
      this.started.set(key, performance.now());
      return null;
    }
    return (hit.value as StoredGeneration[]).map((generation) => generationOf(generation, undefined));
  }

  /**
   * Stores the generations a model answered for `prompt` and `llmKey` (what
   * LangChain calls after a miss), in the background: it resolves at once,
   * and a write that fails is counted, never thrown.
   */
  async update(prompt: string, llmKey: string, value: Generation[]): Promise<void> {
    if (PLACEHOLDER.test(prompt)) return;
    const key = namespacedKey(keyInput(prompt, llmKey), this.namespace);
    const started = this.started.get(key);
    this.started.delete(key);
    let stored: StoredGeneration[];
    try {
      stored = value.map(storedGeneration);
    } catch {
      // A generation LangChain cannot serialize either: not stored, never a failed call.
      this.site.stats.writesDropped++;
      return;
    }
    storeResult(this.site, planCall(this.site), key, stored, started === undefined ? 0 : performance.now() - started, this.tagged ? [prompt] : []);
  }
}

/** The llm string only as a digest: ChatOpenAI's holds the API key, which must not reach `explainKey`'s output either. */
function keyInput(prompt: string, llmKey: string): { prompt: string; llm: string } {
  return { prompt, llm: crypto.hash('sha256', llmKey, 'hex') };
}

function storedTokens(value: unknown): number | undefined {
  return Array.isArray(value) ? tokensOfGenerations(value as StoredGeneration[]) : undefined;
}
