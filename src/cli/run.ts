import { parseArgs, type ParseArgsConfig } from 'node:util';
import { clearCommand, CLEAR_HELP } from './clear-command.js';
import { CONNECTION_HELP } from './connect.js';
import { explainCommand, EXPLAIN_HELP } from './explain-command.js';
import { inspectCommand, INSPECT_HELP } from './inspect-command.js';
import { EXIT, Failure, oneLine, UsageError, type Io } from './io.js';
import { keysCommand, KEYS_HELP } from './keys-command.js';
import { statsCommand, STATS_HELP } from './stats-command.js';

const HELP = `cachekit: look at and act on a cachekit cache on Dragonfly or Redis

Usage: cachekit <command> [options]     cachekit <command> --help

Commands:
  stats         counters and size (--watch: live, every second)
  keys          list keys matching a glob, streamed
  inspect KEY   one entry: value, TTL left, size; model and tokens for LLM entries
  clear         delete keys matching a glob (asks first; progress bar)
  explain-key   the request key of a request in a JSON file, and what went in

${CONNECTION_HELP}

Every command takes --json (output for scripts) and --help.
Exit codes: 0 done, 1 failed (server unreachable, no such key, declined), 2 bad command line.`;

type Options = NonNullable<ParseArgsConfig['options']>;
const connection: Options = { url: { type: 'string' }, prefix: { type: 'string' }, tenant: { type: 'string' } };
const common: Options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

const COMMANDS: Record<string, { help: string; options: Options; connects: boolean; run: (positionals: string[], flags: Record<string, unknown>, io: Io) => Promise<number> }> = {
  stats: { help: STATS_HELP, options: { watch: { type: 'boolean', short: 'w' }, exact: { type: 'boolean' } }, connects: true, run: (_, f, io) => statsCommand(f, io) },
  keys: { help: KEYS_HELP, options: { pattern: { type: 'string', short: 'p' } }, connects: true, run: (_, f, io) => keysCommand(f, io) },
  inspect: { help: INSPECT_HELP, options: {}, connects: true, run: (p, f, io) => inspectCommand(p[0], f, io) },
  clear: { help: CLEAR_HELP, options: { pattern: { type: 'string', short: 'p' }, yes: { type: 'boolean', short: 'y' }, 'dry-run': { type: 'boolean' } }, connects: true, run: (_, f, io) => clearCommand(f, io) },
  'explain-key': {
    help: EXPLAIN_HELP,
    options: { for: { type: 'string' }, endpoint: { type: 'string' }, 'base-url': { type: 'string' }, namespace: { type: 'string' } },
    connects: false,
    run: (p, f, io) => explainCommand(p[0], f, io),
  },
};

/** Runs one command line; resolves with the exit code, having printed any error in one line on stderr. */
export async function runCli(argv: string[], io: Io = { out: process.stdout, err: process.stderr, stdin: process.stdin, env: process.env }): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.out.write(`${HELP}\n`);
      return name === undefined ? EXIT.usage : EXIT.ok;
    }
    const command = COMMANDS[name];
    if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${Object.keys(COMMANDS).join(', ')})`);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...common, ...(command.connects ? connection : {}), ...command.options }, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError(`${name}: ${oneLine(error).replace(/\. To specify a positional argument.*$/, '')}`);
    }
    if (parsed.values.help === true) {
      io.out.write(`${command.help}${command.connects ? `\n\n${CONNECTION_HELP}` : ''}\n`);
      return EXIT.ok;
    }
    const most = name === 'inspect' || name === 'explain-key' ? 1 : 0;
    if (parsed.positionals.length > most) throw new UsageError(`${name}: unexpected argument ${JSON.stringify(parsed.positionals[most])}`);
    return await command.run(parsed.positionals, parsed.values, io);
  } catch (error) {
    const code = error instanceof UsageError ? EXIT.usage : EXIT.failed;
    const hint = error instanceof UsageError ? ` (cachekit ${name !== undefined && COMMANDS[name] ? `${name} ` : ''}--help)` : '';
    io.err.write(`cachekit: ${error instanceof UsageError || error instanceof Failure ? error.message : oneLine(error)}${hint}\n`);
    return code;
  }
}
