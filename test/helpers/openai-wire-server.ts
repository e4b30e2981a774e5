// A local HTTP server that speaks the OpenAI wire format, so the tests drive the
// real `openai` SDK offline (and `npm run demo`'s examples borrow it). Answers
// are deterministic functions of the request, except ids, which count upstream calls: a cached
// answer is recognised by carrying an earlier id.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type WireEndpoint = 'chat/completions' | 'completions' | 'embeddings' | 'responses';
const ENDPOINTS: readonly WireEndpoint[] = ['chat/completions', 'completions', 'embeddings', 'responses'];

export interface WireServerOptions {
  /** Milliseconds before each answer starts, as a model would take. Default 0. */
  latencyMs?: number;
  /** Milliseconds between the events of a stream. Default 0. */
  chunkDelayMs?: number;
}

export interface WireServer {
  /** Base URL for the SDK (`http://127.0.0.1:<port>/v1`). */
  url: string;
  /** Requests received for `endpoint`. */
  calls(endpoint: WireEndpoint): number;
  /** The parsed bodies received for `endpoint`, oldest first. */
  bodies(endpoint: WireEndpoint): Record<string, unknown>[];
  /** Answers the next request to `endpoint` with an HTTP error (400 by default: the SDK does not retry it). */
  failNext(endpoint: WireEndpoint, status?: number): void;
  /** Answers every request to `endpoint` with `status` (429: rate limited, 500: down) until `recover()` is called. */
  failFor(endpoint: WireEndpoint, status: number): { recover(): void };
  /** Every request to `endpoint` hangs (no answer at all) until `release()`, which lets them all answer. */
  hang(endpoint: WireEndpoint): { release(): void };
  /**
   * The next stream stops after `events` events: `destroy` drops the
   * connection, `end` closes it cleanly without `[DONE]` or the final events.
   */
  cutNextStream(events: number, how: 'destroy' | 'end'): void;
  /**
   * The next stream sends its first event, then waits until `release()` is
   * called. `eventsSent()` tells how many of its events have left the server.
   */
  holdNextStream(): { release(): void; eventsSent(): number };
  close(): Promise<void>;
}

/** Starts a server on a free local port. */
export async function startOpenAIWireServer(options: WireServerOptions = {}): Promise<WireServer> {
  const latencyMs = options.latencyMs ?? 0;
  const chunkDelayMs = options.chunkDelayMs ?? 0;
  const bodies = new Map<WireEndpoint, Record<string, unknown>[]>(ENDPOINTS.map((e) => [e, []]));
  const failures = new Map<WireEndpoint, number>();
  const outages = new Map<WireEndpoint, number>();
  const hangs = new Map<WireEndpoint, Promise<void>>();
  let cut: { events: number; how: 'destroy' | 'end' } | undefined;
  let hold: { gate: Promise<void>; sent: number } | undefined;
  let ids = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { message: String(error), type: 'server_error' } });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const endpoint = ENDPOINTS.find((e) => req.url === `/v1/${e}`);
    if (req.method !== 'POST' || endpoint === undefined) return json(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' } });
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    bodies.get(endpoint)!.push(body);
    if (latencyMs > 0) await sleep(latencyMs);
    await hangs.get(endpoint);
    const down = outages.get(endpoint);
    if (down !== undefined) return json(res, down, { error: { message: `injected outage (${down})`, type: 'server_error', code: null, param: null } });
    const status = failures.get(endpoint);
    if (status !== undefined) {
      failures.delete(endpoint);
      return json(res, status, { error: { message: `injected failure (${status})`, type: 'server_error', code: null, param: null } });
    }
    const id = ++ids;
    if (endpoint === 'embeddings') return json(res, 200, embeddingsAnswer(body));
    const text = shaped(body, answerText(endpoint, body));
    if (body.stream === true) return stream(res, streamEvents(endpoint, body, text, id));
    if (endpoint === 'chat/completions') return json(res, 200, chatAnswer(body, text, id));
    if (endpoint === 'completions') return json(res, 200, completionAnswer(body, text, id));
    return json(res, 200, responseObject(body, text, id, 'completed'));
  }

  async function stream(res: ServerResponse, events: { event?: string; data: unknown }[]): Promise<void> {
    const thisCut = cut;
    const thisHold = hold;
    cut = undefined;
    hold = undefined;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    for (const [i, e] of events.entries()) {
      if (thisCut && i === thisCut.events) {
        if (thisCut.how === 'destroy') res.destroy();
        else res.end();
        return;
      }
      if (i > 0 && chunkDelayMs > 0) await sleep(chunkDelayMs);
      // The client went away (it aborted): a real server stops generating.
      if (res.destroyed) return;
      // Waiting for each write to flush makes a cut happen after the events before it left.
      await new Promise<void>((resolve) => res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${JSON.stringify(e.data)}\n\n`, () => resolve()));
      if (thisHold) {
        thisHold.sent++;
        if (i === 0) await thisHold.gate;
      }
    }
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    calls: (endpoint) => bodies.get(endpoint)!.length,
    bodies: (endpoint) => [...bodies.get(endpoint)!],
    failNext: (endpoint, status = 400) => void failures.set(endpoint, status),
    failFor: (endpoint, status) => {
      outages.set(endpoint, status);
      return { recover: () => void outages.delete(endpoint) };
    },
    hang: (endpoint) => {
      let release!: () => void;
      hangs.set(endpoint, new Promise<void>((resolve) => (release = resolve)));
      return {
        release: () => {
          hangs.delete(endpoint);
          release();
        },
      };
    },
    cutNextStream: (events, how) => void (cut = { events, how }),
    holdNextStream: () => {
      let release!: () => void;
      const state = { gate: new Promise<void>((resolve) => (release = resolve)), sent: 0 };
      hold = state;
      return { release, eventsSent: () => state.sent };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `req_${Math.random().toString(36).slice(2)}` });
  res.end(JSON.stringify(body));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function digest(value: unknown): Buffer {
  return createHash('sha256').update(JSON.stringify(value)).digest();
}

/** A short answer that depends on everything the request says (so a param that changes the key changes the text too). */
function answerText(endpoint: WireEndpoint, body: Record<string, unknown>): string {
  const { stream: _s, stream_options: _o, user: _u, metadata: _m, store: _st, ...rest } = body;
  const asked =
    endpoint === 'chat/completions'
      ? String((body.messages as { content?: unknown }[] | undefined)?.at(-1)?.content ?? '')
      : endpoint === 'completions'
        ? String(body.prompt ?? '')
        : typeof body.input === 'string'
          ? body.input
          : JSON.stringify(body.input);
  return `Answer to "${asked}" (${digest(rest).toString('hex').slice(0, 8)}).`;
}

function usage(text: string): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const completion = text.split(' ').length;
  return { prompt_tokens: 10, completion_tokens: completion, total_tokens: 10 + completion };
}

/**
 * The tool a chat request with `tools` calls: the first one, with arguments
 * `{"q":"ai"}`, unless the conversation already ends with a tool's result
 * (then the model answers in text, so an agent loop finishes).
 */
function toolCalled(body: Record<string, unknown>): string | undefined {
  if (!Array.isArray(body.tools) || body.tools.length === 0) return undefined;
  if ((body.messages as { role?: unknown }[] | undefined)?.at(-1)?.role === 'tool') return undefined;
  const name = (body.tools[0] as { function?: { name?: unknown } }).function?.name;
  return typeof name === 'string' ? name : 'lookup';
}

/**
 * The answer text in the shape a chat request's `response_format` asks for:
 * `json_object` gets `{"answer": text}`, `json_schema` an instance of the
 * schema whose strings are the text (numbers 1, booleans true, arrays of one).
 */
function shaped(body: Record<string, unknown>, text: string): string {
  const format = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  if (format?.type === 'json_object') return JSON.stringify({ answer: text });
  if (format?.type === 'json_schema') return JSON.stringify(instanceOf(format.json_schema?.schema, text));
  return text;
}

function instanceOf(schema: unknown, text: string): unknown {
  const s = (schema ?? {}) as { type?: unknown; properties?: Record<string, unknown>; items?: unknown; enum?: unknown[] };
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === 'object' || s.properties) return Object.fromEntries(Object.entries(s.properties ?? {}).map(([name, sub]) => [name, instanceOf(sub, text)]));
  if (type === 'array') return [instanceOf(s.items, text)];
  if (type === 'number' || type === 'integer') return 1;
  if (type === 'boolean') return true;
  if (type === 'null') return null;
  return text;
}

function chatAnswer(body: Record<string, unknown>, text: string, id: number): unknown {
  const tool = toolCalled(body);
  const message = tool
    ? { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: `call_${id}`, type: 'function', function: { name: tool, arguments: '{"q":"ai"}' } }] }
    : { role: 'assistant', content: text, refusal: null };
  return {
    id: `chatcmpl-${id}`,
    object: 'chat.completion',
    created: 1_700_000_000 + id,
    model: body.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: tool ? 'tool_calls' : 'stop' }],
    usage: usage(text),
  };
}

function completionAnswer(body: Record<string, unknown>, text: string, id: number): unknown {
  return {
    id: `cmpl-${id}`,
    object: 'text_completion',
    created: 1_700_000_000 + id,
    model: body.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop' }],
    usage: usage(text),
  };
}

function responseObject(body: Record<string, unknown>, text: string, id: number, status: string): Record<string, unknown> {
  const done = status === 'completed';
  return {
    id: `resp_${id}`,
    object: 'response',
    created_at: 1_700_000_000 + id,
    status,
    model: body.model,
    output: done
      ? [{ type: 'message', id: `msg_${id}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }]
      : [],
    usage: done ? { input_tokens: 10, output_tokens: text.split(' ').length, total_tokens: 10 + text.split(' ').length } : null,
  };
}

/**
 * The events of a streamed answer. Chat streams carry a reasoning delta
 * (`reasoning_content`, as DeepSeek-style providers send) and, when the
 * request has tools (see `toolCalled`), a tool call split over two deltas, so
 * a replay can be checked for both.
 */
function streamEvents(endpoint: WireEndpoint, body: Record<string, unknown>, text: string, id: number): { event?: string; data: unknown }[] {
  const words = text.split(/(?<= )/);
  const created = 1_700_000_000 + id;
  if (endpoint === 'responses') {
    const events: { event?: string; data: unknown }[] = [];
    const push = (type: string, data: Record<string, unknown>) => events.push({ event: type, data: { type, sequence_number: events.length, ...data } });
    push('response.created', { response: responseObject(body, text, id, 'in_progress') });
    for (const delta of words) push('response.output_text.delta', { item_id: `msg_${id}`, output_index: 0, content_index: 0, delta });
    push('response.output_text.done', { item_id: `msg_${id}`, output_index: 0, content_index: 0, text });
    push('response.completed', { response: responseObject(body, text, id, 'completed') });
    return events;
  }
  if (endpoint === 'completions') {
    const chunk = (text: string, finish: string | null) => ({ data: { id: `cmpl-${id}`, object: 'text_completion', created, model: body.model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] } });
    return [...words.map((w) => chunk(w, null)), chunk('', 'stop')];
  }
  const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) => ({
    data: { id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra },
  });
  const events: { event?: string; data: unknown }[] = [chunk({ role: 'assistant', content: '' }, null), chunk({ reasoning_content: 'Thinking about it. ' }, null), ...words.map((w) => chunk({ content: w }, null))];
  const tool = toolCalled(body);
  if (tool) {
    events.push(chunk({ tool_calls: [{ index: 0, id: `call_${id}`, type: 'function', function: { name: tool, arguments: '{"q":' } }] }, null));
    events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: '"ai"}' } }] }, null));
  }
  events.push(chunk({}, tool ? 'tool_calls' : 'stop'));
  if ((body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true) {
    events.push({ data: { id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage: usage(text) } });
  }
  return events;
}

/**
 * A deterministic float32 vector per input item. `float` answers print each
 * value with 8 significant digits, as OpenAI does, so they are not float32
 * values once parsed; `base64` answers carry the float32 bytes.
 */
function embeddingsAnswer(body: Record<string, unknown>): unknown {
  const input = body.input;
  const items = Array.isArray(input) && !input.every((x) => typeof x === 'number') ? input : [input];
  const dimensions = typeof body.dimensions === 'number' ? body.dimensions : 8;
  const data = items.map((item, index) => {
    const seed = digest({ model: body.model, dimensions, item });
    const vector = new Float32Array(dimensions);
    for (let i = 0; i < dimensions; i++) vector[i] = (seed[i % seed.length]! - 128) / 97 + i / 1000;
    const embedding =
      body.encoding_format === 'base64' ? Buffer.from(vector.buffer).toString('base64') : Array.from(vector, (x) => Number(x.toPrecision(8)));
    return { object: 'embedding', index, embedding };
  });
  const tokens = items.reduce<number>((sum, item) => sum + (Array.isArray(item) ? item.length : String(item).split(' ').length), 0);
  return { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}
