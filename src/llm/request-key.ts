import { createHash } from 'node:crypto';
import objectHash from 'object-hash';
import { CacheError } from '../core/errors.js';

/**
 * Version of the key format. Bump it whenever the canonical encoding below
 * changes, so entries written under the old format are never misread.
 */
export const REQUEST_KEY_VERSION = 'v1';

export interface RequestKeyOptions {
  /** Readable segment placed before the hash (`v1:<namespace>:<sha256>`), e.g. a wrapper's method path. */
  namespace?: string;
}

/**
 * A deterministic cache key for any request-like value: `v1:<sha256 hex>`, or
 * `v1:<namespace>:<sha256 hex>`. Object key order does not matter, types do
 * (`1`, `"1"` and `true` differ), `undefined` properties count as absent (as
 * in JSON). SHA-256 because prompts are user-controlled: a weaker hash would
 * let one user craft a collision with another user's entry.
 *
 * Throws a `serialization` CacheError for functions, symbols and circular values.
 */
export function requestKey(value: unknown, options?: RequestKeyOptions): string {
  const text = canonical(value, []);
  const hash = createHash('sha256');
  // UTF-8 turns every lone surrogate into U+FFFD, which would let two different
  // prompts share a key; such texts are hashed as UTF-16 under another marker.
  if (text.isWellFormed()) hash.update('8').update(text, 'utf8');
  else hash.update('L').update(text, 'utf16le');
  const digest = hash.digest('hex');
  const namespace = options?.namespace;
  return namespace === undefined ? `${REQUEST_KEY_VERSION}:${digest}` : `${REQUEST_KEY_VERSION}:${namespace}:${digest}`;
}

/**
 * An unambiguous text for `value`, built for speed on large prompts: strings
 * are written length-prefixed (`s<length>:<text>`) instead of escaped, so the
 * bulk of a chat request is copied, not scanned. Every token is
 * self-delimiting (numbers end with `;`, containers with a closing bracket),
 * so two different inputs never share a text. Object keys are sorted;
 * `undefined` properties are skipped, as JSON does.
 */
export function canonical(value: unknown, ancestors: object[]): string {
  switch (typeof value) {
    case 'string':
      return `s${value.length}:${value}`;
    case 'number':
      // -0 is sent upstream as 0, so it is the same request.
      return `n${value === 0 ? 0 : value};`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `b${value};`;
    case 'undefined':
      return 'U';
    case 'function':
    case 'symbol':
      throw new CacheError(`cannot derive a key from a ${typeof value}`, 'serialization');
  }
  if (value === null) return 'N';
  const obj = value as object;
  if (ancestors.includes(obj)) throw new CacheError('cannot derive a key from a circular structure', 'serialization');
  ancestors.push(obj);
  try {
    if (Array.isArray(obj)) {
      let out = '[';
      for (let i = 0; i < obj.length; i++) out += canonical(obj[i], ancestors);
      return out + ']';
    }
    const proto = Object.getPrototypeOf(obj);
    if (proto === Object.prototype || proto === null) {
      const keys = Object.keys(obj).sort();
      let out = '{';
      for (const key of keys) {
        const item = (obj as Record<string, unknown>)[key];
        if (item !== undefined) out += `s${key.length}:${key}` + canonical(item, ancestors);
      }
      return out + '}';
    }
    if (obj instanceof Date) return `D${obj.getTime()};`;
    if (obj instanceof Map) {
      return `M{${[...obj].map(([k, v]) => canonical(k, ancestors) + canonical(v, ancestors)).sort().join('')}}`;
    }
    if (obj instanceof Set) return `S{${[...obj].map((v) => canonical(v, ancestors)).sort().join('')}}`;
    if (ArrayBuffer.isView(obj)) {
      const bytes = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64');
      return `A${canonical(obj.constructor.name, ancestors)}${canonical(bytes, ancestors)}`;
    }
    // Class instances (decorated methods' arguments): object-hash knows their shape.
    const name = String(proto?.constructor?.name ?? '');
    return `O${canonical(name, ancestors)}${canonical(objectHash(obj, { algorithm: 'sha256' }), ancestors)}`;
  } finally {
    ancestors.pop();
  }
}
