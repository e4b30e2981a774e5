import { CacheError } from './errors.js';

// Say no instead of guessing: an option nobody reads (`defaultTTL`, `tenantID`, `{ TTL: 5 }`)
// is refused with the name the caller probably meant, and every message shows what it got.

const LONGEST_QUOTED = 40;

/**
 * The type of `value` in words, for error messages about values that must not
 * be quoted (passwords, URLs that may hold credentials): `a string`,
 * `a number`, `null`, `undefined`, `an array`, `an object`, `an instance of Map`.
 */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'object':
      break;
    case 'bigint':
      return 'a bigint';
    default:
      return `a ${typeof value}`;
  }
  if (Array.isArray(value)) return 'an array';
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return 'an object';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object';
}

/**
 * `value` as an error message shows it, with its type: `"60" (a string)`,
 * `60 (a number)`, `true (a boolean)`, `null`, `undefined`, `a function (load)`,
 * `an array`, `an object`, `an instance of Map`. Strings over 40 characters are
 * cut: `"xxxx…" (a string of 2049 characters)`. Never pass it a secret: use
 * `describeType` for passwords and URLs.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > LONGEST_QUOTED
        ? `${JSON.stringify(`${value.slice(0, LONGEST_QUOTED)}…`)} (a string of ${value.length} characters)`
        : `${JSON.stringify(value)} (a string)`;
    case 'number':
      return `${Object.is(value, -0) ? '-0' : String(value)} (a number)`;
    case 'bigint':
      return `${String(value)}n (a bigint)`;
    case 'boolean':
      return `${String(value)} (a boolean)`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return value.name ? `a function (${value.name})` : 'a function';
    default:
      return describeType(value);
  }
}

/**
 * Refuses options nobody reads, so a misspelt option fails loudly instead of
 * being ignored. Throws a `validation` CacheError whose message starts with
 * `where`:
 *
 * - `options` is `undefined`: passes (no options given).
 * - `options` is not an object (a number, a string, `null`, an array): the
 *   message shows the object form, e.g.
 *   `set: options must be an object such as { ttl: 300 }, got 300 (a number)`.
 * - a key of `options` (own or inherited, enumerable) is not in `known`:
 *   `createMemoryCache: unknown option "defaultTTL" (did you mean "defaultTtl"?)`,
 *   or the list of known options when none is close.
 *
 * It checks names only; each option's value is the caller's to check. Cost:
 * one `for…in` over `options`, nothing else on success; on a hot path call it
 * only when options were given (`if (options !== undefined) checkOptions(...)`).
 */
export function checkOptions(where: string, options: unknown, known: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new CacheError(`${where}: options must be an object such as ${example(options, known)}, got ${describeValue(options)}`, 'validation');
  }
  for (const name in options) {
    if (!known.includes(name)) throw unknownOption(where, name, known);
  }
}

function example(got: unknown, known: readonly string[]): string {
  if (typeof got === 'number' && known.includes('ttl')) return `{ ttl: ${got} }`;
  if (typeof got === 'string' && known.includes('tenantId')) return `{ tenantId: ${JSON.stringify(got.slice(0, LONGEST_QUOTED))} }`;
  return `{ ${known.join(', ')} }`;
}

function unknownOption(where: string, name: string, known: readonly string[]): CacheError {
  const shown = JSON.stringify(name.length > LONGEST_QUOTED ? `${name.slice(0, LONGEST_QUOTED)}…` : name);
  const meant = closest(name, known);
  const hint =
    meant.length === 1
      ? `did you mean "${meant[0]}"?`
      : meant.length > 1
        ? `did you mean one of ${meant.map((m) => `"${m}"`).join(', ')}?`
        : known.length === 0
          ? 'this takes no options'
          : `known options: ${known.join(', ')}`;
  return new CacheError(`${where}: unknown option ${shown} (${hint})`, 'validation');
}

/** The known names `name` was probably meant to be: same letters in another case, a typo away, or a part of one. */
function closest(name: string, known: readonly string[]): string[] {
  const lower = name.toLowerCase();
  const sameCase = known.filter((k) => k.toLowerCase() === lower);
  if (sameCase.length > 0) return sameCase;
  let best = Math.max(1, Math.floor(name.length / 3)) + 1;
  let typos: string[] = [];
  for (const k of known) {
    const d = distance(lower, k.toLowerCase());
    if (d < best) {
      best = d;
      typos = [k];
    } else if (d === best) {
      typos.push(k);
    }
  }
  if (typos.length > 0) return typos;
  if (lower.length < 3) return [];
  return known.filter((k) => {
    const l = k.toLowerCase();
    return l.includes(lower) || lower.includes(l);
  });
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((rows[i - 1] as number[])[j]! + 1, row[j - 1]! + 1, (rows[i - 1] as number[])[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (rows[i - 2] as number[])[j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length]!;
}

/**
 * The option names of an options type, for `checkOptions`, checked by the
 * compiler both ways: a name the type has and this list lacks (an option that
 * would be refused), or one it does not have, fails the build.
 */
export function optionNames<T>(names: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(names);
}
