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
  const digest = createHash('sha256').update(canonical(value, [])).digest('hex');
  const namespace = options?.namespace;
  return namespace === undefined ? `${REQUEST_KEY_VERSION}:${digest}` : `${REQUEST_KEY_VERSION}:${namespace}:${digest}`;
}

/**
 * An unambiguous text for `value`: JSON for JSON data (strings quoted, object
 * keys sorted), and tokens that no JSON text contains for everything else
 * (`NaN`, `12n`, `Date(...)`, `Map{...}`, ...). Two different inputs never
 * share a text, so no separator or escape can make them collide.
 */
export function canonical(value: unknown, ancestors: object[]): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // -0 is sent upstream as 0, so it is the same request.
      return Number.isFinite(value) ? String(value === 0 ? 0 : value) : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'function':
    case 'symbol':
      throw new CacheError(`cannot derive a key from a ${typeof value}`, 'serialization');
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (ancestors.includes(obj)) throw new CacheError('cannot derive a key from a circular structure', 'serialization');
  ancestors.push(obj);
  try {
    if (Array.isArray(obj)) {
      let out = '[';
      for (let i = 0; i < obj.length; i++) out += (i === 0 ? '' : ',') + canonical(obj[i], ancestors);
      return out + ']';
    }
    const proto = Object.getPrototypeOf(obj);
    if (proto === Object.prototype || proto === null) {
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const item = (obj as Record<string, unknown>)[key];
        if (item === undefined) continue;
        out += (first ? '' : ',') + JSON.stringify(key) + ':' + canonical(item, ancestors);
        first = false;
      }
      return out + '}';
    }
    if (obj instanceof Date) return `Date(${obj.getTime()})`;
    if (obj instanceof Map) {
      const entries = [...obj].map(([k, v]) => canonical(k, ancestors) + '=>' + canonical(v, ancestors)).sort();
      return `Map{${entries.join(',')}}`;
    }
    if (obj instanceof Set) return `Set{${[...obj].map((v) => canonical(v, ancestors)).sort().join(',')}}`;
    if (ArrayBuffer.isView(obj)) {
      return `${obj.constructor.name}(${Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64')})`;
    }
    // Class instances (decorated methods' arguments): object-hash knows their shape.
    return `Object(${JSON.stringify(proto?.constructor?.name ?? '')},${objectHash(obj, { algorithm: 'sha256' })})`;
  } finally {
    ancestors.pop();
  }
}
