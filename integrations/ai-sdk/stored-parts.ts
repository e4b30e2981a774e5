/**
 * How AI SDK answers become stored values and back. Two fields are converted:
 * a spec V4 file's `{ type: 'url', url: URL }` (the one class instance an
 * answer holds that the cache's encoding refuses) is stored as `{ href }`,
 * and the response timestamp (`response.timestamp`, a `response-metadata`
 * part's `timestamp`), a `Date` the encoding would keep, as epoch
 * milliseconds: nearly every answer has one, and a `Date` switches the whole
 * entry to the encoding's tagged form, which took a memory hit from 7 to 20 µs
 * (bench workload 9). Both are rebuilt on a hit. Bytes (`Uint8Array` file
 * data) are kept by the encoding itself. Anything else it refuses fails the
 * write (counted in `errors`): the call is answered, and stays uncached.
 */

import type { CacheInfo } from '../../src/llm/engine.js';

/** What `providerMetadata.cachekit` holds on an answer served from the cache. */
export interface HitMark {
  /** Always `true`: the answer came from the cache. */
  hit: true;
  /** `true` when the entry was past its ttl, within its `grace` (upstream failed, was slower than `softTimeout`, or was backing off); absent otherwise. */
  stale?: true;
  /** When the answer was stored, epoch milliseconds. */
  storedAt: number;
  /** The key it was read from (inside the tenant's scope). */
  key: string;
}

/** The mark of an answer served from the cache as a hit or a stale answer. */
export function hitMark(how: 'hit' | 'stale', storedAt: number, key: string): HitMark {
  return how === 'stale' ? { hit: true, stale: true, storedAt, key } : { hit: true, storedAt, key };
}

/** What `cacheInfo` reports for an answer carrying `mark`. */
export function infoOf(mark: HitMark): CacheInfo {
  return { status: mark.stale ? 'stale' : 'hit', storedAt: mark.storedAt, key: mark.key };
}

interface Part {
  type?: unknown;
  data?: unknown;
  timestamp?: unknown;
  providerMetadata?: Record<string, unknown> | undefined;
}

/** What the middleware stores of a `doGenerate` result (the fields it converts or reads). */
export interface GenerateResult {
  content: unknown[];
  finishReason: unknown;
  providerMetadata?: Record<string, unknown>;
  response?: { timestamp?: unknown };
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

/** A part (a content item or a stream part) as stored. Parts without a URL or a timestamp are returned as they are. */
export function storablePart<P>(part: P): P {
  const p = part as Part | null | undefined;
  if (p?.type === 'response-metadata' && p.timestamp instanceof Date) return { ...part, timestamp: p.timestamp.getTime() };
  const data = urlData(p);
  if (data === undefined || !(data.url instanceof URL)) return part;
  return { ...part, data: { ...data, url: { href: data.url.href } } };
}

/** The part as upstream gave it, from its stored form. */
export function restoredPart<P>(part: P): P {
  const p = part as Part | null | undefined;
  if (p?.type === 'response-metadata' && typeof p.timestamp === 'number') return { ...part, timestamp: new Date(p.timestamp) };
  const data = urlData(p);
  const href = (data?.url as { href?: unknown } | null | undefined)?.href;
  if (data === undefined || typeof href !== 'string' || data.url instanceof URL) return part;
  return { ...part, data: { ...data, url: new URL(href) } };
}

export function storableResult(result: GenerateResult): GenerateResult {
  const stored = { ...result, content: result.content.map(storablePart) };
  const timestamp = result.response?.timestamp;
  if (timestamp instanceof Date) stored.response = { ...result.response, timestamp: timestamp.getTime() };
  return stored;
}

export function restoredResult(stored: GenerateResult): GenerateResult {
  const result = { ...stored, content: stored.content.map(restoredPart) };
  const timestamp = stored.response?.timestamp;
  if (typeof timestamp === 'number') result.response = { ...stored.response, timestamp: new Date(timestamp) };
  return result;
}

/** A hit's result: the stored one restored, with cachekit's mark in its `providerMetadata`. */
export function hitResult(stored: GenerateResult, mark: HitMark): GenerateResult {
  return { ...restoredResult(stored), providerMetadata: markedMetadata(stored.providerMetadata, mark) };
}

/**
 * What of a `doGenerate` result `cacheInfo` answers for: its
 * `providerMetadata`, which `generateText` hands on as is (as
 * `result.providerMetadata`); the result itself when it has none.
 */
export function seenOfResult(result: GenerateResult): unknown {
  return result.providerMetadata ?? result;
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
