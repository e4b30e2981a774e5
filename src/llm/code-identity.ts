import { hash } from 'node:crypto';

const digests = new WeakMap<object, string>();

/**
 * A short digest of a function's own source text, hashed into the keys of the
 * wrappers that cache a user's function (withCache, cachedRag, @Cached,
 * memoizeTask). Two different functions under one namespace and method name
 * (`run` of a Summarizer and of a Translator, two tasks named `handle`) then
 * never share an entry, and a function whose code changed starts with fresh
 * entries: a false miss costs one upstream call, a false hit serves a wrong
 * answer. What the function captures (closures, `#private` fields) and the
 * code it calls are not in it: give such wrappers a namespace or a version.
 * Made once per function.
 */
export function codeOf(fn: object): string {
  let digest = digests.get(fn);
  if (digest === undefined) {
    digest = hash('sha256', Function.prototype.toString.call(fn), 'hex').slice(0, 16);
    digests.set(fn, digest);
  }
  return digest;
}
