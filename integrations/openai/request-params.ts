/**
 * Which request parameters are in an OpenAI request's key. Everything the
 * caller sends is in the key except the parameters below, which change how
 * the answer is delivered, billed or logged, not what it says. A parameter
 * this list does not know (a new one from a later API version) is therefore
 * in the key: a false miss costs one upstream call, a false hit serves a wrong
 * answer.
 */
export const PARAMS_OUT_OF_KEY: ReadonlySet<string> = new Set([
  // How the answer is delivered. Streamed and non-streamed answers are still
  // separate entries: the key carries the mode. (`stream_options` is in the
  // key: `include_usage` adds a chunk with `choices: []` to the stream, so a
  // replay recorded with another value would have another shape.)
  'stream',
  // Who asked and how it is tracked: never part of the answer (litellm#2317).
  'user',
  'safety_identifier',
  'metadata',
  'store',
  // Routing and billing hints for the provider's own caches and queues.
  'service_tier',
  'prompt_cache_key',
  'prompt_cache_retention',
]);

/** The endpoints `cachedOpenAI` caches, named by their path on the client. */
export type OpenAIEndpoint = 'chat.completions' | 'completions' | 'embeddings' | 'responses';

/**
 * Request options (the SDK's second argument) that change what is sent, so a
 * call that uses them cannot be keyed by its params alone; it goes upstream
 * uncached. `timeout`, `headers`, `signal`, `maxRetries`, ... only change how
 * the request travels and are ignored.
 */
const OPTIONS_THAT_CHANGE_THE_REQUEST = ['body', 'query', 'path', 'method'] as const;

export function optionsChangeRequest(options: unknown): boolean {
  if (options === null || typeof options !== 'object') return false;
  for (const name of OPTIONS_THAT_CHANGE_THE_REQUEST) if ((options as Record<string, unknown>)[name] !== undefined) return true;
  return false;
}

/** `params` without the parameters that are out of the key (and without `omit`). */
export function keyParams(params: Record<string, unknown>, omit?: string): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const name in params) {
    if (!PARAMS_OUT_OF_KEY.has(name) && name !== omit) kept[name] = params[name];
  }
  return kept;
}

/**
 * What tells one upstream from another serving the same model name: the base
 * URL (which holds the Azure deployment when one is set) and, for Azure, the
 * API version.
 */
export function providerIdentity(client: object): string {
  const { baseURL, apiVersion } = client as { baseURL?: unknown; apiVersion?: unknown };
  const base = typeof baseURL === 'string' ? baseURL : '';
  return typeof apiVersion === 'string' && apiVersion !== '' ? `${base}?api-version=${apiVersion}` : base;
}
