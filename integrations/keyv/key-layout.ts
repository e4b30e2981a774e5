/**
 * Where a Keyv entry lives inside a cachekit cache: `keyv:<namespace>:<key>`,
 * in the adapter's tenant scope. The `keyv:` segment keeps Keyv's entries apart
 * from the cache's other entries (the LLM wrappers' `v1:` keys and the app's own).
 *
 * The namespace is percent-encoded down to `[A-Za-z0-9_.-]` (empty when Keyv
 * has none), like cachekit's tenants, so the encoded namespace holds neither
 * `:` nor a glob metacharacter: `keyv:a:*` cannot match namespace `a:b`
 * (stored under `keyv:a%3Ab:`) nor `a*`, and no namespace needs escaping in a
 * pattern. Common namespaces (`keyv`, `cache`, `my-app`) stay readable.
 */
const SAFE = /^[A-Za-z0-9_.-]+$/;

/** The literal key prefix of a Keyv namespace's entries. */
export function namespacePrefix(namespace: string | undefined): string {
  if (!namespace) return 'keyv::';
  return `keyv:${SAFE.test(namespace) ? namespace : encodeNamespace(namespace)}:`;
}

// encodeURIComponent leaves `!'()*~` alone: `*` is a glob metacharacter, and
// encoding the rest too keeps the output inside [A-Za-z0-9_.%-]. A safe name has
// no `%` and an encoded one always has one, so the mapping stays one-to-one.
function encodeNamespace(namespace: string): string {
  return encodeURIComponent(namespace).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
