import { CacheError } from './errors.js';
import { checkOptions, describeValue, optionNames } from './options.js';
import type { EntryOptions, ScopeOptions, SetOptions, StatsOptions } from './types.js';

/** Longest key accepted, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 2048;
/**
 * Longest pattern accepted, in UTF-16 code units: twice the longest key, so any
 * key, with every character escaped (`\*`), is a pattern that matches it.
 */
export const MAX_PATTERN_LENGTH = 2 * MAX_KEY_LENGTH;
/** Longest tenant id accepted, in UTF-16 code units. */
export const MAX_TENANT_LENGTH = 256;
/** Longest TTL accepted short of `Infinity`, in seconds (about 68 years). */
export const MAX_TTL_SECONDS = 2 ** 31 - 1;
/** Most tags one entry may carry. */
export const MAX_TAGS = 256;

/**
 * Raw keys are `g:<key>` for untenanted entries and `t:<tenant>:<key>` for a
 * tenant's, where `<tenant>` is percent-encoded down to `[A-Za-z0-9_.-]`. The
 * encoded tenant holds neither `:` nor a glob metacharacter, so a scope is a
 * literal prefix no other scope shares and no user pattern can escape.
 */
const UNTENANTED = 'g:';
const SAFE_TENANT = /^[A-Za-z0-9_.-]+$/;

// Strings with lone surrogates all encode to the same UTF-8 bytes (U+FFFD) on
// the wire, so two different keys would collide on Dragonfly: refuse them.
function checkString(what: string, value: unknown, max: number): asserts value is string {
  if (typeof value !== 'string') throw new CacheError(`${what} must be a string, got ${describeValue(value)}`, 'validation');
  if (value.length === 0) throw new CacheError(`${what} must not be empty, got "" (a string)`, 'validation');
  if (value.length > max) throw new CacheError(`${what} is longer than ${max} characters, got ${describeValue(value)}`, 'validation');
  if (!value.isWellFormed()) throw new CacheError(`${what} holds a lone surrogate (not well-formed UTF-16)`, 'validation');
}

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || !key.isWellFormed()) {
    checkString('key', key, MAX_KEY_LENGTH);
  }
}

export function checkPattern(pattern: unknown): asserts pattern is string {
  checkString('pattern', pattern, MAX_PATTERN_LENGTH);
}

/** The literal raw-key prefix of a scope. */
export function scopeOf(tenantId: string | undefined): string {
  if (tenantId === undefined) return UNTENANTED;
  checkString('tenantId', tenantId, MAX_TENANT_LENGTH);
  return `t:${SAFE_TENANT.test(tenantId) ? tenantId : encodeTenant(tenantId)}:`;
}

function encodeTenant(tenantId: string): string {
  return encodeURIComponent(tenantId).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Validates a TTL in seconds and returns it in milliseconds; `undefined` means "never expires". */
export function ttlMs(ttl: unknown, fallbackMs: number | undefined): number | undefined {
  if (ttl === undefined) return fallbackMs;
  if (typeof ttl !== 'number' || Number.isNaN(ttl) || ttl <= 0) {
    throw new CacheError(`ttl must be a positive number of seconds or Infinity, got ${describeValue(ttl)}`, 'validation');
  }
  if (ttl === Infinity) return undefined;
  if (ttl > MAX_TTL_SECONDS) throw new CacheError(`ttl must be at most ${MAX_TTL_SECONDS} seconds or Infinity, got ${describeValue(ttl)}`, 'validation');
  return Math.max(1, Math.round(ttl * 1000));
}

/** For options given at construction: `defaultTtl`. */
export function defaultTtlMs(ttl: unknown): number | undefined {
  if (ttl === undefined) return undefined;
  try {
    return ttlMs(ttl, undefined);
  } catch (error) {
    throw new CacheError((error as Error).message.replace(/^ttl/, 'defaultTtl'), 'validation');
  }
}

/** Normalizes the batch entry shapes into pairs, validating every key first. */
export function entriesOf(entries: unknown): [string, unknown][] {
  let pairs: [string, unknown][];
  if (entries instanceof Map) pairs = [...entries];
  else if (entries !== null && typeof entries === 'object' && Symbol.iterator in entries) {
    pairs = [];
    for (const pair of entries as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new CacheError(`batch entries must be [key, value] pairs, got ${Array.isArray(pair) ? `an array of length ${pair.length}` : describeValue(pair)}`, 'validation');
      }
      pairs.push([pair[0] as string, pair[1]]);
    }
  } else if (entries !== null && typeof entries === 'object') {
    pairs = Object.entries(entries);
  } else {
    throw new CacheError(`entries must be a record, a Map or an iterable of [key, value] pairs, got ${describeValue(entries)}`, 'validation');
  }
  for (const [key] of pairs) checkKey(key);
  return pairs;
}

/** Validates and deduplicates a batch of keys. */
export function keysOf(keys: unknown): string[] {
  if (keys === null || typeof keys !== 'object' || !(Symbol.iterator in keys) || typeof keys === 'string') {
    throw new CacheError(`keys must be an iterable of strings, got ${describeValue(keys)}`, 'validation');
  }
  const out = [...new Set(keys as Iterable<string>)];
  for (const key of out) checkKey(key);
  return out;
}

/**
 * Validates a tag list (as a key: non-empty, well-formed, at most
 * `MAX_KEY_LENGTH`; at most `MAX_TAGS` of them) and returns it without
 * repeats, or `undefined` for none.
 */
export function tagsOf(tags: unknown, where = 'tags'): readonly string[] | undefined {
  if (tags === undefined) return undefined;
  if (!Array.isArray(tags)) throw new CacheError(`${where} must be an array of strings, got ${describeValue(tags)}`, 'validation');
  if (tags.length === 0) return undefined;
  const unique = [...new Set(tags as unknown[])];
  if (unique.length > MAX_TAGS) throw new CacheError(`${where}: at most ${MAX_TAGS} tags, got ${unique.length}`, 'validation');
  for (const tag of unique) checkString('a tag', tag, MAX_KEY_LENGTH);
  return unique as string[];
}

/** Validates a grace period in seconds and returns it in milliseconds (0 for none). */
export function graceMs(grace: unknown, name = 'grace'): number {
  if (grace === undefined) return 0;
  if (typeof grace !== 'number' || !Number.isFinite(grace) || grace <= 0 || grace > MAX_TTL_SECONDS) {
    throw new CacheError(`${name} must be a positive finite number of seconds (at most ${MAX_TTL_SECONDS}), got ${describeValue(grace)}`, 'validation');
  }
  return Math.max(1, Math.round(grace * 1000));
}

/** The options every operation that reads or writes one scope takes. */
const SCOPE_OPTIONS = optionNames<ScopeOptions>({ tenantId: true });
/** The options of `set`, `add` and `setMany`. */
const SET_OPTIONS = optionNames<SetOptions>({ ttl: true, tenantId: true, tags: true });
/** The options of `writeEntry`. */
const ENTRY_OPTIONS = optionNames<EntryOptions>({ ttl: true, tenantId: true, tags: true, grace: true, startedAt: true });

/** Refuses anything but `{ tenantId? }` (or nothing) as the options of operation `op`. */
export function checkScopeOptions(op: string, options: unknown): void {
  if (options !== undefined) checkOptions(op, options, SCOPE_OPTIONS);
}

const STATS_OPTIONS = optionNames<StatsOptions>({ tenantId: true, exact: true });

/** Refuses anything but `{ tenantId?, exact? }` (a boolean) as the options of `stats`; whether to count exactly. */
export function checkStatsOptions(options: unknown): boolean {
  if (options === undefined) return false;
  checkOptions('stats', options, STATS_OPTIONS);
  const exact = (options as StatsOptions).exact;
  if (exact !== undefined && typeof exact !== 'boolean') throw new CacheError(`stats: exact must be true or false, got ${describeValue(exact)}`, 'validation');
  return exact === true;
}

/** Refuses anything but `{ ttl?, tenantId?, tags? }` (or nothing) as the options of operation `op`. */
export function checkSetOptions(op: string, options: unknown): void {
  if (options !== undefined) checkOptions(op, options, SET_OPTIONS);
}

/** What a write stores beside the value: validated grace (ms, 0 for none), tags and the computation's start (epoch ms). */
export interface WriteMeta {
  graceMs: number;
  tags: readonly string[] | undefined;
  startedAt: number;
}

/**
 * Validates the options of a write (`set`, `setMany`, `writeEntry`) beyond
 * the TTL, and tells what the entry carries beside its value: `undefined`
 * for a plain entry (no grace, no tags), which keeps the plain format.
 */
export function writeMetaOf(op: string, options: EntryOptions | undefined, entry: boolean): WriteMeta | undefined {
  if (options === undefined) return undefined;
  if (entry) checkOptions(op, options, ENTRY_OPTIONS);
  const tags = tagsOf(options.tags, `${op}: tags`);
  const grace = entry ? graceMs(options.grace, `${op}: grace`) : 0;
  let startedAt = Date.now();
  if (entry && options.startedAt !== undefined) {
    if (typeof options.startedAt !== 'number' || !Number.isFinite(options.startedAt)) {
      throw new CacheError(`${op}: startedAt must be epoch milliseconds, got ${describeValue(options.startedAt)}`, 'validation');
    }
    startedAt = Math.min(startedAt, options.startedAt);
  }
  if (tags === undefined && grace === 0) return undefined;
  return { graceMs: grace, tags, startedAt };
}
