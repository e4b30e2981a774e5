import { AIMessageChunk, mapStoredMessageToChatMessage, type BaseMessage, type StoredMessage } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatGeneration, type ChatResult, type Generation } from '@langchain/core/outputs';
import type { Usage } from '../../src/llm/engine.js';

/**
 * How answers are stored: plain data, each message as LangChain's own
 * `toDict()` gives it (content, tool calls, `additional_kwargs`,
 * `response_metadata`, `usage_metadata`, id), so a hit rebuilds the same
 * message class with the same fields. LangChain's `serializeGeneration`
 * drops `generationInfo`; these keep it.
 */
export interface StoredGeneration {
  text: string;
  generationInfo?: Record<string, unknown>;
  message?: StoredMessage;
}

export interface StoredChatResult {
  generations: StoredGeneration[];
  llmOutput?: Record<string, unknown>;
}

/** A stream chunk: always an `AIMessageChunk` (a chat model streams nothing else). */
export interface StoredChunk {
  text: string;
  generationInfo?: Record<string, unknown>;
  message: StoredMessage['data'];
}

/**
 * What `response_metadata.cachekit` holds on a message answered from the
 * cache: `'hit'`, or `'stale'` for an entry past its ttl served within its
 * `grace`. Absent on an answer from upstream.
 */
export type HitMark = 'hit' | 'stale';

export function storedGeneration(generation: Generation | ChatGeneration): StoredGeneration {
  const out: StoredGeneration = { text: generation.text };
  if (generation.generationInfo !== undefined) out.generationInfo = generation.generationInfo;
  const { message } = generation as Partial<ChatGeneration>;
  if (message !== undefined) out.message = message.toDict();
  return out;
}

/** A stored generation as LangChain handed it over; `hit` marks its message `response_metadata.cachekit`. */
export function generationOf(stored: StoredGeneration, hit: HitMark | undefined): ChatGeneration {
  const generation = { text: stored.text } as ChatGeneration;
  if (stored.message !== undefined) generation.message = messageOf(stored.message, hit);
  if (stored.generationInfo !== undefined) generation.generationInfo = stored.generationInfo;
  return generation;
}

export function storedChatResult(result: ChatResult): StoredChatResult {
  const out: StoredChatResult = { generations: result.generations.map(storedGeneration) };
  if (result.llmOutput !== undefined) out.llmOutput = result.llmOutput;
  return out;
}

export function chatResultOf(stored: StoredChatResult, hit: HitMark | undefined): ChatResult {
  const result: ChatResult = { generations: stored.generations.map((generation) => generationOf(generation, hit)) };
  if (stored.llmOutput !== undefined) result.llmOutput = stored.llmOutput;
  return result;
}

function messageOf(stored: StoredMessage, hit: HitMark | undefined): BaseMessage {
  if (hit === undefined) return mapStoredMessageToChatMessage(stored);
  const data = { ...stored.data, response_metadata: { ...stored.data.response_metadata, cachekit: hit } };
  return mapStoredMessageToChatMessage({ type: stored.type, data });
}

/** A chunk as recorded, or `undefined` for one that is not an AI message chunk (the stream is then not stored). */
export function storedChunk(chunk: ChatGenerationChunk): StoredChunk | undefined {
  if (!AIMessageChunk.isInstance(chunk.message)) return undefined;
  const out: StoredChunk = { text: chunk.text, message: chunk.message.toDict().data };
  if (chunk.generationInfo !== undefined) out.generationInfo = chunk.generationInfo;
  return out;
}

/** A recorded chunk rebuilt; `hit` marks it (put on the last chunk only, so concatenated metadata holds the mark once). */
export function chunkOf(stored: StoredChunk, hit: HitMark | undefined): ChatGenerationChunk {
  const data = hit === undefined ? stored.message : { ...stored.message, response_metadata: { ...stored.message.response_metadata, cachekit: hit } };
  const fields: ConstructorParameters<typeof ChatGenerationChunk>[0] = { text: stored.text, message: new AIMessageChunk(data as never) };
  if (stored.generationInfo !== undefined) fields.generationInfo = stored.generationInfo;
  return new ChatGenerationChunk(fields);
}

/** Tokens an answer cost: the usage its messages report, else `llmOutput.tokenUsage`. */
export function tokensOfGenerations(generations: readonly StoredGeneration[], llmOutput?: Record<string, unknown>): number | undefined {
  let total = 0;
  let found = false;
  for (const generation of generations) {
    const usage = (generation.message?.data as { usage_metadata?: { total_tokens?: unknown } } | undefined)?.usage_metadata;
    if (typeof usage?.total_tokens === 'number') {
      total += usage.total_tokens;
      found = true;
    }
  }
  if (found) return total;
  const tokenUsage = (llmOutput?.tokenUsage ?? llmOutput?.estimatedTokenUsage) as { totalTokens?: unknown } | undefined;
  return typeof tokenUsage?.totalTokens === 'number' ? tokenUsage.totalTokens : undefined;
}

interface MessageUsage {
  usage_metadata?: { input_tokens?: unknown; output_tokens?: unknown };
  response_metadata?: { model_name?: unknown; model?: unknown };
}

/**
 * The prompt and completion tokens a stored answer's messages report
 * (`usage_metadata`, else `llmOutput.tokenUsage`) and the model that
 * answered (`response_metadata.model_name`), for `prices`.
 */
export function usageOfResult(result: StoredChatResult): Usage {
  let input = 0;
  let output = 0;
  let found = false;
  let model: string | undefined;
  for (const generation of result.generations) {
    const data = generation.message?.data as MessageUsage | undefined;
    const usage = data?.usage_metadata;
    if (typeof usage?.input_tokens === 'number' || typeof usage?.output_tokens === 'number') {
      input += typeof usage.input_tokens === 'number' ? usage.input_tokens : 0;
      output += typeof usage.output_tokens === 'number' ? usage.output_tokens : 0;
      found = true;
    }
    const name = data?.response_metadata?.model_name ?? data?.response_metadata?.model;
    if (model === undefined && typeof name === 'string' && name !== '') model = name;
  }
  if (!found) {
    const tokenUsage = (result.llmOutput?.tokenUsage ?? result.llmOutput?.estimatedTokenUsage) as { promptTokens?: unknown; completionTokens?: unknown } | undefined;
    if (typeof tokenUsage?.promptTokens === 'number' || typeof tokenUsage?.completionTokens === 'number') {
      input = typeof tokenUsage.promptTokens === 'number' ? tokenUsage.promptTokens : 0;
      output = typeof tokenUsage.completionTokens === 'number' ? tokenUsage.completionTokens : 0;
      found = true;
    }
  }
  const out: Usage = found ? { input, output } : {};
  if (model !== undefined) out.model = model;
  return out;
}
