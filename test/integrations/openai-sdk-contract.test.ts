// What integrations/openai builds on inside the openai SDK, beyond its public
// types: the APIPromise and Stream classes it constructs itself, OpenAIError,
// and a few behaviours of the real client. Each `it` is one assumption; when an
// SDK release changes one, this file fails and names it, instead of cachedOpenAI
// misbehaving quietly. CI runs it against both supported majors
// (CACHEKIT_TEST_OPENAI=6 resolves `openai` to the openai6 alias).
import OpenAI, { AzureOpenAI } from 'openai';
import { APIPromise } from 'openai/core/api-promise';
import { Stream } from 'openai/core/streaming';
import { APIError, OpenAIError } from 'openai/error';
import { VERSION } from 'openai/version';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAIWireServer, type WireServer } from '../helpers/openai-server.js';

const expectedMajor = process.env.CACHEKIT_TEST_OPENAI === '6' ? '6' : '7';
const client = new OpenAI({ apiKey: 'test', baseURL: 'http://127.0.0.1:1/v1', maxRetries: 0 });

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  for await (const bytes of stream as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(bytes, { stream: true });
  return text + decoder.decode();
}

describe(`openai ${VERSION}: the SDK internals cachekit/openai builds on`, () => {
  it(`is the major this run means to test (${expectedMajor})`, () => {
    expect(VERSION.split('.')[0]).toBe(expectedMajor);
  });

  describe('APIPromise (integrations/openai/sdk-promise.ts builds one per cached call)', () => {
    const response = new Response(null, { status: 200, headers: { 'x-test': 'yes' } });
    type Props = ConstructorParameters<typeof APIPromise>[1] extends Promise<infer P> ? P : never;
    const make = <T,>(value: T, seen: unknown[] = []) =>
      new APIPromise<T>(client, Promise.resolve({ response, value } as unknown as Props), ((c: unknown, props: { value: T }) => {
        seen.push(c);
        return props.value;
      }) as never);

    it('takes (client, promise of response props, parse(client, props)) and resolves to what parse returns', async () => {
      const seen: unknown[] = [];
      const promise = make({ answer: 42 }, seen);
      expect(promise).toBeInstanceOf(Promise);
      expect(await promise).toEqual({ answer: 42 });
      expect(seen).toEqual([client]);
    });

    it('withResponse() answers { data, response } with the props’ own response', async () => {
      const { data, response: got } = await make('hello').withResponse();
      expect(data).toBe('hello');
      expect(got).toBe(response);
    });

    it('asResponse() answers the props’ response without parsing', async () => {
      const seen: unknown[] = [];
      expect(await make('x', seen).asResponse()).toBe(response);
      expect(seen).toEqual([]);
    });

    it('_thenUnwrap(fn) is an APIPromise of fn(data), keeping the response (the SDK’s own helpers call it)', async () => {
      const mapped = make(2)._thenUnwrap((n: number) => n * 21);
      expect(mapped).toBeInstanceOf(APIPromise);
      expect(await mapped).toBe(42);
      expect((await mapped.withResponse()).response).toBe(response);
    });

    it('a rejected props promise rejects await and withResponse() alike', async () => {
      const failure = new Error('boom');
      const failing = () => new APIPromise<never>(client, Promise.reject(failure), (() => undefined) as never);
      await expect(failing()).rejects.toBe(failure);
      await expect(failing().withResponse()).rejects.toBe(failure);
    });
  });

  describe('Stream (integrations/openai/stream-replay.ts records and replays through it)', () => {
    async function* items(): AsyncGenerator<{ n: number }> {
      yield { n: 1 };
      yield { n: 2 };
      yield { n: 3 };
    }

    it('takes (iterator factory, controller, client), exposes the controller, and yields what the iterator yields', async () => {
      const controller = new AbortController();
      const stream = new Stream(() => items(), controller, client);
      expect(stream.controller).toBe(controller);
      expect(await collect(stream)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    });

    it('tee() gives two Streams that each yield every item', async () => {
      const [left, right] = new Stream(() => items(), new AbortController(), client).tee();
      expect(left).toBeInstanceOf(Stream);
      expect(right).toBeInstanceOf(Stream);
      expect(await collect(left)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      expect(await collect(right)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    });

    it('toReadableStream() gives the items as newline-delimited JSON, and fromReadableStream reads them back', async () => {
      const text = await readAll(new Stream(() => items(), new AbortController(), client).toReadableStream() as ReadableStream<Uint8Array>);
      expect(text).toBe('{"n":1}\n{"n":2}\n{"n":3}\n');
      const back = Stream.fromReadableStream(new Stream(() => items(), new AbortController(), client).toReadableStream(), new AbortController(), client);
      expect(await collect(back)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    });
  });

  describe('errors', () => {
    it('OpenAIError from openai/error is the SDK’s base error, the one OpenAI.OpenAIError names', () => {
      expect(OpenAI.OpenAIError).toBe(OpenAIError);
      expect(new OpenAIError('x')).toBeInstanceOf(Error);
      expect(APIError.prototype).toBeInstanceOf(OpenAIError);
    });
  });

  describe('the real client, against the local wire server', () => {
    let server: WireServer;
    let sdk: OpenAI;
    const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };
    beforeAll(async () => {
      server = await startOpenAIWireServer();
      sdk = new OpenAI({ apiKey: 'test', baseURL: server.url, maxRetries: 0 });
    });
    afterAll(async () => {
      await server.close();
    });

    it('create() returns the very APIPromise class cachekit constructs, and withResponse() carries a fetch Response', async () => {
      const promise = sdk.chat.completions.create(chat);
      expect(promise).toBeInstanceOf(APIPromise);
      const { data, response } = await promise.withResponse();
      expect(response).toBeInstanceOf(Response);
      expect(data.choices[0]?.message.content).toEqual(expect.any(String));
    });

    it('stream: true resolves to the very Stream class cachekit constructs, and it yields chunks with choices', async () => {
      const stream = await sdk.chat.completions.create({ ...chat, stream: true });
      expect(stream).toBeInstanceOf(Stream);
      expect(stream.controller).toBeInstanceOf(AbortController);
      const chunks = await collect(stream);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.at(-1)?.choices[0]?.finish_reason).toEqual(expect.any(String));
    });

    it('a stream aborted through its controller ends without an error (so completeness is read from the chunks)', async () => {
      const stream = await sdk.chat.completions.create({ ...chat, stream: true });
      const seen: unknown[] = [];
      for await (const chunk of stream) {
        seen.push(chunk);
        stream.controller.abort();
      }
      expect(seen.length).toBeGreaterThanOrEqual(1);
      expect(stream.controller.signal.aborted).toBe(true);
    });

    it('embeddings.create() without encoding_format asks for base64 and answers decoded number arrays', async () => {
      const answer = await sdk.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
      expect(server.bodies('embeddings').at(-1)?.encoding_format).toBe('base64');
      expect(Array.isArray(answer.data[0]?.embedding)).toBe(true);
      expect(typeof answer.data[0]?.embedding[0]).toBe('number');
    });

    it('the client exposes baseURL, and AzureOpenAI its apiVersion (both go into the request key)', () => {
      expect(sdk.baseURL).toBe(server.url);
      const azure = new AzureOpenAI({ apiKey: 'test', endpoint: 'https://example.invalid', apiVersion: '2024-10-21', deployment: 'd' });
      expect((azure as unknown as { apiVersion: unknown }).apiVersion).toBe('2024-10-21');
      expect(azure).toBeInstanceOf(OpenAI);
    });

    it('the endpoints cachekit wraps are methods on the client’s resources', () => {
      expect(typeof sdk.chat.completions.create).toBe('function');
      expect(typeof sdk.completions.create).toBe('function');
      expect(typeof sdk.embeddings.create).toBe('function');
      expect(typeof sdk.responses.create).toBe('function');
    });
  });
});
