import type { OpenAI } from 'openai';
import { APIPromise } from 'openai/core/api-promise';

/** What a cached call settles with: the answer, and upstream's `Response` when the call went upstream. */
export interface Answer<T> {
  value: T;
  response?: Response | undefined;
}

type ResponseProps = ConstructorParameters<typeof APIPromise>[1] extends Promise<infer P> ? P : never;

/**
 * Wraps a cached call in the SDK's own `APIPromise`, so callers keep
 * `.withResponse()`, `.asResponse()` and `._thenUnwrap()` (which the SDK's
 * helpers call). A hit has no upstream response; `asResponse()` then answers
 * an empty 200 built on first use, marked `x-cachekit-cache: hit`.
 */
export function sdkPromise<T>(client: OpenAI, answer: Promise<Answer<T>>): APIPromise<T> {
  const props = answer.then((a) => {
    let response = a.response;
    return {
      value: a.value,
      get response(): Response {
        return (response ??= new Response(null, { status: 200, headers: { 'x-cachekit-cache': 'hit' } }));
      },
    };
  });
  return new APIPromise<T>(
    client,
    props as unknown as Promise<ResponseProps>,
    (_client, held) => (held as unknown as { value: T }).value as never,
  );
}
