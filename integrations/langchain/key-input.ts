import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { toJsonSchema } from '@langchain/core/utils/json_schema';
import { isInteropZodSchema } from '@langchain/core/utils/types';
// ChatOpenAI sends the OpenAI wire format: its invocation parameters leave the key by cachedOpenAI's rule.
import { PARAMS_OUT_OF_KEY } from '../openai/request-params.js';

/** How a chat call reaches the model: its answer has a different shape in each, so each is its own entry. */
export type ChatMode = 'generate' | 'stream' | 'events';

/**
 * Call options that change how a call travels or is traced, never what the
 * model answers. `runId` is here above all: a run id leaked into LangChain's
 * own keys once (langchainjs PR #5205) and every call missed.
 */
const CALL_OPTIONS_OUT_OF_KEY: ReadonlySet<string> = new Set([
  'signal',
  'timeout',
  'callbacks',
  'runId',
  'runName',
  'tags',
  'metadata',
  'configurable',
  'recursionLimit',
  'maxConcurrency',
  // Which prompt of a `generate` batch this is.
  'promptIndex',
  // LangSmith's record of a structured-output schema; the schema itself is in `tools` or `response_format`.
  'ls_structured_output_format',
  // ChatOpenAI's SDK request options (headers, timeout, retries).
  'options',
]);

/** Every name `cachedChatModel` leaves out of a key, for README and `explainKey`. */
export const CHAT_FIELDS_OUT_OF_KEY: {
  /** Call options (`invoke(input, options)`) out of the key. */
  readonly callOptions: ReadonlySet<string>;
  /** Fields of the model's `invocationParams` (what it sends) out of the key. */
  readonly invocationParams: ReadonlySet<string>;
} = { callOptions: CALL_OPTIONS_OUT_OF_KEY, invocationParams: PARAMS_OUT_OF_KEY };

/** What tells one upstream from another: the model's class (its LangChain name), its provider type, and its base URL when it has one. */
export function modelIdentity(model: BaseChatModel): Record<string, unknown> {
  const ctor = model.constructor as { lc_name?: () => string; name: string };
  return { class: typeof ctor.lc_name === 'function' ? ctor.lc_name() : ctor.name, type: model._llmType(), baseURL: baseURLOf(model) };
}

export function baseURLOf(target: object): string | undefined {
  const t = target as { clientConfig?: { baseURL?: unknown }; baseURL?: unknown; baseUrl?: unknown; apiUrl?: unknown };
  const url = t.clientConfig?.baseURL ?? t.baseURL ?? t.baseUrl ?? t.apiUrl;
  return typeof url === 'string' ? url : undefined;
}

/**
 * A chat call's key input: the model's identity, the mode, the request
 * parameters the model derives from the call (`invocationParams`: model name,
 * temperature, tools, tool choice, stop, response format, ...), the call
 * options that shape the answer, and the messages as plain data. Throws
 * when the call holds something that cannot be keyed (the call then goes
 * upstream uncached).
 */
export function chatKeyInput(model: BaseChatModel, mode: ChatMode, messages: readonly BaseMessage[], options: Record<string, unknown> | undefined): Record<string, unknown> {
  const params = model.invocationParams(options as never) as Record<string, unknown>;
  return {
    model: modelIdentity(model),
    mode,
    params: without(params, PARAMS_OUT_OF_KEY),
    options: options === undefined ? {} : plain(without(options, CALL_OPTIONS_OUT_OF_KEY)),
    messages: messages.map(plainMessage),
  };
}

/** What of a call's options is not in its key, as `explainKey` reports it. */
export function droppedOptions(options: Record<string, unknown> | undefined): string[] {
  if (options === undefined) return [];
  return Object.keys(options)
    .filter((name) => CALL_OPTIONS_OUT_OF_KEY.has(name) && options[name] !== undefined)
    .map((name) => `options.${name}`);
}

function without(source: Record<string, unknown>, out: ReadonlySet<string>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const name in source) if (!out.has(name)) kept[name] = source[name];
  return kept;
}

/**
 * A message as the request sees it: its type (and role), name, content
 * blocks with their bytes or URLs, tool calls, the id of the call a tool
 * message answers, and `additional_kwargs` (function calls, audio ids,
 * reasoning that some providers send back). Left out: the message `id`
 * (LangGraph gives every message a random one, and LangChain names AI
 * messages after their run), `response_metadata` and `usage_metadata` (what
 * came back with an earlier answer, not sent again), and a tool message's
 * `artifact` (which LangChain never sends to the model).
 */
export function plainMessage(message: BaseMessage): Record<string, unknown> {
  const m = message as BaseMessage & { role?: unknown; tool_calls?: { id?: unknown; name: unknown; args: unknown }[]; invalid_tool_calls?: unknown[]; tool_call_id?: unknown; status?: unknown };
  const out: Record<string, unknown> = { type: m.type, content: plain(m.content), additional_kwargs: plain(m.additional_kwargs) };
  if (m.role !== undefined) out.role = m.role;
  if (m.name !== undefined) out.name = m.name;
  // Tool calls without LangChain's optional `type` tag, which some paths add and others do not.
  if (m.tool_calls !== undefined && m.tool_calls.length > 0) out.tool_calls = m.tool_calls.map((call) => ({ id: call.id, name: call.name, args: plain(call.args) }));
  if (m.invalid_tool_calls !== undefined && m.invalid_tool_calls.length > 0) out.invalid_tool_calls = plain(m.invalid_tool_calls);
  if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
  if (m.status !== undefined) out.status = m.status;
  return out;
}

/**
 * `value` with the framework objects call options carry turned into the
 * data they stand for: a zod schema into its JSON schema, a LangChain tool
 * into the OpenAI tool definition it describes. Anything else stays as it is
 * (the request key refuses other class instances, and the call is then a bypass).
 */
export function plain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(plain);
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const [name, item] of Object.entries(value)) out[name] = plain(item);
    return out;
  }
  if (isInteropZodSchema(value)) return toJsonSchema(value);
  if (typeof (value as { name?: unknown }).name === 'string' && 'schema' in value) return convertToOpenAITool(value as never);
  return value;
}
