/**
 * The AI SDK shapes cachekit's public signatures name, declared here rather
 * than imported from `@ai-sdk/provider`: its major 3 (with `ai` 6) has no V4
 * types and its major 4 (with `ai` 7) may drop V3 ones, and a declaration
 * file that imports a missing type fails every user's type check. Typed
 * loosely on purpose: each is assignable to the SDK's own middleware or
 * model type of its spec, which is all a caller does with it.
 */

/** A language model middleware of spec `V` (`'v4'` for `ai` 7, `'v3'` for `ai` 6), for `wrapLanguageModel({ model, middleware })`. */
export interface CacheLanguageModelMiddleware<V extends 'v3' | 'v4'> {
  /** The spec the middleware is typed for, as `wrapLanguageModel` checks it. */
  readonly specificationVersion: V;
  // `any`: the hooks receive the spec's own call options and model, which differ between V3 and V4.
  /** Caches `doGenerate`: `wrapLanguageModel` calls it for `generateText` and `generateObject`. */
  wrapGenerate: (options: any) => PromiseLike<any>;
  /** Caches `doStream`: `wrapLanguageModel` calls it for `streamText` and `streamObject`. */
  wrapStream: (options: any) => PromiseLike<any>;
}

/** What `cachedEmbeddingModel` needs of an embedding model of either spec. */
export interface EmbeddingModelLike {
  /** The provider id (`openai.embedding`), in every value's key. */
  readonly provider: string;
  /** The model id (`text-embedding-3-small`), in every value's key. */
  readonly modelId: string;
  /** Embeds `options.values` in one upstream call. */
  doEmbed(options: any): PromiseLike<any>;
}
