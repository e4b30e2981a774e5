import * as crypto from 'node:crypto';
import { CacheError } from '../core/errors.js';
import { checkOptions, describeValue, optionNames } from '../core/options.js';

/**
 * Version of the key format. Bump it whenever the canonical encoding below
 * changes, so entries written under the old format are never misread.
 */
export const REQUEST_KEY_VERSION = 'v1';

/**
 * Options of `requestKey`.
 *
 * @example
 * requestKey({ model, messages }, { namespace: 'chat' }); // 'v1:chat:<sha256>'
 */
export interface RequestKeyOptions {
  /** Readable segment placed before the hash (`v1:<namespace>:<sha256>`), e.g. a wrapper's method path. */
  namespace?: string;
}

// One native call (`hash`) instead of four (createHash, two updates, digest):
// a short chat request's key took 1.9 µs the four-call way, 1.4 µs this way.

/**
 * A deterministic cache key for any request-like value: `v1:<sha256 hex>`, or
 * `v1:<namespace>:<sha256 hex>`. Object key order does not matter, types do
 * (`1`, `"1"` and `true` differ), `undefined` properties count as absent (as
 * in JSON). SHA-256 because prompts are user-controlled: a weaker hash would
 * let one user craft a collision with another user's entry.
 *
 * Keys plain data: objects (plain or null-prototype), arrays, primitives,
 * `Date`, `Map`, `Set`, typed arrays, `Buffer`, `DataView`, `ArrayBuffer`,
 * `URL`, `RegExp` and boxed primitives (exactly those classes, not
 * subclasses). Throws a `serialization` CacheError for functions, symbols,
 * circular values and any other class instance (its private state is
 * invisible, so two different instances could share a key), and never any
 * other error (a throwing getter becomes one too).
 */
export function requestKey(value: unknown, options?: RequestKeyOptions): string {
  if (options !== undefined) {
    checkOptions('requestKey', options, KEY_OPTIONS);
    const { namespace } = options;
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) {
      throw new CacheError(`requestKey: namespace must be a non-empty string, got ${describeValue(namespace)}`, 'validation');
    }
    return namespacedKey(value, namespace);
  }
  return namespacedKey(value, undefined);
}

const KEY_OPTIONS = optionNames<RequestKeyOptions>({ namespace: true });

/** `requestKey` for the wrappers, whose namespace was checked when they were made. */
export function namespacedKey(value: unknown, namespace: string | undefined): string {
  let text: string;
  try {
    text = encode(value, [], 0);
  } catch (error) {
    // A getter or a Proxy trap may throw anything; callers rely on CacheError alone.
    if (error instanceof CacheError) throw error;
    throw new CacheError(`cannot derive a key: reading the value threw ${describeError(error)}`, 'serialization', { cause: error });
  }
  let digest: string;
  // UTF-8 turns every lone surrogate into U+FFFD, which would let two different
  // prompts share a key; such texts are hashed as UTF-16 under another marker.
  // (isWellFormed is free on one-byte strings, which cannot hold surrogates.)
  if (!text.isWellFormed()) digest = crypto.createHash('sha256').update('L').update(text, 'utf16le').digest('hex');
  else digest = crypto.hash('sha256', '8' + text, 'hex');
  return namespace === undefined ? `${REQUEST_KEY_VERSION}:${digest}` : `${REQUEST_KEY_VERSION}:${namespace}:${digest}`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// Objects this shallow are not checked against their ancestors (about 0.7 µs
// of a 16 KB chat request's 34 µs; it nests 10 levels). A cycle still throws:
// it nests without end, so it is caught once the walk passes this depth.
const CYCLE_CHECK_DEPTH = 16;

// `s<length>:` for the lengths most strings have: writing the number and
// gluing three pieces for every string took a 16 KB chat request's key from
// 34 µs to 40 µs.
const STRING_PREFIX: string[] = Array.from({ length: 1024 }, (_, length) => `s${length}:`);

function encodeString(value: string): string {
  const length = value.length;
  return (length < 1024 ? (STRING_PREFIX[length] as string) : `s${length}:`) + value;
}

/**
 * An unambiguous text for `value`, built for speed on large prompts: strings
 * are written length-prefixed (`s<length>:<text>`) instead of escaped, so the
 * bulk of a chat request is copied, not scanned. Every token is
 * self-delimiting (numbers end with `;`, containers with a closing bracket),
 * so two different inputs never share a text. Object keys are sorted;
 * `undefined` properties are skipped, as JSON does.
 *
 * `ancestors[0..depth)` holds the containers above `value`; entries past
 * `depth` are stale and never read. One array per requestKey call keeps the
 * walk re-entrant (a getter may compute another key).
 */
function encode(value: unknown, ancestors: object[], depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      // -0 is sent upstream as 0, so it is the same request.
      return 'n' + (value === 0 ? 0 : value) + ';';
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return 'b' + value + ';';
    case 'undefined':
      return 'U';
    case 'function':
    case 'symbol':
      throw new CacheError(`cannot derive a key from a ${typeof value}`, 'serialization');
  }
  if (value === null) return 'N';
  const obj = value as object;
  if (depth >= CYCLE_CHECK_DEPTH) {
    for (let i = 0; i < depth; i++) {
      if (ancestors[i] === obj) throw new CacheError('cannot derive a key from a circular structure', 'serialization');
    }
  }
  ancestors[depth] = obj;
  const below = depth + 1;
  if (Array.isArray(obj)) {
    let out = '[';
    for (let i = 0; i < obj.length; i++) {
      const item: unknown = obj[i];
      out += typeof item === 'string' ? encodeString(item) : encode(item, ancestors, below);
    }
    return out + ']';
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto === Object.prototype || proto === null) {
    const record = obj as Record<string, unknown>;
    const keys = sortKeys(Object.keys(record));
    let out = '{';
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const item = record[key];
      // Appended one at a time, so '{' and a short first key merge into one flat
      // string (V8 copies concatenations under 13 characters): fewer pieces for
      // the hash to flatten. String values skip a call to encode.
      if (item !== undefined) {
        out += encodeString(key);
        out += typeof item === 'string' ? encodeString(item) : encode(item, ancestors, below);
      }
    }
    return out + '}';
  }
  return encodeOther(obj, proto, ancestors, below);
}

// sort() took a 16 KB chat request's key from 34 µs to 43 µs, mostly in its
// setup on objects of two to seven keys. Keys are distinct, and `>` compares
// UTF-16 code units as sort()'s default order does: the same order.
function sortKeys(keys: string[]): string[] {
  const n = keys.length;
  if (n > 16) return keys.sort();
  for (let i = 1; i < n; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > key) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

// Built-ins whose whole state is visible to the walk, matched by exact
// prototype: a subclass may hold state of its own (a `#private` field) that
// two instances differ by, so it is refused like any other class instance.
const VIEW_PROTOTYPES: ReadonlySet<object> = new Set(
  [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView, Buffer].map(
    (ctor) => ctor.prototype as object,
  ),
);

function encodeOther(obj: object, proto: object | null, ancestors: object[], depth: number): string {
  const inner = (item: unknown) => encode(item, ancestors, depth);
  if (proto === Date.prototype) return `D${(obj as Date).getTime()};`;
  if (proto === Map.prototype) return `M{${[...(obj as Map<unknown, unknown>)].map(([k, v]) => inner(k) + inner(v)).sort().join('')}}`;
  if (proto === Set.prototype) return `S{${[...(obj as Set<unknown>)].map(inner).sort().join('')}}`;
  if (proto !== null && VIEW_PROTOTYPES.has(proto)) {
    const view = obj as ArrayBufferView;
    const bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
    return `A${inner(view.constructor.name)}${inner(bytes)}`;
  }
  if (proto === ArrayBuffer.prototype) return `B${inner(Buffer.from(obj as ArrayBuffer).toString('base64'))}`;
  if (proto === URL.prototype) return `W${inner((obj as URL).href)}`;
  if (proto === RegExp.prototype) return `R${inner((obj as RegExp).source)}${inner((obj as RegExp).flags)}`;
  if (proto === Number.prototype || proto === String.prototype || proto === Boolean.prototype || proto === BigInt.prototype) {
    return `P${inner((obj as { valueOf(): unknown }).valueOf())}`;
  }
  // Any other instance may carry state the walk cannot see (`#private`
  // fields, closures, native handles: an AbortSignal, a Request, a Blob):
  // two instances would share a key and one caller get another's answer.
  const name = (proto as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  throw new CacheError(
    `cannot derive a key from an instance of ${typeof name === 'string' && name ? name : 'a class'}: its state may be invisible (private fields); pass a key function that returns plain data`,
    'serialization',
  );
}
