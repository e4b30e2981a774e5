/**
 * Fields that tell one upstream from another serving the same method: a
 * gateway's default model, its provider, its base URL. `withCache` and
 * `@Cached` hash the ones they find into every key, so two gateways (or two
 * instances of one class) with different models never share an entry.
 */
export const IDENTITY_FIELDS: readonly string[] = [
  'provider',
  'model',
  'defaultModel',
  'modelId',
  'modelName',
  'baseURL',
  'baseUrl',
  'apiBase',
  'endpoint',
  'deployment',
  'region',
  'apiVersion',
];

/**
 * The string, number and boolean values of the identity fields found on
 * `sources` and on their `config` and `options` objects, the first source
 * holding a field winning.
 */
export function identityOf(...sources: unknown[]): Record<string, string | number | boolean> {
  const found: Record<string, string | number | boolean> = {};
  const seen = (source: unknown) => {
    for (const field of IDENTITY_FIELDS) {
      if (field in found) continue;
      const value = read(source, field);
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') found[field] = value;
    }
  };
  for (const source of sources) seen(source);
  for (const source of sources) {
    seen(read(source, 'config'));
    seen(read(source, 'options'));
  }
  return found;
}

function read(source: unknown, field: string): unknown {
  if (source === null || typeof source !== 'object') return undefined;
  try {
    return (source as Record<string, unknown>)[field];
  } catch {
    return undefined; // a throwing getter tells nothing about identity
  }
}
