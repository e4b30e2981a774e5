import type { OpenAI } from 'openai';
import { APIPromise } from 'openai/core/api-promise';
import { copiesByEncoding } from '../../src/llm/engine.js';

/** What a cached call settles with: the answer, and upstream's `Response` when the call went upstream. */
export interface Answer<T> {
  value: T;
  response?: Response | undefined;
}

type ResponseProps = ConstructorParameters<typeof APIPromise>[1] extends Promise<infer P> ? P : never;

/**
 * The answer of a hit (or a stale answer): `asResponse()` gets an empty 200
 * marked `x-cachekit-cache: hit` (or `stale`), built on first use.
 */
export function fromCache<T>(value: T, how: 'hit' | 'stale' = 'hit'): Answer<T> {
  return new CachedAnswer(value, how);
}

// A class rather than an object literal with a getter: the literal costs a
// closure, a context and an accessor pair on every hit (bench workload 5).
class CachedAnswer<T> implements Answer<T> {
  private made: Response | undefined = undefined;
  constructor(
    readonly value: T,
    private readonly how: 'hit' | 'stale',
  ) {}
  get response(): Response {
    return (this.made ??= new Response(null, { status: 200, headers: { 'x-cachekit-cache': this.how } }));
  }
}

/**
 * Wraps a cached call in the SDK's own `APIPromise`, so callers keep
 * `.withResponse()`, `.asResponse()` and `._thenUnwrap()` (which the SDK's
 * helpers call). The answer stands in for the SDK's response props: only
 * `response` is read from it, by `asResponse()`.
 */
export function sdkPromise<T>(client: OpenAI, answer: Promise<Answer<T>>): APIPromise<T> {
  return new APIPromise<T>(client, answer as unknown as Promise<ResponseProps>, valueOf as never);
}

function valueOf(_client: unknown, held: Answer<unknown>): unknown {
  return held.value;
}

/**
 * Joiners get their own copy of the parsed answer. One who waited for
 * upstream shares its `Response` (headers; the body is already read); one who
 * came after the answer is answered as a hit, marked like one.
 */
export function answerCopies<T>(answer: Answer<T>): (held: boolean) => Answer<T> {
  const copy = copiesByEncoding(answer.value);
  return (held) => (held ? fromCache(copy()) : { value: copy(), response: answer.response });
}
