import { createDragonflyCache } from '../backends/dragonfly.js';
import type { Cache } from '../core/types.js';
import { Failure, UsageError, oneLine, type Io } from './io.js';

/** The connection flags every command that reads the server takes. */
export interface ConnectionFlags {
  url?: string | undefined;
  prefix?: string | undefined;
  tenant?: string | undefined;
}

/** What `--help` says about them. */
export const CONNECTION_HELP = `Connection (every command but explain-key):
  --url URL        redis:// or rediss:// URL of the server (default: $REDIS_URL)
  --prefix NAME    the caches' keyPrefix (default: cachekit)
  --tenant ID      work inside this tenant's scope (default: untenanted)`;

/**
 * A Dragonfly cache on the server the flags or REDIS_URL name. Errors never
 * show the URL (it may hold a password): createDragonflyCache names host and
 * port only.
 */
export async function connect(flags: ConnectionFlags, io: Io): Promise<Cache> {
  const url = flags.url ?? io.env.REDIS_URL;
  if (url === undefined || url === '') throw new UsageError('no server given: pass --url redis://host:port or set REDIS_URL');
  try {
    return await createDragonflyCache({ url, ...(flags.prefix === undefined ? {} : { keyPrefix: flags.prefix }), commandTimeout: 2000, connectTimeout: 3000 });
  } catch (error) {
    throw new Failure(oneLine(error));
  }
}

/** `{ tenantId }` for the operations, when `--tenant` was given. */
export function scope(flags: ConnectionFlags): { tenantId: string } | undefined {
  return flags.tenant === undefined ? undefined : { tenantId: flags.tenant };
}
