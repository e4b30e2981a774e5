import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import type { BaseLanguageModelInput } from '@langchain/core/language_models/base';
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatGenerationChunk, ChatResult } from '@langchain/core/outputs';
import { RunnableBinding } from '@langchain/core/runnables';
import { CacheError } from '../../src/core/errors.js';
import type { Cache } from '../../src/core/types.js';
import {
  answerStored,
  cachedCall,
  callerFreshness,
  checkSiteOptions,
  copiesByEncoding,
  countBypass,
  createCallSite,
  gracedCall,
  isRecording,
  joinStream,
  markServed,
  namespacedKey,
  FRESHNESS_OPTIONS,
  optionNames,
  planCall,
  readCached,
  registerKeyRecipe,
  registerStats,
  replayChunks,
  siteFreshness,
  startStream,
  type CacheInfo,
  type CallSite,
  type FreshnessOptions,
  type KeyRecipe,
  type RecordedStream,
  type SharedStream,
  type StreamCall,
  type StreamShape,
} from '../../src/llm/engine.js';
import { CHAT_FIELDS_OUT_OF_KEY, chatKeyInput, droppedOptions, type ChatMode } from './key-input.js';
import { chatResultOf, chunkOf, storedChatResult, storedChunk, tokensOfGenerations, usageOfResult, type HitMark, type StoredChatResult, type StoredChunk } from './stored.js';
import { CHUNK_STREAM, EVENT_STREAM } from './stream-shape.js';

/** Which path of a chat model an answer came from. */
export interface ChatCallType {
  /** `'generate'` (`invoke`, `batch`), `'stream'` (`stream`, versioned `streamEvents`) or `'events'` (a native `streamEvents(input)`). */
  type: ChatMode;
}

/**
 * Options of `cachedChatModel`. The freshness and cost options (`grace`,
 * `graceBackoff`, `softTimeout`, `shouldServeStale`, `tags`, `prices`) work
 * on `invoke`/`batch` and on streams alike; `tags` gets the answer in its
 * stored form (`{ generations, llmOutput? }`, each generation's message as
 * `toDict()` gives it) or a stream's recorded chunks, then the messages and
 * `{ type }`. The default `shouldServeStale` refuses errors with a 4xx
 * `status` other than 408, 409 and 429 and every failure after the call's
 * `signal` aborted. Prices go by the answer's `response_metadata.model_name`,
 * else the model's `model`.
 */
export interface CachedChatModelOptions extends FreshnessOptions<unknown, [messages: BaseMessage[], call: ChatCallType]> {
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

const OPTIONS = optionNames<CachedChatModelOptions>({
  cache: true,
  ttl: true,
  namespace: true,
  tenantId: true,
  ...FRESHNESS_OPTIONS,
});

/** One `cachedChatModel` call's state, shared by every model derived from it (`withConfig`, `bindTools`, ...). */
interface Wrapping {
  /** `invoke`/`batch`: a `ChatResult`. */
  generate: CallSite<unknown>;
  /** `stream`, `streamEvents`: recordings. */
  streams: CallSite<unknown>;
  namespace: string;
  tenantId: string | undefined;
  /** Whether the site has `tags`: only then are a call's arguments kept for it. */
  tagged: boolean;
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
    const elsewhere = fromAnotherCore(model) ? ' (this one is a chat model from another copy of @langchain/core than the one cachekit/langchain loads: install one version, e.g. with npm dedupe)' : '';
    throw new CacheError(`cachedChatModel: model must be a LangChain chat model (a BaseChatModel) or a RunnableBinding of one${elsewhere}`, 'validation');
  }
  const namespace = options.namespace ?? 'langchain-chat';
  const { freshness, prices, singleFlight } = siteFreshness('cachedChatModel', options);
  const { tags } = options;
  // The call's arguments reach the site's tags as [messages, mode].
  const tagsOf = tags && ((result: unknown, messages: unknown, type: unknown) => tags(type === 'generate' ? result : (result as RecordedStream).chunks, messages as BaseMessage[], { type: type as ChatMode }));
  const site = { cache: options.cache, ttl: options.ttl, tenantId: options.tenantId, namespace, freshness, prices, tags: tagsOf };
  // Streams stay per process: a shared live stream cannot cross processes.
  const generate = createCallSite({ ...site, singleFlight, shouldCache: completedResult, countTokens: resultTokens, usage: (result) => usageOfResult(result as StoredChatResult) });
  const streams = createCallSite(site, { stats: generate.stats, flights: generate.flights, backoff: generate.backoff });
  const wrapping: Wrapping = { generate, streams, namespace, tenantId: options.tenantId, tagged: tags !== undefined, wrappers: new WeakSet() };
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

// Monorepos and bundles end up with two copies of @langchain/core often; its classes then fail instanceof across them.
function fromAnotherCore(value: object): boolean {
  const namespace = (value as { lc_namespace?: unknown }).lc_namespace;
  return Array.isArray(namespace) && namespace.includes('chat_models') && typeof (value as { _generate?: unknown })._generate === 'function';
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
  const signal = options.signal as AbortSignal | undefined;
  return cachedCall<ChatResult>(w.generate, key, {
    upstream: send,
    stored: storedChatResult,
    seen: messageOf,
    hit: (stored, how) => chatResultOf(stored as StoredChatResult, how),
    // LangChain writes run ids and metadata into the messages it hands back: every joiner gets its own.
    copies: (answer) => {
      const copy = copiesByEncoding(storedChatResult(answer));
      return (held) => chatResultOf(copy() as StoredChatResult, held ? 'hit' : undefined);
    },
    // A caller's abort signal must not end the call other callers wait on.
    share: signal == null,
    signal,
    args: w.tagged ? [messages, 'generate'] : undefined,
    model: requestModel(model),
  });
}

/** The message `invoke` returns of a result (its first generation's), for `cacheInfo`. */
function messageOf(result: ChatResult): unknown {
  return result.generations[0]?.message;
}

/** The model a call asks for, when the model holds it as ChatOpenAI does: what `prices` go by when the answer names none. */
function requestModel(model: BaseChatModel): string | undefined {
  const m = model as unknown as { model?: unknown; modelName?: unknown };
  const name = m.model ?? m.modelName;
  return typeof name === 'string' ? name : undefined;
}

/**
 * A stream's chunks, live or replayed, each `AIMessageChunk` marked for
 * `cacheInfo`. Live: identical concurrent streams share one upstream stream;
 * the caller who started it gets upstream's own chunks, the others chunks
 * rebuilt from a snapshot of each taken as it arrived (LangChain writes the
 * run id and metadata into a chunk after it leaves this hook), each
 * announced to `handleLLMNewToken` as the model itself does. Replayed: the
 * recorded chunks one by one as `ChatGenerationChunk`s, announced likewise.
 */
async function* streamChunks(
  w: Wrapping,
  model: BaseChatModel,
  messages: BaseMessage[],
  options: Record<string, unknown>,
  runManager?: CallbackManagerForLLMRun,
): AsyncGenerator<ChatGenerationChunk> {
  const live = () => (model as unknown as Hooks)._streamResponseChunks(messages, options, runManager);
  const mark = (chunk: ChatGenerationChunk, info: CacheInfo) => markServed(chunk.message, info);
  const source = yield* sourceOf(w, model, 'stream', messages, options, live, storedChunk, CHUNK_STREAM, mark);
  if (source === undefined) return;
  const announce = (chunk: ChatGenerationChunk) =>
    runManager?.handleLLMNewToken(chunk.text, { prompt: (options.promptIndex as number | undefined) ?? 0, completion: 0 }, undefined, undefined, undefined, { chunk });
  if (source.recorded !== undefined) {
    const last = source.recorded.length - 1;
    let index = 0;
    // A recording is stored only when every chunk could be (`chunksFinished`).
    for await (const stored of replayChunks(source.recorded as StoredChunk[], { signal: options.signal as AbortSignal | undefined })) {
      const chunk = chunkOf(stored, index++ === last ? (source.info.status as HitMark) : undefined);
      mark(chunk, source.info);
      yield chunk;
      await announce(chunk);
    }
    return;
  }
  let index = 0;
  for await (const stored of source.live) {
    const original = source.originals[index++] as ChatGenerationChunk;
    const chunk = source.starter || stored === undefined ? original : chunkOf(stored, undefined);
    mark(chunk, source.info);
    yield chunk;
    // The model announces its own chunks to the caller who started the stream.
    if (!source.starter) await announce(chunk);
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
  const mark = (event: unknown, info: CacheInfo) => markServed(event, info);
  const source = yield* sourceOf(w, model, 'events', messages, options, live, snapshotEvent, EVENT_STREAM, mark);
  if (source === undefined) return;
  if (source.recorded !== undefined) {
    for await (const event of replayChunks(source.recorded, { signal: options.signal as AbortSignal | undefined })) {
      mark(event, source.info);
      yield event;
    }
    return;
  }
  let index = 0;
  for await (const copy of source.live) {
    const original = source.originals[index++];
    // Events are plain data: a joiner's copy is the event; one that could not be copied is shared.
    const event = source.starter || copy === undefined ? original : copy;
    mark(event, source.info);
    yield event;
  }
}

/** What a cached stream reads: a recording (a hit or a stale answer), or a live stream of snapshots, maybe shared. */
type StreamSource<C, S> =
  | { recorded: S[]; info: CacheInfo; live?: undefined }
  | {
      recorded?: undefined;
      live: AsyncGenerator<S, void, undefined>;
      /** Upstream's own items, in order, filled as they arrive. */
      originals: C[];
      /** Whether this caller started upstream (its items are upstream's own). */
      starter: boolean;
      info: CacheInfo;
    };

/**
 * The stream half both hooks share: on a hit (or a stale answer, with
 * `grace`), the recording for the caller to replay; otherwise a live stream,
 * joined when an identical one runs in this process, else started (and
 * recorded as snapshots, stored when it ended whole). A call that cannot be
 * keyed, or a bypass, passes upstream's items through and returns `undefined`.
 * Upstream is opened by reading its first item, so a provider that refuses
 * the call (a 429) is a failure the stale answer can stand in for.
 */
async function* sourceOf<C, S>(
  w: Wrapping,
  model: BaseChatModel,
  mode: ChatMode,
  messages: BaseMessage[],
  options: Record<string, unknown>,
  live: () => AsyncGenerator<C>,
  snapshot: (item: C) => S,
  shape: StreamShape<S>,
  mark: (item: C, info: CacheInfo) => void,
): AsyncGenerator<C, StreamSource<C, S> | undefined> {
  const site = w.streams;
  const key = keyOf(w, model, mode, messages, options);
  const plan = planCall(site);
  plan.model = requestModel(model);
  if (key === undefined || plan.control?.bypass) {
    countBypass(site.stats, key, plan);
    for await (const item of live()) {
      if (key !== undefined) mark(item, { status: 'bypass', key });
      yield item;
    }
    return undefined;
  }
  const signal = options.signal as AbortSignal | undefined;
  const call: StreamCall<S, C[]> = {
    site,
    plan,
    key,
    // Its abort signal is bound to its own upstream request: it may join a stream, never be joined.
    share: signal == null,
    signal,
    shape,
    args: w.tagged ? [messages, mode] : undefined,
    open: async () => {
      const upstream = live();
      const first = await upstream.next();
      const originals: C[] = [];
      async function* snapshots(): AsyncGenerator<S, void, undefined> {
        for (let next = first; !next.done; next = await upstream.next()) {
          originals.push(next.value);
          yield snapshot(next.value);
        }
      }
      // A model's generator cannot be interrupted mid-read: it stops at its next chunk.
      return { source: snapshots(), cancel: () => void upstream.return(undefined).catch(() => {}), aborted: () => signal?.aborted === true, extra: originals };
    },
  };
  const liveOf = async (shared: SharedStream<S, C[]>, starter: boolean): Promise<StreamSource<C, S>> => {
    if (shared.status === 'miss') return { live: shared.chunks, originals: shared.extra, starter, info: { status: 'miss', key } };
    // A whole answer whose write is still landing: replayed as a hit, its chunks all there.
    const recorded: S[] = [];
    for await (const item of shared.chunks) recorded.push(item);
    return { recorded, info: { status: 'hit', key } };
  };
  const joined = joinStream<S, C[]>(call);
  if (joined) return await liveOf(await joined, false);
  // Another caller may have started the same stream while this one read the cache.
  const produce = async (): Promise<StreamSource<C, S>> => {
    const other = joinStream<S, C[]>(call, true);
    return other ? liveOf(await other, false) : liveOf(await startStream(call), true);
  };
  if (site.freshness !== undefined && !plan.control?.refresh) {
    return await gracedCall<StreamSource<C, S>>(
      site,
      plan,
      key,
      callerFreshness(site.freshness, signal) ?? site.freshness,
      (stored, how) => (isRecording(stored.value) ? { recorded: (answerStored(site, stored, how, key, plan) as RecordedStream<S>).chunks, info: { status: how, storedAt: stored.storedAt, key } } : undefined),
      produce,
    );
  }
  const hit = await readCached(site, plan, key);
  if (hit && isRecording(hit.value)) return { recorded: hit.value.chunks as S[], info: { status: 'hit', storedAt: hit.storedAt, key } };
  return await produce();
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
