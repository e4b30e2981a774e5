import type { StreamShape } from '../../src/llm/engine.js';
import type { StoredChunk } from './stored.js';

// Finish reasons that mean the answer did not end as the model meant it to:
// a stream that carries one is never stored.
const NOT_FINISHED: ReadonlySet<unknown> = new Set(['error', 'interrupted', 'cancelled', 'canceled', 'aborted']);

/**
 * Whether recorded chunks are a whole answer. LangChain ends a stream that
 * the server cut (or that an abort stopped) without an error, so only the
 * chunks can tell: one of them must carry a finish reason, in any of the
 * places providers put it (`generationInfo.finish_reason` for OpenAI chat
 * completions, `response_metadata.finish_reason`/`stop_reason`/`finishReason`
 * for others), or a Responses API `status: 'completed'`. A chunk that is not
 * an AI message chunk (`undefined` here) makes the stream unstorable.
 */
export function chunksFinished(chunks: readonly (StoredChunk | undefined)[]): boolean {
  let finished = false;
  for (const chunk of chunks) {
    if (chunk === undefined) return false;
    const reason = finishReasonOf(chunk);
    if (reason !== undefined) {
      if (NOT_FINISHED.has(reason)) return false;
      finished = true;
    }
  }
  return finished;
}

function finishReasonOf(chunk: StoredChunk): unknown {
  const info = chunk.generationInfo as { finish_reason?: unknown } | undefined;
  const meta = chunk.message.response_metadata as { finish_reason?: unknown; stop_reason?: unknown; finishReason?: unknown; status?: unknown } | undefined;
  const reason = info?.finish_reason ?? meta?.finish_reason ?? meta?.stop_reason ?? meta?.finishReason;
  if (reason !== undefined && reason !== null) return reason;
  // The Responses API: `response.completed` carries `status: 'completed'`; an incomplete one is not an answer to store.
  if (meta?.status === 'completed') return 'completed';
  if (typeof meta?.status === 'string' && meta.status !== 'in_progress') return 'interrupted';
  return undefined;
}

// Summed as LangChain concatenates chunks' `usage_metadata`; by side too, for `prices`.
function usageOfChunks(chunks: readonly (StoredChunk | undefined)[]): unknown {
  let total = 0;
  let input = 0;
  let output = 0;
  for (const chunk of chunks) {
    const usage = (chunk?.message as { usage_metadata?: { total_tokens?: unknown; input_tokens?: unknown; output_tokens?: unknown } } | undefined)?.usage_metadata;
    if (typeof usage?.total_tokens === 'number') total += usage.total_tokens;
    if (typeof usage?.input_tokens === 'number') input += usage.input_tokens;
    if (typeof usage?.output_tokens === 'number') output += usage.output_tokens;
  }
  return total > 0 ? { total_tokens: total, input_tokens: input, output_tokens: output } : undefined;
}

export const CHUNK_STREAM: StreamShape<StoredChunk | undefined> = { complete: chunksFinished, usage: usageOfChunks };

interface StreamEvent {
  event?: unknown;
  reason?: unknown;
  usage?: { total_tokens?: unknown; input_tokens?: unknown; output_tokens?: unknown };
  responseMetadata?: { status?: unknown };
}

/**
 * Whether recorded `ChatModelStreamEvent`s (the protocol of
 * `model.streamEvents(input)` without a version) are a whole answer: the
 * last event is `message-finish` with a reason (the native OpenAI streams
 * leave it out when the server never sent one), no `error` event came
 * through, and a Responses API answer completed.
 */
function eventsFinished(events: readonly unknown[]): boolean {
  const last = events.at(-1) as StreamEvent | undefined;
  if (last?.event !== 'message-finish' || last.reason === undefined || last.reason === null) return false;
  // `undefined`: an event that could not be copied.
  if (events.some((event) => event === undefined || (event as StreamEvent).event === 'error')) return false;
  const status = last.responseMetadata?.status;
  return status === undefined || status === 'completed';
}

function usageOfEvents(events: readonly unknown[]): unknown {
  const usage = (events.at(-1) as StreamEvent | undefined)?.usage;
  if (typeof usage?.total_tokens !== 'number') return undefined;
  const sides = typeof usage.input_tokens === 'number' && typeof usage.output_tokens === 'number' ? { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens } : {};
  return { total_tokens: usage.total_tokens, ...sides };
}

export const EVENT_STREAM: StreamShape<unknown> = { complete: eventsFinished, usage: usageOfEvents };
