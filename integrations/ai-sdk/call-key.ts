/**
 * What of an AI SDK call goes into its key. Everything the call options hold
 * is in the key except the fields below, which only change how the request
 * travels or who is billed and tracked, not what the model answers. A field
 * this list does not know (one a later spec version adds) is therefore in the
 * key: a false miss costs one upstream call, a false hit serves a wrong answer.
 */
export const OPTIONS_OUT_OF_KEY: ReadonlySet<string> = new Set(['abortSignal', 'headers']);

/**
 * `providerOptions` fields out of the key, by the namespace the provider reads
 * them from (`@ai-sdk/openai` reads `openai`, and `azure` for Azure): the same
 * rule as `cachedOpenAI`, identity and tracking out. `store` stays in: the AI
 * SDK's OpenAI provider asks for encrypted reasoning and sends item references
 * instead of the conversation depending on it, so it changes the answer.
 * Every other provider's options are in the key, whole.
 */
export const PROVIDER_OPTIONS_OUT_OF_KEY: Readonly<Record<string, ReadonlySet<string>>> = {
  openai: new Set(['user', 'safetyIdentifier', 'metadata', 'serviceTier', 'promptCacheKey', 'promptCacheRetention']),
  azure: new Set(['user', 'safetyIdentifier', 'metadata', 'serviceTier', 'promptCacheKey', 'promptCacheRetention']),
};

/** The model a key is for: the inner model's provider and id, as `wrapLanguageModel` hands it to the middleware. */
export interface ModelIdentity {
  /** The provider id (`openai.chat`). */
  provider: string;
  /** The model id (`gpt-4o-mini`). */
  modelId: string;
}

/** `options` without the fields out of the key; `dropped` collects their paths (for `explainKey`). */
export function keyOptions(options: Record<string, unknown>, dropped?: string[]): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const name in options) {
    const value = options[name];
    if (OPTIONS_OUT_OF_KEY.has(name)) {
      if (value !== undefined) dropped?.push(name);
    } else if (name === 'providerOptions' && value !== null && typeof value === 'object') {
      const options = keyProviderOptions(value as Record<string, unknown>, dropped);
      if (options !== undefined) kept[name] = options;
    } else {
      kept[name] = value;
    }
  }
  return kept;
}

/**
 * `providerOptions` without the fields out of the key. A namespace left empty
 * by that is left out (and `undefined` returned when nothing is left), so a
 * call whose only OpenAI options are `user` or `metadata` shares the entry of
 * a call without provider options: the provider reads both alike.
 */
function keyProviderOptions(providerOptions: Record<string, unknown>, dropped: string[] | undefined): Record<string, unknown> | undefined {
  const kept: Record<string, unknown> = {};
  let emptied = false;
  for (const namespace in providerOptions) {
    const out = Object.hasOwn(PROVIDER_OPTIONS_OUT_OF_KEY, namespace) ? PROVIDER_OPTIONS_OUT_OF_KEY[namespace] : undefined;
    const options = providerOptions[namespace];
    if (out === undefined || options === null || typeof options !== 'object') {
      kept[namespace] = options;
      continue;
    }
    const inner: Record<string, unknown> = {};
    let innerDropped = false;
    for (const name in options as Record<string, unknown>) {
      const value = (options as Record<string, unknown>)[name];
      if (!out.has(name)) inner[name] = value;
      else if (value !== undefined) {
        dropped?.push(`providerOptions.${namespace}.${name}`);
        innerDropped = true;
      }
    }
    if (innerDropped && Object.keys(inner).length === 0) emptied = true;
    else kept[namespace] = inner;
  }
  return emptied && Object.keys(kept).length === 0 ? undefined : kept;
}

/** The key input of one language model call: `doGenerate` and `doStream` answers are separate entries. */
export function callKeyInput(model: ModelIdentity, type: 'generate' | 'stream', params: Record<string, unknown>, dropped?: string[]): unknown {
  return { provider: model.provider, modelId: model.modelId, type, params: keyOptions(params, dropped) };
}

/** The key input of one embedding value: the model, the call's other options, the value. */
export function embeddingKeyInput(model: ModelIdentity, shared: Record<string, unknown>, value: unknown): unknown {
  return { provider: model.provider, modelId: model.modelId, type: 'embed', options: shared, value };
}
