import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { BaseLanguageModelInput } from '@langchain/core/language_models/base';
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import { RunnableBinding } from '@langchain/core/runnables';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import {
  cachedCall,
  checkSiteOptions,
  copiesByEncoding,
  countBypass,
  createCallSite,
  isRecording,
  namespacedKey,
  optionNames,
  planCall,
  readCached,
  recordChunks,
  registerKeyRecipe,
  registerStats,
  replayChunks,
  type CallSite,
  type KeyRecipe,
  type StreamShape,
} from '../../src/llm/engine.js';
import { CHAT_FIELDS_OUT_OF_KEY, chatKeyInput, droppedOptions, type ChatMode } from './key-input.js';
import { chatResultOf, chunkOf, storedChatResult, storedChunk, tokensOfGenerations, type StoredChatResult, type StoredChunk } from './stored.js';
import { CHUNK_STREAM, EVENT_STREAM } from './stream-shape.js';

export interface CachedChatModelOptions {
  /** Where answers are stored. Required. */
  cache: Cache;
  /** TTL of stored answers, in seconds (`Infinity`: never expires). Default: the cache's `defaultTtl`. */
  ttl?: number;
  /**
   * Readable key segment: keys are `v1:<namespace>:<sha256>`, so
   * `cache.clearPattern('v1:<namespace>:*')` drops this wrapper's entries.
   * Models share entries only with the same namespace, model identity and
   * call. Default: `'langchain-chat'`.
   */
  namespace?: string;
  /** Tenant whose entries the model reads and writes; `withCacheControl({ tenantId })` overrides it per call. Default: untenanted. */
  tenantId?: string;
}

const OPTIONS = optionNames<CachedChatModelOptions>({ cache: true, ttl: true, namespace: true, tenantId: true });

/** One `cachedChatModel` call's state, shared by every model derived from it (`withConfig`, `bindTools`, ...). */
interface Wrapping {
  /** `invoke`/`batch`: a `ChatResult`. */
  generate: CallSite<unknown>;
  /** `stream`, `streamEvents`: recordings. */
  streams: CallSite<unknown>;
  namespace: string;
  tenantId: string | undefined;
  wrappers: WeakSet<object>;
}

type Hooks = {
  _generate(messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun): Promise<ChatResult>;
  _streamResponseChunks(messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun): AsyncGenerator<ChatGenerationChunk>;
  _streamChatModelEvents(messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun): AsyncGenerator<unknown>;
  _combineCallOptions?: (options: unknown) => Record<string, unknown>;
  bindTools?: (tools: unknown[], kwargs?: unknown) => unknown;
};

const BASE = BaseChatModel.prototype as unknown as Hooks;

/**
 * Caches a LangChain chat model's answers, keyed on the full messages and
 * call options (not the text rendering LangChain's own cache keys on), and
 * returns a model of the same type: `invoke`, `batch`, `generate`, `stream`,
 * `streamEvents` (every version), and callbacks work as before. Accepts a
 * `BaseChatModel` or a `RunnableBinding` of one (`model.bindTools(tools)` of
 * models that bind that way); models derived from the wrapper (`withConfig`,
 * `bindTools`, `withStructuredOutput`) are cached too, with the same counters.
 *
 * Read the counters with `cacheStats(wrapped)`; per-call controls come from
 * `withCacheControl`. A failing cache never fails a call: it counts an error
 * and the call goes upstream. Bad options throw a `validation` CacheError here.
 */
export function cachedChatModel<M extends object>(model: M, options: CachedChatModelOptions): M {
  checkSiteOptions('cachedChatModel', options, OPTIONS);
  if (!isChatModel(model) && !(RunnableBinding.isRunnableBinding(model) && boundModel(model) !== undefined)) {
    throw new CacheError('cachedChatModel: model must be a LangChain chat model (a BaseChatModel) or a RunnableBinding of one', 'validation');
  }
  const namespace = options.namespace ?? 'langchain-chat';
  const generate = createCallSite({ cache: options.cache, ttl: options.ttl, tenantId: options.tenantId, namespace, shouldCache: completedResult, countTokens: resultTokens });
  const streams = createCallSite({ cache: options.cache, ttl: options.ttl, tenantId: options.tenantId, namespace }, { stats: generate.stats, flights: generate.flights });
  const wrapping: Wrapping = { generate, streams, namespace, tenantId: options.tenantId, wrappers: new WeakSet() };
  return adopt(model, wrapping) as M;
}

/**
 * Why a prototype-chained copy rather than a Proxy or a subclass: LangChain
 * funnels every call (`invoke`, `batch`, `stream`, both `streamEvents`
 * protocols, callbacks that prefer streaming) through three protected hooks,
 * `_generate`, `_streamResponseChunks` and `_streamChatModelEvents`. An object
 * whose prototype is the model, with those hooks as its own properties, is
 * the same model to LangChain (`instanceof`, fields, `toJSON`, callbacks run
 * by LangChain's own code around the hooks), costs no trap on the hot path,
 * and needs no knowledge of the model's constructor. The hooks call the
 * model's own with the model as `this`, so a `_generate` that streams
 * internally is not cached twice.
 */
function wrapModel(model: BaseChatModel, w: Wrapping): BaseChatModel {
  const inner = model as unknown as Hooks;
  const wrapper = Object.create(model) as BaseChatModel;
  const own = (name: string, value: unknown) => Object.defineProperty(wrapper, name, { value, writable: true, configurable: true });
  own('_generate', (messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun) => generate(w, model, messages, options, runManager));
  // A model without its own streaming must keep LangChain's fallback (`stream` = one `invoke`), which it detects by this hook.
  if (inner._streamResponseChunks !== BASE._streamResponseChunks) {
    own('_streamResponseChunks', (messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun) =>
      streamChunks(w, model, messages, options, runManager),
    );
  }
  // The base implementation bridges from `_streamResponseChunks` (cached above); a native one is recorded on its own.
  if (inner._streamChatModelEvents !== BASE._streamChatModelEvents) {
    own('_streamChatModelEvents', (messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun) =>
      streamEvents(w, model, messages, options, runManager),
    );
  }
  // Some models build a new model here (ChatOpenAI's `withConfig`, the fake models' `bindTools`): the new one is wrapped too.
  own('withConfig', function (this: BaseChatModel, config: unknown) {
    return adopt(model.withConfig.call(this, config as never), w);
  });
  if (typeof inner.bindTools === 'function') {
    const bindTools = inner.bindTools;
    own('bindTools', function (this: BaseChatModel, tools: unknown[], kwargs?: unknown) {
      return adopt(bindTools.call(this, tools, kwargs), w);
    });
  }
  w.wrappers.add(wrapper);
  registerStats(wrapper, w.generate.stats);
  explainable(wrapper, modelRecipe(model, w));
  return wrapper;
}

/** `value` with every chat model in it wrapped: a chat model, or a `RunnableBinding` (of a binding ...) of one. Anything else as it is. */
function adopt(value: unknown, w: Wrapping): unknown {
  if (value === null || typeof value !== 'object' || w.wrappers.has(value)) return value;
  if (isChatModel(value)) return wrapModel(value, w);
  if (!RunnableBinding.isRunnableBinding(value)) return value;
  const bound = adopt(value.bound, w);
  // Not over a chat model: nothing to cache.
  if (!w.wrappers.has(bound as object)) return value;
  let binding = value;
  if (bound !== value.bound) {
    // The same binding (kwargs, config, config factories) over the cached model.
    binding = Object.create(value) as RunnableBinding<unknown, unknown>;
    Object.defineProperty(binding, 'bound', { value: bound, writable: true, configurable: true });
  }
  w.wrappers.add(binding);
  registerStats(binding, w.generate.stats);
  explainable(binding, bindingRecipe(binding));
  return binding;
}

function isChatModel(value: unknown): value is BaseChatModel {
  return value instanceof BaseChatModel;
}

function boundModel(binding: RunnableBinding<unknown, unknown>): BaseChatModel | undefined {
  const { bound } = binding;
  if (isChatModel(bound)) return bound;
  return RunnableBinding.isRunnableBinding(bound) ? boundModel(bound) : undefined;
}

function keyOf(w: Wrapping, model: BaseChatModel, mode: ChatMode, messages: BaseMessage[], options: Record<string, unknown>): string | undefined {
  try {
    return namespacedKey(chatKeyInput(model, mode, messages, options), w.namespace);
  } catch {
    // Something in the call cannot be keyed (a class instance, a cycle): it goes upstream uncached.
    return undefined;
  }
}

function generate(w: Wrapping, model: BaseChatModel, messages: BaseMessage[], options: Record<string, unknown>, runManager?: CallbackManagerForLLMRun): Promise<ChatResult> {
  const send = () => (model as unknown as Hooks)._generate(messages, options, runManager);
  const key = keyOf(w, model, 'generate', messages, options);
  if (key === undefined) {
    countBypass(w.generate.stats);
    return send();
  }
  return cachedCall<ChatResult>(w.generate, key, {
    upstream: send,
    stored: storedChatResult,
    hit: (stored) => chatResultOf(stored as StoredChatResult, true),
    // LangChain writes run ids and metadata into the messages it hands back: every joiner gets its own.
    copies: (answer) => {
      const copy = copiesByEncoding(storedChatResult(answer));
      return (held) => chatResultOf(copy() as StoredChatResult, held);
    },
    // A caller's abort signal must not end the call other callers wait on.
    share: options.signal == null,
  });
}

/**
 * A stream's chunks, live or replayed. Live: upstream's own chunks go to the
 * caller, and a snapshot of each is recorded as it arrives (LangChain writes
 * the run id and metadata into a chunk after it leaves this hook). Replayed:
 * the recorded chunks one by one as `ChatGenerationChunk`s, each announced
 * to `handleLLMNewToken` as the model itself does.
 */
async function* streamChunks(
  w: Wrapping,
  model: BaseChatModel,
  messages: BaseMessage[],
  options: Record<string, unknown>,
  runManager?: CallbackManagerForLLMRun,
): AsyncGenerator<ChatGenerationChunk> {
  const live = () => (model as unknown as Hooks)._streamResponseChunks(messages, options, runManager);
  const recorded = yield* recordedOrLive(w, model, 'stream', messages, options, live, storedChunk, CHUNK_STREAM);
  if (recorded === undefined) return;
  const signal = options.signal as AbortSignal | undefined;
  const last = recorded.length - 1;
  let index = 0;
  // A recording is stored only when every chunk could be (`chunksFinished`).
  for await (const stored of replayChunks(recorded as StoredChunk[], { signal })) {
    const chunk = chunkOf(stored, index++ === last);
    yield chunk;
    await runManager?.handleLLMNewToken(chunk.text, { prompt: (options.promptIndex as number | undefined) ?? 0, completion: 0 }, undefined, undefined, undefined, { chunk });
  }
}

/** The `ChatModelStreamEvent`s of a model that streams them natively (`streamEvents(input)` without a version). */
async function* streamEvents(
  w: Wrapping,
  model: BaseChatModel,
  messages: BaseMessage[],
  options: Record<string, unknown>,
  runManager?: CallbackManagerForLLMRun,
): AsyncGenerator<unknown> {
  const live = () => (model as unknown as Hooks)._streamChatModelEvents(messages, options, runManager);
  const recorded = yield* recordedOrLive(w, model, 'events', messages, options, live, snapshotEvent, EVENT_STREAM);
  if (recorded === undefined) return;
  yield* replayChunks(recorded, { signal: options.signal as AbortSignal | undefined });
}

/**
 * The stream half both hooks share: on a hit, the recording (for the caller
 * to replay); otherwise upstream's items are passed through (and recorded,
 * unless the call cannot be keyed or is a bypass) and `undefined` is returned.
 */
async function* recordedOrLive<C, S>(
  w: Wrapping,
  model: BaseChatModel,
  mode: ChatMode,
  messages: BaseMessage[],
  options: Record<string, unknown>,
  live: () => AsyncGenerator<C>,
  snapshot: (item: C) => S,
  shape: StreamShape<S>,
): AsyncGenerator<C, S[] | undefined> {
  const site = w.streams;
  const key = keyOf(w, model, mode, messages, options);
  const plan = planCall(site);
  if (key === undefined || plan.control?.bypass) {
    countBypass(site.stats);
    yield* live();
    return undefined;
  }
  const hit = await readCached(site, plan, key);
  if (hit && isRecording(hit.value)) return hit.value.chunks as S[];
  const started = performance.now();
  let current: C | undefined;
  async function* snapshots(): AsyncGenerator<S> {
    for await (const item of live()) {
      current = item;
      yield snapshot(item);
    }
  }
  const signal = options.signal as AbortSignal | undefined;
  for await (const _ of recordChunks(site, plan, key, snapshots(), shape, started, () => signal?.aborted === true)) yield current as C;
  return undefined;
}

// Events are plain data; a copy keeps what consumers later change out of the recording. One that cannot be copied makes the stream unstorable.
function snapshotEvent(event: unknown): unknown {
  try {
    return structuredClone(event);
  } catch {
    return undefined;
  }
}

// The Responses API answers an incomplete or failed request with a message too: only a completed one is the answer to store.
function completedResult(value: unknown): boolean {
  const { generations } = value as StoredChatResult;
  return generations.length > 0 && generations.every((g) => {
    const status = (g.message?.data.response_metadata as { status?: unknown } | undefined)?.status;
    return status === undefined || status === 'completed';
  });
}

function resultTokens(value: unknown): number | undefined {
  const result = value as StoredChatResult;
  return tokensOfGenerations(result.generations, result.llmOutput);
}

const toMessages = (input: BaseLanguageModelInput): BaseMessage[] =>
  (BaseChatModel as unknown as { _convertInputToPromptValue(input: BaseLanguageModelInput): { toChatMessages(): BaseMessage[] } })._convertInputToPromptValue(input).toChatMessages();

/**
 * `explainKey(model, input, callOptions?, mode?)`: the key `model.invoke(input,
 * callOptions)` uses (`mode` `'stream'` for `model.stream`, `'events'` for a
 * native `streamEvents(input)`).
 */
function modelRecipe(model: BaseChatModel, w: Wrapping): KeyRecipe {
  return ([input, callOptions, mode]) => {
    // `invoke` and `stream` merge ChatOpenAI's `defaultOptions` (what its `withConfig` binds) into the call options; the native events path does not.
    const combine = mode === 'events' ? undefined : (model as unknown as Hooks)._combineCallOptions;
    const options = (combine ? combine.call(model, callOptions) : { ...(callOptions as object | undefined) }) as Record<string, unknown>;
    const params = model.invocationParams(options as never) as Record<string, unknown>;
    const dropped = [...droppedOptions(options), ...Object.keys(params).filter((name) => CHAT_FIELDS_OUT_OF_KEY.invocationParams.has(name) && params[name] !== undefined).map((name) => `params.${name}`)];
    const hashed = chatKeyInput(model, (mode as ChatMode | undefined) ?? 'generate', toMessages(input as BaseLanguageModelInput), options);
    return { input: hashed, namespace: w.namespace, tenantId: w.tenantId, dropped };
  };
}

// A binding's call options reach its model merged as `RunnableBinding.invoke` merges them: its config, the caller's, then its kwargs.
function bindingRecipe(binding: RunnableBinding<unknown, unknown>): KeyRecipe {
  return ([input, callOptions, mode]) => {
    const merged = { ...binding.config, ...(callOptions as object | undefined), ...binding.kwargs };
    const recipe = recipes.get(binding.bound);
    if (recipe === undefined) return { bypass: 'the bound runnable is not a cached chat model' };
    return recipe([input, merged, mode], binding.bound);
  };
}

// explainKey's registry answers only explainKey; a binding's recipe needs its bound model's, so they are kept here too.
const recipes = new WeakMap<object, KeyRecipe>();

function explainable(target: object, recipe: KeyRecipe): void {
  recipes.set(target, recipe);
  registerKeyRecipe(target, recipe);
}
