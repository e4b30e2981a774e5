import type { OpenAI } from 'openai';
import { Stream } from 'openai/core/streaming';
import { OpenAIError } from 'openai/error';
import { replayChunks, type RecordedStream, type StreamShape } from '../../src/llm/engine.js';
import type { OpenAIEndpoint } from './request-params.js';

/** How an endpoint's stream tells a whole answer (a finish reason, `response.completed`) and reports usage. */
export function streamShape(endpoint: OpenAIEndpoint): StreamShape<unknown> {
  return { complete: (chunks) => endedWhole(endpoint, chunks), usage: (chunks) => usageOf(endpoint, chunks) };
}

/**
 * One caller's SDK `Stream` of a live (shared) upstream stream: `controller`
 * is the caller's own, so `stream.controller.abort()` ends this stream only
 * (quietly, as the SDK's own aborted streams end); upstream is cancelled when
 * no caller is left. Iterating it twice throws, like the SDK's.
 */
export function liveStream<T>(chunks: AsyncGenerator<T, void, undefined>, controller: AbortController, client: OpenAI): Stream<T> {
  let consumed = false;
  async function* iterator(): AsyncGenerator<T> {
    if (consumed) throw new OpenAIError('Cannot iterate over a consumed stream, use `.tee()` to split the stream.');
    consumed = true;
    yield* chunks;
  }
  return new Stream(() => iterator(), controller, client);
}

/**
 * A stream that yields the recorded chunks one by one, as the SDK's own
 * stream would (never merged into one): `for await`, `tee()` and
 * `toReadableStream()` work, and iterating it twice throws, like the SDK's.
 */
export function replayStream<T>(recorded: RecordedStream<T>, client: OpenAI): Stream<T> {
  const controller = new AbortController();
  let consumed = false;
  async function* iterator(): AsyncGenerator<T> {
    if (consumed) throw new OpenAIError('Cannot iterate over a consumed stream, use `.tee()` to split the stream.');
    consumed = true;
    yield* replayChunks(recorded.chunks, { signal: controller.signal });
  }
  return new Stream(() => iterator(), controller, client);
}

// A connection closed without `[DONE]` ends the SDK's stream without an error,
// so completeness is read from the answer itself: every choice finished, or
// the Responses API announced `response.completed`.
function endedWhole(endpoint: OpenAIEndpoint, chunks: readonly unknown[]): boolean {
  if (endpoint === 'responses') return chunks.some((event) => (event as { type?: unknown }).type === 'response.completed');
  const finished = new Map<unknown, boolean>();
  for (const chunk of chunks) {
    const choices = (chunk as { choices?: unknown }).choices;
    if (!Array.isArray(choices)) continue;
    for (const choice of choices as { index?: unknown; finish_reason?: unknown }[]) {
      if (!finished.get(choice.index)) finished.set(choice.index, choice.finish_reason !== null && choice.finish_reason !== undefined);
    }
  }
  return finished.size > 0 && [...finished.values()].every(Boolean);
}

function usageOf(endpoint: OpenAIEndpoint, chunks: readonly unknown[]): unknown {
  for (let i = chunks.length - 1; i >= 0; i--) {
    const chunk = chunks[i] as { usage?: unknown; type?: unknown; response?: { usage?: unknown } };
    if (endpoint === 'responses') {
      if (chunk.type === 'response.completed') return chunk.response?.usage ?? undefined;
    } else if (chunk.usage !== null && chunk.usage !== undefined) return chunk.usage;
  }
  return undefined;
}
