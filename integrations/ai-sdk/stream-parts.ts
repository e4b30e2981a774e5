import { replayChunks, type StreamShape } from '../../src/llm/engine.js';
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
 * aborted fetch errors a provider's stream.
 */
export function replayedStream<P>(parts: readonly P[], mark: HitMark, options: { paceMs?: number | undefined; signal?: AbortSignal | undefined }): ReadableStream<P> {
  const { signal } = options;
  const replayed = replayChunks(parts, options);
  const hit = (part: P): P => {
    const restored = restoredPart(part);
    const finish = restored as { type?: unknown; providerMetadata?: Record<string, unknown> };
    return finish.type === 'finish' ? ({ ...restored, providerMetadata: markedMetadata(finish.providerMetadata, mark) } as P) : restored;
  };
  return fromIterator(replayed, hit, () => (signal?.aborted ? signal.reason : undefined));
}

async function* storableParts<P>(stream: ReadableStream<P>): AsyncGenerator<P, void, undefined> {
  // Leaving this loop early (the caller cancelled) cancels upstream's stream.
  for await (const part of stream as unknown as AsyncIterable<P>) yield storablePart(part);
}

function finishUsage(parts: readonly unknown[]): unknown {
  const last = parts.at(-1) as { type?: unknown; usage?: unknown } | undefined;
  return last?.type === 'finish' ? last.usage : undefined;
}

/** A pull-driven stream over `iterator`: one part per read, `map`ped; `failure()` says whether its end is an error. */
function fromIterator<P>(iterator: AsyncGenerator<P, void, undefined>, map: (part: P) => P, failure?: () => unknown): ReadableStream<P> {
  return new ReadableStream<P>({
    async pull(controller) {
      const next = await iterator.next();
      if (!next.done) {
        controller.enqueue(map(next.value));
        return;
      }
      const reason = failure?.();
      if (reason !== undefined) controller.error(reason);
      else controller.close();
    },
    async cancel() {
      await iterator.return();
    },
  });
}
