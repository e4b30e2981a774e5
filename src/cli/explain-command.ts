import { readFile } from 'node:fs/promises';
import { createMemoryCache } from '../backends/memory.js';
import { explainKey } from '../llm/explain-key.js';
import { EXIT, Failure, oneLine, UsageError, writeLine, type Io } from './io.js';

export const EXPLAIN_HELP = `cachekit explain-key FILE.json [--for openai [--endpoint E] [--base-url URL]] [--namespace NS] [--json]

The request key a request gets and which of its fields went into it, without
calling anything. FILE.json holds the request ('-' reads stdin).
  (default)          a plain request: requestKey(request, { namespace })
  --namespace NS     the namespace of a plain request's key
  --for openai       the request as cachedOpenAI keys it (needs the openai package)
  --endpoint E       chat.completions (default), completions, embeddings, responses
  --base-url URL     the client's baseURL (default https://api.openai.com/v1): part of the key
  --json             the whole explanation as JSON`;

export interface ExplainFlags {
  for?: string | undefined;
  endpoint?: string | undefined;
  'base-url'?: string | undefined;
  namespace?: string | undefined;
  json?: boolean | undefined;
}

const ENDPOINTS = ['chat.completions', 'completions', 'embeddings', 'responses'];

export async function explainCommand(file: string | undefined, flags: ExplainFlags, io: Io): Promise<number> {
  if (file === undefined) throw new UsageError('explain-key needs a FILE.json (or - for stdin)');
  if (flags.for !== undefined && flags.for !== 'openai') throw new UsageError(`--for ${flags.for}: only openai is known (or leave it out for a plain request)`);
  const endpoint = flags.endpoint ?? 'chat.completions';
  if (!ENDPOINTS.includes(endpoint)) throw new UsageError(`--endpoint must be one of ${ENDPOINTS.join(', ')}, got ${endpoint}`);
  let request: unknown;
  try {
    request = JSON.parse(file === '-' ? await readStdin(io) : await readFile(file, 'utf8'));
  } catch (error) {
    throw new Failure(`cannot read ${file === '-' ? 'stdin' : file} as JSON: ${oneLine(error)}`);
  }
  let explanation;
  try {
    explanation = flags.for === 'openai' ? await explainOpenAI(request, endpoint, flags) : await explainKey(request, flags.namespace === undefined ? undefined : { namespace: flags.namespace });
  } catch (error) {
    throw new Failure(oneLine(error));
  }
  if (flags.json === true) {
    await writeLine(io, JSON.stringify(explanation, null, 2));
    return EXIT.ok;
  }
  const lines = [`key       ${explanation.key ?? '(not cached)'}`];
  if (explanation.bypass !== undefined) lines.push(`bypass    ${explanation.bypass}`);
  for (const item of explanation.items ?? []) lines.push(`item key  ${item.key}`);
  lines.push(`dropped   ${explanation.dropped.length === 0 ? '(none)' : explanation.dropped.join(', ')}`);
  lines.push(`hashed    ${JSON.stringify(explanation.hashed ?? explanation.items?.map((i) => i.hashed), null, 2).replace(/\n/g, '\n          ')}`);
  await writeLine(io, lines.join('\n'));
  return EXIT.ok;
}

/** The key through cachedOpenAI's own recipe, on a client that is never called. */
async function explainOpenAI(request: unknown, endpoint: string, flags: ExplainFlags) {
  let OpenAI: typeof import('openai').default;
  try {
    OpenAI = (await import('openai')).default;
  } catch {
    throw new Failure('--for openai needs the openai package installed beside cachekit');
  }
  const { cachedOpenAI } = await import('../../integrations/openai/cached-openai.js');
  const client = cachedOpenAI(new OpenAI({ apiKey: 'unused', baseURL: flags['base-url'] ?? 'https://api.openai.com/v1' }), {
    cache: createMemoryCache(),
    ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
  });
  const create = endpoint === 'chat.completions' ? client.chat.completions.create : endpoint === 'completions' ? client.completions.create : endpoint === 'embeddings' ? client.embeddings.create : client.responses.create;
  return explainKey(create, request);
}

async function readStdin(io: Io): Promise<string> {
  let text = '';
  for await (const chunk of io.stdin) text += String(chunk);
  return text;
}
