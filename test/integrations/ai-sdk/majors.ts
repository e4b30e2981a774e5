// The two AI SDK majors cachekit/ai-sdk supports, behind one shape, so each
// behaviour is specified once and checked on both: `ai` 7 (spec V4, with
// `@ai-sdk/openai` 4) and `ai` 6 (spec V3, with `@ai-sdk/openai` 3). The `ai`
// 6 functions are typed as `ai` 7's: the calls the tests make are the same.
import { createOpenAI as createOpenAI4 } from '@ai-sdk/openai';
import { createOpenAI as createOpenAI3 } from '@ai-sdk/openai3';
import * as ai7 from 'ai';
import * as ai7test from 'ai/test';
import * as ai6 from 'ai6';
import * as ai6test from 'ai6/test';
import { cacheMiddleware, cacheMiddlewareV3, type CacheMiddlewareOptions } from '../../../integrations/ai-sdk/index.js';

export type Ai = typeof ai7;
type LanguageModel = ai7test.MockLanguageModelV4;
type EmbeddingModel = ai7test.MockEmbeddingModelV4;

export interface Major {
  label: string;
  spec: 'v3' | 'v4';
  ai: Ai;
  middleware(options: CacheMiddlewareOptions): ai7.LanguageModelMiddleware;
  /** The major's own mock language model (`MockLanguageModelV4` / `V3`). */
  mockModel(options: ConstructorParameters<typeof ai7test.MockLanguageModelV4>[0]): LanguageModel;
  /** The major's own mock embedding model. */
  mockEmbedding(options: ConstructorParameters<typeof ai7test.MockEmbeddingModelV4>[0]): EmbeddingModel;
  /** `@ai-sdk/openai` of the major's line, for the local wire server. */
  openai(baseURL: string): ReturnType<typeof createOpenAI4>;
  /** A generated file's data in the major's spec: bytes. */
  bytes(data: Uint8Array): unknown;
  /** A generated file's data given by URL, in specs that have one (V4). */
  url?(url: URL): unknown;
}

export const majors: Major[] = [
  {
    label: 'ai 7 (spec V4)',
    spec: 'v4',
    ai: ai7,
    middleware: cacheMiddleware,
    mockModel: (options) => new ai7test.MockLanguageModelV4(options),
    mockEmbedding: (options) => new ai7test.MockEmbeddingModelV4(options),
    openai: (baseURL) => createOpenAI4({ baseURL, apiKey: 'test' }),
    bytes: (data) => ({ type: 'data', data }),
    url: (url) => ({ type: 'url', url }),
  },
  {
    label: 'ai 6 (spec V3)',
    spec: 'v3',
    ai: ai6 as unknown as Ai,
    middleware: (options) => cacheMiddlewareV3(options) as unknown as ai7.LanguageModelMiddleware,
    mockModel: (options) => new ai6test.MockLanguageModelV3(options as never) as unknown as LanguageModel,
    mockEmbedding: (options) => new ai6test.MockEmbeddingModelV3(options as never) as unknown as EmbeddingModel,
    openai: (baseURL) => createOpenAI3({ baseURL, apiKey: 'test' }) as unknown as ReturnType<typeof createOpenAI4>,
    bytes: (data) => data,
  },
];

export const usage = { inputTokens: { total: 3, noCache: 3, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 2, text: 2, reasoning: 0 } };
export const stop = { unified: 'stop', raw: 'stop' } as const;

/** Reads a stream to its end. */
export async function readAll<T>(stream: ReadableStream<T>): Promise<T[]> {
  const parts: T[] = [];
  for await (const part of stream as unknown as AsyncIterable<T>) parts.push(part);
  return parts;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lets the background write of a miss land. */
export const settled = () => sleep(20);
