/**
 * How AI SDK answers become stored values and back. The cache's encoding keeps
 * `Date`s (a `response-metadata` timestamp) and bytes (`Uint8Array` file data)
 * as they are; a spec V4 file's `{ type: 'url', url: URL }` is the one class
 * instance an answer holds that it refuses, so its URL is stored as `{ href }`
 * and rebuilt on a hit. Anything else the encoding refuses fails the write
 * (counted in `errors`): the call is answered, and stays uncached.
 */

/** What `providerMetadata.cachekit` holds on an answer served from the cache. */
export interface HitMark {
  hit: true;
  /** When the answer was stored, epoch milliseconds. */
  storedAt: number;
  /** The key it was read from (inside the tenant's scope). */
  key: string;
}

interface Part {
  type?: unknown;
  data?: unknown;
  providerMetadata?: Record<string, unknown> | undefined;
}

interface UrlData {
  type: 'url';
  url: unknown;
}

function urlData(part: Part | null | undefined): UrlData | undefined {
  if (part == null || (part.type !== 'file' && part.type !== 'reasoning-file')) return undefined;
  const data = part.data as UrlData | null | undefined;
  return data !== null && typeof data === 'object' && data.type === 'url' ? data : undefined;
}

/** A part (a content item or a stream part) the cache's encoding can carry. Parts without a URL are returned as they are. */
export function storablePart<P>(part: P): P {
  const data = urlData(part as Part);
  if (data === undefined || !(data.url instanceof URL)) return part;
  return { ...part, data: { ...data, url: { href: data.url.href } } };
}

/** The part as upstream gave it, from its stored form. */
export function restoredPart<P>(part: P): P {
  const data = urlData(part as Part);
  const href = (data?.url as { href?: unknown } | null | undefined)?.href;
  if (data === undefined || typeof href !== 'string' || data.url instanceof URL) return part;
  return { ...part, data: { ...data, url: new URL(href) } };
}

/** `providerMetadata` with cachekit's mark added; the other providers' entries as they were. */
export function markedMetadata(providerMetadata: Record<string, unknown> | undefined, mark: HitMark): Record<string, unknown> {
  return { ...providerMetadata, cachekit: { ...mark } };
}

/**
 * Whether a finish reason ends a whole answer: not `error`, not `interrupted`
 * (`@ai-sdk/openai` 4 reports a stream that lost its completion signal so),
 * and not `other` without a raw reason (what `@ai-sdk/openai` 3 reports for
 * the same cut: the provider never said why it stopped). V3 and V4 reasons
 * are `{ unified, raw }`; any other shape is not known to be whole.
 */
export function finishedWhole(finishReason: unknown): boolean {
  const reason = finishReason as { unified?: unknown; raw?: unknown } | null | undefined;
  const unified = reason?.unified;
  if (typeof unified !== 'string' || unified === 'error' || unified === 'interrupted') return false;
  return !(unified === 'other' && reason?.raw === undefined);
}

/** Whether stream parts read to their end are a whole answer: no `error` part, and a last `finish` part that ended whole. */
export function streamEndedWhole(parts: readonly unknown[]): boolean {
  const last = parts.at(-1) as { type?: unknown; finishReason?: unknown } | undefined;
  if (last?.type !== 'finish' || !finishedWhole(last.finishReason)) return false;
  return !parts.some((part) => (part as Part).type === 'error');
}
