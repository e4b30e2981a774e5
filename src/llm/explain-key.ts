import { CacheError } from '../core/errors.js';
import { currentCacheControl } from './cache-control.js';
import { namespacedKey, requestKey, type RequestKeyOptions } from './request-key.js';

/** What `explainKey` tells about one call or request. */
export interface KeyExplanation {
  /** The key the entry is read from and stored under (inside the tenant's scope), or `undefined` when the call is not cached. */
  key: string | undefined;
  /** The tenant scope, when there is one (the wrapper's, or `withCacheControl`'s). */
  tenantId?: string;
  /** Exactly what was hashed: the key's input, with `undefined` properties left out as the key leaves them out. */
  hashed: unknown;
  /** Paths of the caller's fields that are not in the key (`params.user`, `options.signal`), sorted. */
  dropped: string[];
  /** Why the call goes upstream uncached, when it does. */
  bypass?: string;
  /** For wrappers that cache a call item by item (embeddings): each item's key and what it hashed, in order; `key` is then `undefined`. */
  items?: {
    /** The item's own key. */
    key: string;
    /** What was hashed for it. */
    hashed: unknown;
  }[];
}

/** How a wrapper turns one call into its key: what it hashes, under which namespace, what it leaves out. */
export type KeyRecipe = (args: unknown[], self: unknown) => RecipeResult | Promise<RecipeResult>;

export type RecipeResult =
  | { input: unknown; namespace: string; tenantId?: string | undefined; dropped?: string[] }
  | { items: unknown[]; namespace: string; tenantId?: string | undefined; dropped?: string[] }
  | { bypass: string };

// Beside the wrappers, like the stats registry, so a wrapped function keeps its exact type.
const recipes = new WeakMap<object, KeyRecipe>();

/** Makes `explainKey(target, ...args)` explain `target`'s calls. For integrations and the core wrappers. */
export function registerKeyRecipe(target: object, recipe: KeyRecipe): void {
  recipes.set(target, recipe);
}

/**
 * Which fields went into a request key and which were dropped, for a
 * puzzling miss or hit. Two forms:
 *
 * - `explainKey(cached, ...args)`: `cached` is a function a cachekit wrapper
 *   made (`gateway.generate` of a `withCache` object, a `cachedRag` query, a
 *   `memoizeTask` function, `openai.chat.completions.create` of a
 *   `cachedOpenAI` client, or what an integration documents): the key that
 *   exact call would use, honouring `withCacheControl`'s tenant. For a
 *   `@Cached` method, whose key holds the instance's identity, call it with
 *   the instance as `this`: `explainKey.call(service, Service.prototype.ask, 'q')`.
 * - `explainKey(request, { namespace? })`: anything else is a request, and the
 *   answer explains `requestKey(request, { namespace })`.
 *
 * Never calls upstream and never reads the cache (a `cachedRag` corpus
 * version function is called, hence the Promise). Rejects with a `validation`
 * CacheError for bad options, like `requestKey`.
 */
export async function explainKey(this: unknown, target: unknown, ...args: unknown[]): Promise<KeyExplanation> {
  const recipe = target !== null && (typeof target === 'object' || typeof target === 'function') ? recipes.get(target) : undefined;
  if (recipe === undefined) return explainRequest(target, args[0] as RequestKeyOptions | undefined);
  let made: RecipeResult;
  try {
    made = await recipe(args, this);
  } catch (error) {
    if (error instanceof CacheError && error.errorType === 'validation') throw error;
    // What the wrapper does too: a key function (or corpus version) that throws sends the call upstream uncached.
    return { key: undefined, hashed: undefined, dropped: [], bypass: error instanceof Error ? error.message : String(error) };
  }
  if ('bypass' in made) return { key: undefined, hashed: undefined, dropped: [], bypass: made.bypass };
  const tenantId = currentCacheControl()?.tenantId ?? made.tenantId;
  const { namespace } = made;
  let explanation: KeyExplanation;
  if ('items' in made) {
    const items = made.items.map((input) => explained(input, () => namespacedKey(input, namespace), []));
    const unkeyable = items.find((item) => item.bypass !== undefined);
    explanation = unkeyable
      ? { key: undefined, hashed: undefined, dropped: [...(made.dropped ?? [])].sort(), bypass: unkeyable.bypass as string }
      : { key: undefined, hashed: undefined, dropped: [...(made.dropped ?? [])].sort(), items: items.map((item) => ({ key: item.key as string, hashed: item.hashed })) };
  } else {
    const { input } = made;
    explanation = explained(input, () => namespacedKey(input, namespace), made.dropped ?? []);
  }
  return tenantId === undefined ? explanation : { ...explanation, tenantId };
}

function explainRequest(request: unknown, options: RequestKeyOptions | undefined): KeyExplanation {
  return explained(request, () => requestKey(request, options), []);
}

function explained(input: unknown, key: () => string, dropped: string[]): KeyExplanation {
  const absent: string[] = [];
  let hashed: unknown;
  try {
    hashed = withoutUndefined(input, '', absent);
    return { key: key(), hashed, dropped: [...dropped, ...absent].sort() };
  } catch (error) {
    if (!(error instanceof CacheError) || error.errorType !== 'serialization') throw error;
    return { key: undefined, hashed: undefined, dropped: [...dropped].sort(), bypass: error.message };
  }
}

// Plain objects and arrays copied without their undefined properties (recorded as dropped paths); anything else as it is.
function withoutUndefined(value: unknown, path: string, absent: string[]): unknown {
  if (Array.isArray(value)) return value.map((item, i) => withoutUndefined(item, `${path}[${i}]`, absent));
  if (value === null || typeof value !== 'object') return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(value)) {
    const at = path === '' ? name : `${path}.${name}`;
    if (item === undefined) absent.push(at);
    else out[name] = withoutUndefined(item, at, absent);
  }
  return out;
}
