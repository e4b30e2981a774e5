import type { OpenAI } from 'openai';
import { APIPromise } from 'openai/core/api-promise';

/** What a cached call settles with: the answer, and upstream's `Response` when the call went upstream. */
export interface Answer<T> {
  value: T;
  response?: Response | undefined;
}

type ResponseProps = ConstructorParameters<typeof APIPromise>[1] extends Promise<infer P> ? P : never;

/** The answer of a hit: `asResponse()` gets an empty 200 marked `x-cachekit-cache: hit`, built on first use. */
export function fromCache<T>(value: T): Answer<T> {
  let response: Response | undefined;
  return {
    value,
    get response(): Response {
      return (response ??= new Response(null, { status: 200, headers: { 'x-cachekit-cache': 'hit' } }));
    },
  };
}

/**
 * Wraps a cached call in the SDK's own `APIPromise`, so callers keep
 * `.withResponse()`, `.asResponse()` and `._thenUnwrap()` (which the SDK's
 * helpers call). The answer stands in for the SDK's response props: only
 * `response` is read from it, by `asResponse()`.
 */
export function sdkPromise<T>(client: OpenAI, answer: Promise<Answer<T>>): APIPromise<T> {
  return new APIPromise<T>(client, answer as unknown as Promise<ResponseProps>, (_client, held) => (held as unknown as Answer<T>).value as never);
}
