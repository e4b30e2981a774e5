import { CacheError } from './errors.js';

/**
 * Values are stored as JSON text. Plain JSON data (the common case: objects,
 * arrays, strings, finite numbers, booleans, null) is stored as
 * `JSON.stringify` output, so reading it back is one `JSON.parse` and nothing
 * else. Values that JSON cannot carry exactly (Date, Map, Set, BigInt, typed
 * arrays, DataView and Buffer, NaN/±Infinity/-0, `undefined` array slots and
 * holes, which come back as `undefined`) switch the
 * whole value to a tagged form that starts with `~`, a character no JSON text
 * starts with.
 *
 * Object properties whose value is `undefined` are omitted, as JSON does.
 */
const TAGGED = '~';
const TAG = '\u0000ck';
const MAX_DEPTH = 512;
// From this depth down, the encoder keeps the containers above it to tell a cycle (see isPlainJson).
const TRACKED_FROM = 8;

type Tagged = { [TAG]: string; v?: unknown; k?: string };

const typedArrays: Record<string, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
};

export function encode(value: unknown): string {
  if (value === undefined) {
    throw new CacheError('undefined cannot be cached: store null to cache "nothing"', 'validation');
  }
  if (isPlainJson(value, 0, [])) return JSON.stringify(value);
  return TAGGED + JSON.stringify(toTagged(value));
}

export function decode(text: string): unknown {
  const tagged = text.charCodeAt(0) === 0x7e;
  const parsed: unknown = JSON.parse(tagged ? text.slice(1) : text);
  // Text read from a server may be data cachekit never wrote: JSON.parse (iterative in V8) accepts a
  // 100 000-deep array that then overflows the stack of whoever walks it. Nothing encode accepts nests
  // deeper than MAX_DEPTH, and a text of at most 2 * MAX_DEPTH characters cannot, so short texts skip the check.
  if (text.length > 2 * MAX_DEPTH && typeof parsed === 'object' && parsed !== null && nestsDeeper(parsed, 1, tagged ? MAX_TAGGED_JSON_DEPTH : MAX_DEPTH)) {
    throw unsupported(`stored data nested deeper than ${MAX_DEPTH} levels`);
  }
  return tagged ? fromTagged(parsed) : parsed;
}

// The tagged form wraps each Map, Set or escaped object in up to three JSON containers (`{"v":[[k,v]]}`).
const MAX_TAGGED_JSON_DEPTH = 4 * MAX_DEPTH;

/**
 * Whether the parsed JSON container `value`, at nesting level `depth`, holds containers deeper than
 * `max`. It walks the parsed value, not the text: one step per container and element instead of
 * one per character (a 2 KB chat completion is ~20 nodes and 2 000 characters; the text scan cost
 * a third of a Redis get's instructions, BENCHMARKS.md "Hot path, profiled"). It recurses at most
 * `max` levels (a few thousand frames at most), so the walk itself cannot overflow the stack.
 */
function nestsDeeper(value: object, depth: number, max: number): boolean {
  if (depth > max) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' && item !== null && nestsDeeper(item, depth + 1, max)) return true;
    }
    return false;
  }
  for (const key in value) {
    const item: unknown = (value as Record<string, unknown>)[key];
    if (typeof item === 'object' && item !== null && nestsDeeper(item, depth + 1, max)) return true;
  }
  return false;
}

function unsupported(what: string): CacheError {
  return new CacheError(`cannot cache ${what}`, 'serialization');
}

// Strings, booleans and null are checked where they are met, without a call: most of a value's
// nodes are such leaves (BENCHMARKS.md, "Hot path, profiled": second pass).
function isLeaf(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'boolean' || value === null;
}

/** Validates the whole value and tells whether plain JSON carries it exactly. */
function isPlainJson(value: unknown, depth: number, ancestors: object[]): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'bigint':
      return false;
    case 'undefined':
      return false;
    case 'function':
      throw unsupported('a function');
    case 'symbol':
      throw unsupported('a symbol');
  }
  if (value === null) return true;
  const obj = value as object;
  // depth counts from 0 at the top container, so depth MAX_DEPTH is nesting level MAX_DEPTH + 1.
  if (depth >= MAX_DEPTH) throw unsupported(`a value nested deeper than ${MAX_DEPTH} levels`);
  // A cycle nests without end, so it is met again at any depth: ancestors are kept only from
  // TRACKED_FROM levels down, sparing the shallow containers every value has (a fifth of the
  // walk of a 2 KB chat completion). A cycle is still refused as one, a few levels later.
  const tracked = depth >= TRACKED_FROM;
  if (tracked) {
    if (ancestors.includes(obj)) throw unsupported('a circular structure');
    ancestors.push(obj);
  }
  const plain = containerIsPlain(obj, depth, ancestors);
  if (tracked) ancestors.pop();
  return plain;
}

function containerIsPlain(obj: object, depth: number, ancestors: object[]): boolean {
  if (Array.isArray(obj)) {
    let plain = true;
    for (let i = 0; i < obj.length; i++) {
      const item = obj[i];
      if (isLeaf(item)) continue;
      if (item === undefined || !isPlainJson(item, depth + 1, ancestors)) plain = false;
    }
    return plain;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto === Object.prototype || proto === null) {
    let plain = true;
    for (const key in obj) {
      if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
      const item = (obj as Record<string, unknown>)[key];
      if (key === TAG) plain = false;
      if (item === undefined || isLeaf(item)) continue;
      if (!isPlainJson(item, depth + 1, ancestors)) plain = false;
    }
    return plain;
  }
  if (obj instanceof Date) return false;
  if (ArrayBuffer.isView(obj)) {
    // Decoding rebuilds the view from its constructor's name, so only the built-in classes (and Buffer) can come back.
    const name = describeClass(obj);
    if (Buffer.isBuffer(obj) || (Object.hasOwn(typedArrays, name) && typedArrays[name]?.prototype === proto)) return false;
    throw unsupported(`an instance of ${name} (a subclass of a typed array cannot be rebuilt)`);
  }
  if (obj instanceof Map || obj instanceof Set) {
    for (const item of obj instanceof Map ? [...obj.keys(), ...obj.values()] : obj.values()) {
      if (item !== undefined) isPlainJson(item, depth + 1, ancestors);
    }
    return false;
  }
  throw unsupported(`an instance of ${describeClass(obj)} (only plain objects, arrays, Date, Map, Set, BigInt and typed arrays)`);
}

function describeClass(obj: object): string {
  const name = (obj as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name ? name : 'an unknown class';
}

function base64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
}

// Runs only after isPlainJson accepted the value, so it needs no checks.
function toTagged(value: unknown): unknown {
  switch (typeof value) {
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return { [TAG]: 'n', v: Object.is(value, -0) ? '-0' : String(value) };
    case 'bigint':
      return { [TAG]: 'b', v: value.toString() };
    case 'undefined':
      return { [TAG]: 'u' };
    case 'object':
      break;
    default:
      return value;
  }
  if (value === null) return null;
  // Array.from, unlike map, visits holes: a sparse slot comes back as undefined, not null.
  if (Array.isArray(value)) return Array.from(value, (item) => toTagged(item));
  if (value instanceof Date) return { [TAG]: 'd', v: toTagged(value.getTime()) };
  if (value instanceof Map) return { [TAG]: 'm', v: [...value].map(([k, v]) => [toTagged(k), toTagged(v)]) };
  if (value instanceof Set) return { [TAG]: 's', v: [...value].map(toTagged) };
  if (Buffer.isBuffer(value)) return { [TAG]: 'B', v: base64(value) };
  if (ArrayBuffer.isView(value)) return { [TAG]: 't', k: value.constructor.name, v: base64(value) };
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.some(([k]) => k === TAG)) {
    // A user object that happens to use our tag key is escaped, so it is never mistaken for a tag.
    return { [TAG]: 'o', v: entries.map(([k, v]) => [k, toTagged(v)]) };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) defineOwn(out, k, toTagged(v));
  return out;
}

// `__proto__` must become an own property, never the prototype.
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function fromTagged(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromTagged);
  const tag = (value as Tagged)[TAG];
  if (tag === undefined) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) defineOwn(out, k, fromTagged(v));
    return out;
  }
  const v = (value as Tagged).v;
  switch (tag) {
    case 'n':
      return v === '-0' ? -0 : Number(v);
    case 'b':
      return BigInt(v as string);
    case 'u':
      return undefined;
    case 'd':
      return new Date(fromTagged(v) as number);
    case 'm':
      return new Map((v as [unknown, unknown][]).map(([k, x]) => [fromTagged(k), fromTagged(x)]));
    case 's':
      return new Set((v as unknown[]).map(fromTagged));
    case 'B':
      return Buffer.from(v as string, 'base64');
    case 't': {
      const k = (value as Tagged).k as string;
      // Own names only: `constructor` or `__proto__` from foreign data must not reach Object.
      const Ctor = Object.hasOwn(typedArrays, k) ? typedArrays[k] : undefined;
      if (!Ctor) throw new Error(`unknown typed array ${k}`);
      const bytes = Buffer.from(v as string, 'base64');
      const copy = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(copy).set(bytes);
      return new Ctor(copy);
    }
    case 'o': {
      const out: Record<string, unknown> = {};
      for (const [k, x] of v as [string, unknown][]) defineOwn(out, k, fromTagged(x));
      return out;
    }
    default:
      throw new Error(`unknown tag ${tag}`);
  }
}
