import { storeResult, type CallPlan, type CallSite } from './cached-call.js';

/** What a streamed answer is stored as: every chunk as upstream sent it, in order. */
export interface RecordedStream<C = unknown> {
  chunks: C[];
  /** The usage upstream reported in the stream, so a hit can count the tokens it saved. */
  usage?: unknown;
  /** What the integration keeps beside the chunks (an SDK's response headers), see `StreamShape.meta`. */
  meta?: unknown;
}

/** How one integration tells a whole streamed answer from a cut one, and finds its usage. */
export interface StreamShape<C> {
  /**
   * Whether `chunks`, which the source yielded to its end, are a whole answer
   * (a finish reason, a completion event). A stream cut by the server often
   * ends without an error: only its content can tell.
   */
  complete: (chunks: readonly C[]) => boolean;
  /** The usage the chunks report, if any. */
  usage?: ((chunks: readonly C[]) => unknown) | undefined;
  /**
   * What is stored beside the chunks and handed back on a hit as the
   * recording's `meta`: what the SDK returned with the stream rather than in
   * it (the AI SDK's request body and response headers). Default: nothing.
   */
  meta?: (() => unknown) | undefined;
}

/**
 * Yields `source`'s chunks as they arrive and records them. The recording is
 * stored (in the background: the caller's stream ends at once) only when the
 * source ended by itself and `shape.complete` holds: a stream that throws,
 * that the consumer leaves early (`break`, `return()`), or that `aborted()`
 * says was cut, is never stored. The duration stored runs from `started`
 * (`performance.now()` when the call went upstream) to the last chunk.
 */
export async function* recordChunks<C>(
  site: CallSite<unknown>,
  plan: CallPlan,
  key: string,
  source: AsyncIterable<C>,
  shape: StreamShape<C>,
  started: number,
  aborted: () => boolean = () => false,
): AsyncGenerator<C, void, undefined> {
  const chunks: C[] = [];
  for await (const chunk of source) {
    chunks.push(chunk);
    yield chunk;
  }
  if (aborted() || !shape.complete(chunks)) return;
  const usage = shape.usage?.(chunks);
  const meta = shape.meta?.();
  const recorded: RecordedStream<C> = usage === undefined ? { chunks } : { chunks, usage };
  if (meta !== undefined) recorded.meta = meta;
  storeResult(site, plan, key, recorded, performance.now() - started);
}

/** Whether a stored value is a recording (anything else reads as a miss). */
export function isRecording(value: unknown): value is RecordedStream {
  return value !== null && typeof value === 'object' && Array.isArray((value as RecordedStream).chunks);
}

/**
 * Yields recorded chunks one by one, as the live stream did (never merged),
 * `paceMs` apart when given, and stops as soon as the consumer does or
 * `signal` aborts.
 */
export async function* replayChunks<C>(chunks: readonly C[], options: { paceMs?: number | undefined; signal?: AbortSignal | undefined } = {}): AsyncGenerator<C, void, undefined> {
  const { paceMs, signal } = options;
  for (let i = 0; i < chunks.length; i++) {
    if (signal?.aborted) return;
    if (paceMs !== undefined && paceMs > 0 && i > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
    if (signal?.aborted) return;
    yield chunks[i] as C;
  }
}
