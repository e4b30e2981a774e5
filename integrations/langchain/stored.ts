import { AIMessageChunk, mapStoredMessageToChatMessage, type BaseMessage, type StoredMessage } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatGeneration, type ChatResult, type Generation } from '@langchain/core/outputs';

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

/** What `response_metadata.cachekit` holds on a message answered from the cache. */
export const HIT_MARK = 'hit';

export function storedGeneration(generation: Generation | ChatGeneration): StoredGeneration {
  const out: StoredGeneration = { text: generation.text };
  if (generation.generationInfo !== undefined) out.generationInfo = generation.generationInfo;
  const { message } = generation as Partial<ChatGeneration>;
  if (message !== undefined) out.message = message.toDict();
  return out;
}

/** A stored generation as LangChain handed it over; `hit` marks its message `response_metadata.cachekit: 'hit'`. */
export function generationOf(stored: StoredGeneration, hit: boolean): ChatGeneration {
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

export function chatResultOf(stored: StoredChatResult, hit: boolean): ChatResult {
  const result: ChatResult = { generations: stored.generations.map((generation) => generationOf(generation, hit)) };
  if (stored.llmOutput !== undefined) result.llmOutput = stored.llmOutput;
  return result;
}

function messageOf(stored: StoredMessage, hit: boolean): BaseMessage {
  if (!hit) return mapStoredMessageToChatMessage(stored);
  const data = { ...stored.data, response_metadata: { ...stored.data.response_metadata, cachekit: HIT_MARK } };
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
export function chunkOf(stored: StoredChunk, hit: boolean): ChatGenerationChunk {
  const data = hit ? { ...stored.message, response_metadata: { ...stored.message.response_metadata, cachekit: HIT_MARK } } : stored.message;
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
