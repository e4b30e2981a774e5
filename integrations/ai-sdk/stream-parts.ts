import { markServed, type CacheInfo, type StreamShape, type UpstreamStream } from '../../src/llm/engine.js';
import { infoOf, markedMetadata, restoredPart, storablePart, streamEndedWhole, type HitMark } from './stored-parts.js';

/** How a stream's parts tell a whole answer (see `streamEndedWhole`) and report usage. */
export const STREAM_SHAPE: StreamShape<unknown> = { complete: streamEndedWhole, usage: finishUsage };

/**
 * Upstream's stream as a shared recording reads it: its parts in their
 * stored form. `cancel` cancels the provider's stream (and with it the
 * request), answering a read still waiting with the end.
 */
export function upstreamParts<P>(stream: ReadableStream<P>, aborted: () => boolean): UpstreamStream<P> {
  const reader = stream.getReader();
  async function* parts(): AsyncGenerator<P, void, undefined> {
    for (;;) {
      const next = await reader.read();
      if (next.done) return;
      yield storablePart(next.value);
    }
  }
  return { source: parts(), cancel: () => void reader.cancel().catch(() => {}), aborted };
}

/**
 * One caller's stream of a live (shared) upstream stream: its own part
 * objects, restored; cancelling it (streamText does when its consumer stops)
 * aborts `controller`, which ends this caller's reading only (upstream is
 * cancelled when no caller is left). When the call's `signal` aborts, the
 * stream errors with its reason, as an aborted fetch errors a provider's.
 * A failure upstream errors it. `hit` (a caller who joined an answer already
 * whole) marks the `finish` part as a hit would be. The stream and the
 * `finish` part's `providerMetadata` are marked for `cacheInfo`.
 */
export function liveStream<P>(
  parts: AsyncGenerator<P, void, undefined>,
  controller: AbortController,
  signal: AbortSignal | undefined,
  info: CacheInfo,
  hit: HitMark | undefined,
): ReadableStream<P> {
  const stream = new ReadableStream<P>({
    async pull(c) {
      const next = await parts.next();
      if (next.done) return signal?.aborted ? c.error(signal.reason) : c.close();
      const part = restoredPart(next.value) as { type?: unknown; providerMetadata?: Record<string, unknown> };
      if (part.type !== 'finish') return c.enqueue(part as P);
      const providerMetadata = hit === undefined ? part.providerMetadata : markedMetadata(part.providerMetadata, hit);
      markServed(providerMetadata, info);
      c.enqueue((hit === undefined ? part : { ...part, providerMetadata }) as P);
    },
    cancel() {
      controller.abort();
      void parts.return();
    },
  });
  markServed(stream, info);
  return stream;
}

/**
 * A hit's stream: the stored parts one by one, in order, `paceMs` apart when
 * given, the `finish` part marked with `providerMetadata.cachekit`. An abort
 * of the call's `abortSignal` errors it with the signal's reason, as an
 * aborted fetch errors a provider's stream. Each read is answered at once
 * from the array (no async generator, no promise per part: `replayChunks`
 * made an unpaced replay of 106 parts take about twice as long as the AI SDK's
 * own `simulateReadableStream`, bench workload 9).
 */
export function replayedStream<P>(parts: readonly P[], mark: HitMark, options: { paceMs?: number | undefined; signal?: AbortSignal | undefined }): ReadableStream<P> {
  const { paceMs, signal } = options;
  let next = 0;
  let onAbort: (() => void) | undefined;
  const step = (controller: ReadableStreamDefaultController<P>): void => {
    if (signal?.aborted) return;
    if (next === parts.length) {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      return controller.close();
    }
    const part = restoredPart(parts[next++] as P);
    const finish = part as { type?: unknown; providerMetadata?: Record<string, unknown> };
    if (finish.type !== 'finish') return controller.enqueue(part);
    const providerMetadata = markedMetadata(finish.providerMetadata, mark);
    markServed(providerMetadata, infoOf(mark));
    controller.enqueue({ ...part, providerMetadata } as P);
  };
  return new ReadableStream<P>({
    start(controller) {
      if (signal === undefined) return;
      // Erroring drops the part already queued too: the very next read fails.
      onAbort = () => controller.error(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    },
    pull(controller) {
      if (paceMs === undefined || paceMs === 0 || next === 0) return step(controller);
      return new Promise<void>((resolve) => setTimeout(resolve, paceMs)).then(() => step(controller));
    },
    cancel() {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    },
  });
}

function finishUsage(parts: readonly unknown[]): unknown {
  const last = parts.at(-1) as { type?: unknown; usage?: unknown } | undefined;
  return last?.type === 'finish' ? last.usage : undefined;
}
