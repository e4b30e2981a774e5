import { isStored } from '../llm/cached-call.js';
import { connect, scope, type ConnectionFlags } from './connect.js';
import { bytes, duration, EXIT, Failure, oneLine, UsageError, writeLine, type Io } from './io.js';

export const INSPECT_HELP = `cachekit inspect KEY [--json]

One entry: its decoded value, TTL left, tenant and size; for an entry an LLM
wrapper stored, also the model, when it was stored, how long upstream took and
the tokens each hit saves. Exit code 1 when there is no such live entry.
  --json   one JSON object`;

export interface InspectFlags extends ConnectionFlags {
  json?: boolean | undefined;
}

export async function inspectCommand(key: string | undefined, flags: InspectFlags, io: Io): Promise<number> {
  if (key === undefined) throw new UsageError('inspect needs a KEY: cachekit inspect KEY');
  const cache = await connect(flags, io);
  try {
    let info;
    try {
      info = await cache.inspect(key, scope(flags));
    } catch (error) {
      throw new Failure(oneLine(error));
    }
    if (info === undefined) throw new Failure(`no live entry under ${JSON.stringify(key)}${flags.tenant === undefined ? '' : ` for tenant ${flags.tenant}`}`);
    const llm = isStored(info.value) ? llmEntry(info.value) : undefined;
    const report = { key, tenantId: flags.tenant ?? null, ttl: info.ttl === Infinity ? null : info.ttl, bytes: info.bytes, ...(llm ? { llm } : {}), value: info.value };
    if (flags.json === true) {
      await writeLine(io, JSON.stringify(report));
      return EXIT.ok;
    }
    const rows: [string, string][] = [
      ['key', key],
      ['tenant', flags.tenant ?? '(none)'],
      ['ttl left', info.ttl === Infinity ? 'never expires' : `${duration(info.ttl)} (${info.ttl.toFixed(3)} s)`],
      ['size', bytes(info.bytes)],
    ];
    if (llm) {
      rows.push(['model', llm.model ?? '(unknown)'], ['stored', `${llm.storedAt} (${duration((Date.now() - Date.parse(llm.storedAt)) / 1000)} ago)`], ['upstream took', `${Math.round(llm.durationMs)} ms`], ['tokens saved', `${llm.tokens} per hit`]);
    }
    await writeLine(io, rows.map(([k, v]) => `${k.padEnd(14)} ${v}`).join('\n'));
    await writeLine(io, `value${' '.repeat(10)}${JSON.stringify(llm ? (info.value as { value: unknown }).value : info.value, null, 2).replace(/\n/g, '\n' + ' '.repeat(15))}`);
    return EXIT.ok;
  } finally {
    await cache.close();
  }
}

/** What an LLM wrapper's envelope (`{ value, storedAt, durationMs, tokens }`) tells. */
function llmEntry(entry: { value: unknown; storedAt?: unknown; durationMs: number; tokens?: number }) {
  const value = entry.value as Record<string, unknown> | null;
  // OpenAI and Anthropic answers carry `model`; an AI SDK result its `response.modelId`.
  const model = typeof value?.model === 'string' ? value.model : typeof (value?.response as { modelId?: unknown } | undefined)?.modelId === 'string' ? ((value?.response as { modelId: string }).modelId) : undefined;
  return { model, storedAt: new Date(typeof entry.storedAt === 'number' ? entry.storedAt : 0).toISOString(), durationMs: entry.durationMs, tokens: entry.tokens ?? 0 };
}
