import { connect, scope, type ConnectionFlags } from './connect.js';
import { EXIT, Failure, oneLine, writeLine, type Io } from './io.js';

export const KEYS_HELP = `cachekit keys [--pattern GLOB] [--json]

Lists the keys of the scope that match a Redis glob (default *), as given to
set (without prefix or tenant), streamed as they are read (SCAN, never KEYS).
  --pattern GLOB   e.g. 'user:*' (default *)
  --json           one JSON string per line`;

export interface KeysFlags extends ConnectionFlags {
  pattern?: string | undefined;
  json?: boolean | undefined;
}

export async function keysCommand(flags: KeysFlags, io: Io): Promise<number> {
  const cache = await connect(flags, io);
  try {
    for await (const key of cache.keys(flags.pattern ?? '*', scope(flags))) {
      await writeLine(io, flags.json === true ? JSON.stringify(key) : key);
    }
    return EXIT.ok;
  } catch (error) {
    throw new Failure(oneLine(error));
  } finally {
    await cache.close();
  }
}
