import type { StreamShape } from '../../src/llm/engine.js';
import { markedMetadata, restoredPart, storablePart, streamEndedWhole, type HitMark } from './stored-parts.js';

type Recorder<P> = (source: AsyncIterable<P>, shape: StreamShape<P>) => AsyncGenerator<P, void, undefined>;

/**
 * The caller's stream on a miss: upstream's parts as they arrive, recorded by
 * `record` (see `recordChunks`: stored only when read to its end and whole,
 * see `streamEndedWhole`). Cancelling it (streamText does when its consumer
 * stops) cancels upstream, and nothing is stored.
 */
export function recordedStream<P>(upstream: ReadableStream<P>, record: Recorder<P>, meta: () => unknown): ReadableStream<P> {
  const shape: StreamShape<P> = { complete: streamEndedWhole, usage: finishUsage, meta };
  return fromIterator(record(storableParts(upstream), shape), restoredPart);
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
    controller.enqueue(finish.type === 'finish' ? ({ ...part, providerMetadata: markedMetadata(finish.providerMetadata, mark) } as P) : part);
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

async function* storableParts<P>(stream: ReadableStream<P>): AsyncGenerator<P, void, undefined> {
  // Leaving this loop early (the caller cancelled) cancels upstream's stream.
  for await (const part of stream as unknown as AsyncIterable<P>) yield storablePart(part);
}

function finishUsage(parts: readonly unknown[]): unknown {
  const last = parts.at(-1) as { type?: unknown; usage?: unknown } | undefined;
  return last?.type === 'finish' ? last.usage : undefined;
}

/** A pull-driven stream over `iterator`: one part per read, `map`ped. */
function fromIterator<P>(iterator: AsyncGenerator<P, void, undefined>, map: (part: P) => P): ReadableStream<P> {
  return new ReadableStream<P>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(map(next.value));
    },
    async cancel() {
      await iterator.return();
    },
  });
}
