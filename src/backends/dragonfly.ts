import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { CacheError, DragonflyConnectionError } from '../core/errors.js';
import { checkLogger, EventHub, log, type CacheEvent, type CacheEventListener, type CacheEventType, type CacheLogger } from '../core/events.js';
import { getOrSet } from '../core/get-or-set.js';
import { checkKey, checkPattern, checkScopeOptions, checkSetOptions, checkStatsOptions, defaultTtlMs, entriesOf, keysOf, scopeOf, tagsOf, ttlMs, writeMetaOf, type WriteMeta } from '../core/keys.js';
import { checkOptions, describeType, describeValue, optionNames } from '../core/options.js';
import { decode, encode } from '../core/serialization.js';
import { CounterSet, toStats, type Measured } from '../core/stats.js';
import { noteTagInvalidation } from '../core/single-flight.js';
import { TAG_GUARD_MS, tooOldToTag } from '../core/tags.js';
import type { BatchEntries, Cache, CacheEntry, CacheStats, EntryInfo, EntryOptions, GetOrSetOptions, ScopeOptions, SetOptions, StatsOptions } from '../core/types.js';
import { FLIGHT_LOCKS, type FlightLocks } from '../core/shared-flight.js';
import { Deadlines } from './deadlines.js';
import { defineLockCommands, RedisFlightLocks } from './dragonfly-flights.js';

/**
 * Options of `createDragonflyCache`.
 *
 * @example
 * const cache = await createDragonflyCache({ url: process.env.REDIS_URL, keyPrefix: 'myapp', commandTimeout: 300, logger: console });
 */
export interface DragonflyCacheOptions {
  /** Server host, a non-empty string. Default `127.0.0.1`. Ignored when `url` or `client` is given. */
  host?: string;
  /** Server port, an integer from 1 to 65535 (a string is a `validation` error). Default `6379`. */
  port?: number;
  /** Password for `AUTH`. Default: none. Never appears in an error message; a refused one rejects the factory (`connection`). */
  password?: string;
  /** ACL user name for `AUTH` (Redis 6+, Dragonfly). Default: none (the `default` user). */
  username?: string;
  /**
   * Database number, a non-negative integer below the server's count (Redis and
   * Dragonfly default to 16). Default `0`. A server that refuses the SELECT
   * rejects `createDragonflyCache` (errorType `server`); a reconnection whose
   * SELECT fails is dropped, never used on db 0.
   */
  db?: number;
  /**
   * `redis://` or `rediss://` URL, `redis://[[user]:password@]host[:port][/db]`;
   * takes precedence over host/port/password/username/db. Any other scheme is a
   * `validation` error.
   */
  url?: string;
  /** TLS options passed to ioredis (`true` for defaults, `false` or omitted: no TLS; `rediss://` URLs use TLS). */
  tls?: boolean | NonNullable<RedisOptions['tls']>;
  /**
   * The seed nodes of a Redis Cluster, at least one `{ host, port }` (host
   * default `127.0.0.1`): cachekit builds an ioredis `Cluster` that fails fast
   * and never resends a command that failed on a lost node (README: "Redis
   * Cluster"). `password`, `username`, `tls`, `connectTimeout` apply to every
   * node. Cannot be combined with `url`, `host`, `port`, `db` (a cluster has
   * only db 0) or `client`. Default: none (one server).
   */
  nodes?: readonly ClusterNodeAddress[];
  /**
   * An ioredis `Redis` or `Cluster` you created. cachekit uses it as is (configure
   * it to fail fast and with the right `db`, see README: cachekit checks SELECT
   * only on connections it makes) and `close()` leaves it open.
   */
  client?: Redis | Cluster;
  /** TTL applied when a `set` gives none, in seconds; `Infinity` or omitted: entries never expire. */
  defaultTtl?: number;
  /**
   * Namespace of every raw key (`<keyPrefix>:...`), 1-64 characters of `[A-Za-z0-9_.-]`:
   * no `:` and no glob metacharacter, so two prefixes never share keys. Default `cachekit`.
   */
  keyPrefix?: string;
  /** Milliseconds to establish the connection before `createDragonflyCache` rejects. Default 2000. */
  connectTimeout?: number;
  /** Milliseconds a command may take before it rejects with a `timeout` error. Default 500. */
  commandTimeout?: number;
  /**
   * Where connection trouble is logged (console, pino: see `CacheLogger`):
   * `warn` once when the link fails or drops, `debug` for each failed
   * reconnection attempt, `info` when it is back (also a `reconnect` event).
   * Messages name the host and port, never a password. Default: nothing is logged.
   */
  logger?: CacheLogger;
}

/** A seed node of a Redis Cluster (`nodes`). */
export interface ClusterNodeAddress {
  /** Host name or address, a non-empty string. Default `127.0.0.1`. */
  host?: string;
  /** Port, an integer from 1 to 65535. */
  port: number;
}

const ENVELOPE = 'ck1|';
// Entries with a grace period or tags: `ck2|<length>|<meta JSON, ASCII><encoded value>`. Plain
// entries keep `ck1|`, so their hit path and every entry written before grace and tags read as ever.
const WITH_META = 'ck2|';
const PREFIX = /^[A-Za-z0-9_.-]{1,64}$/;
// Dragonfly can deadlock a client on pipelines over ~10 000 commands; batches are cut well below.
const CHUNK = 1000;

// Every key a script touches is declared in KEYS: Dragonfly refuses undeclared keys.
const SET_MANY_PX = `for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1]) end return #KEYS`;
// pcall: a list or hash under the key (data we did not write) is "not equal", not a script error.
// ARGV[1] is the plain payload, ARGV[2] the encoded value an entry with metadata ends with.
const DELETE_IF_EQUALS = `local v = redis.pcall('GET', KEYS[1])
if v == ARGV[1] then return redis.call('DEL', KEYS[1]) end
if type(v) == 'string' and string.sub(v, 1, 4) == 'ck2|' then
  local bar = string.find(v, '|', 5, true)
  local len = bar and tonumber(string.sub(v, 5, bar - 1))
  if len and string.sub(v, bar + 1 + len) == ARGV[2] then return redis.call('DEL', KEYS[1]) end
end
return 0`;
// A tagged write makes its tags' records outlive it (ARGV[1]: its lifetime in ms, -1 forever),
// creating them (never invalidated: "0") if needed. See src/core/tags.ts.
const TAG_TOUCH = `local life = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then
  if life < 0 then redis.call('SET', KEYS[1], '0') else redis.call('SET', KEYS[1], '0', 'PX', life) end
elseif life < 0 then
  if ttl >= 0 then redis.call('PERSIST', KEYS[1]) end
elseif ttl >= 0 and ttl < life then
  redis.call('PEXPIRE', KEYS[1], life)
end
return 1`;
// An invalidation stamps the record with the server's clock (one clock for every process),
// keeping the lifetime tagged writes gave it, and at least ARGV[1] ms.
const TAG_INVALIDATE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], string.format('%d', now))
if ttl ~= -1 then
  local guard = tonumber(ARGV[1])
  if ttl < guard then ttl = guard end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return now`;

// A tiered cache's read: the entry and its life left, in one round trip and one atomic step.
// -3 marks data of another type under the key (a miss counted in errors, as `get` does).
const READ_LIFE = `local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then return {false, -3} end
return {v, redis.call('PTTL', KEYS[1])}`;

type Client = Redis | Cluster;
type ScriptClient = Client & {
  ckReadLife(key: string): Promise<[string | null, number]>;
  ckSetManyPx(...args: (string | number)[]): Promise<number>;
  ckDeleteIfEquals(key: string, expected: string, encoded: string): Promise<number>;
  ckTagTouch(record: string, lifeMs: number): Promise<number>;
  ckTagInvalidate(record: string, guardMs: number): Promise<number>;
};

const OPTIONS = optionNames<DragonflyCacheOptions>({ nodes: true, host: true, port: true, password: true, username: true, db: true, url: true, tls: true, client: true, defaultTtl: true, keyPrefix: true, connectTimeout: true, commandTimeout: true, logger: true });
const NODE_OPTIONS = optionNames<ClusterNodeAddress>({ host: true, port: true });
const WHERE = 'createDragonflyCache';

function invalid(message: string): CacheError {
  return new CacheError(`${WHERE}: ${message}`, 'validation');
}

function positiveMs(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(`${name} must be a positive number of milliseconds, got ${describeValue(value)}`);
  }
  return value;
}

// Schemes worth naming in a message; anything else may be part of a mistyped URL holding credentials.
const NAMED_SCHEMES = new Set(['http:', 'https:', 'unix:', 'tcp:', 'ws:', 'wss:', 'file:']);

/**
 * Checks how to reach the server before ioredis sees it: ioredis reads an
 * `http://` URL as a unix socket path and a string port as a path too, and
 * connects to db 0 when SELECT fails. Passwords and URLs never reach a message.
 */
function checkConnection(options: DragonflyCacheOptions): void {
  const { url, host, port, password, username, tls, client, nodes } = options;
  if (client !== undefined && !(client instanceof Redis) && !(client instanceof Cluster)) {
    // Two copies of ioredis in one node_modules (a library pinning its own) fail instanceof across them.
    const c = client as { sendCommand?: unknown; duplicate?: unknown };
    const elsewhere = typeof c.sendCommand === 'function' && typeof c.duplicate === 'function' ? ' (an ioredis client from another copy of ioredis than the one cachekit loads: install one version, e.g. with npm dedupe)' : '';
    throw invalid(`client must be an ioredis Redis or Cluster, got ${describeType(client)}${elsewhere}`);
  }
  if (nodes !== undefined) checkNodes(options);
  if (url !== undefined) {
    if (typeof url !== 'string') throw invalid(`url must be a redis:// or rediss:// URL string, got ${describeType(url)}`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid('url is not a valid URL (expected redis://[[user]:password@]host[:port][/db])');
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      const scheme = NAMED_SCHEMES.has(parsed.protocol) ? `a ${parsed.protocol}// URL` : 'a URL of another scheme';
      throw invalid(`url must be a redis:// or rediss:// URL, got ${scheme}`);
    }
    if (!/^(\/\d*)?$/.test(parsed.pathname) || !Number.isSafeInteger(Number(parsed.pathname.slice(1) || 0))) {
      throw invalid('the url path must be a database number (redis://host:port/2), got another path');
    }
  }
  if (options.db !== undefined && (typeof options.db !== 'number' || !Number.isSafeInteger(options.db) || options.db < 0)) {
    throw invalid(`db must be a non-negative integer, got ${describeValue(options.db)}`);
  }
  if (host !== undefined && (typeof host !== 'string' || host === '')) throw invalid(`host must be a non-empty string, got ${describeValue(host)}`);
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535)) {
    throw invalid(`port must be an integer from 1 to 65535, got ${describeValue(port)}`);
  }
  if (password !== undefined && typeof password !== 'string') throw invalid(`password must be a string, got ${describeType(password)}`);
  if (username !== undefined && typeof username !== 'string') throw invalid(`username must be a string, got ${describeType(username)}`);
  if (tls !== undefined && typeof tls !== 'boolean' && (tls === null || typeof tls !== 'object')) {
    throw invalid(`tls must be a boolean or an object of TLS options, got ${describeValue(tls)}`);
  }
}

function checkNodes(options: DragonflyCacheOptions): void {
  const nodes: unknown = options.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) throw invalid(`nodes must be a non-empty array of { host, port }, got ${describeValue(nodes)}`);
  for (const name of ['url', 'host', 'port', 'db', 'client'] as const) {
    if (options[name] !== undefined) throw invalid(`nodes cannot be combined with ${name}: a cluster is reached through its nodes, and has only db 0`);
  }
  nodes.forEach((node: unknown, i) => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) throw invalid(`nodes[${i}] must be an object such as { host: '10.0.0.1', port: 6379 }, got ${describeValue(node)}`);
    checkOptions(`${WHERE}: nodes[${i}]`, node, NODE_OPTIONS);
    const { host, port } = node as Partial<ClusterNodeAddress>;
    if (host !== undefined && (typeof host !== 'string' || host === '')) throw invalid(`nodes[${i}].host must be a non-empty string, got ${describeValue(host)}`);
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
      throw invalid(`nodes[${i}].port must be an integer from 1 to 65535, got ${describeValue(port)}`);
    }
  });
}

/**
 * Connects to Dragonfly (or any Redis-protocol server) and checks it with PING
 * before resolving. Rejects with `DragonflyConnectionError` within
 * `connectTimeout` when the server cannot be reached (its message and `cause`
 * keep the reason: `ECONNREFUSED`, `ENOTFOUND`, refused credentials), and with
 * a `validation` CacheError for bad options, unknown option names included.
 */
export async function createDragonflyCache(options: DragonflyCacheOptions = {}): Promise<Cache> {
  checkOptions(WHERE, options, OPTIONS);
  const keyPrefix = options.keyPrefix ?? 'cachekit';
  if (typeof keyPrefix !== 'string' || !PREFIX.test(keyPrefix)) {
    throw invalid(`keyPrefix must be 1-64 characters of [A-Za-z0-9_.-], got ${describeValue(keyPrefix)}`);
  }
  let defaultTtl: number | undefined;
  try {
    defaultTtl = defaultTtlMs(options.defaultTtl);
  } catch (error) {
    throw invalid((error as Error).message);
  }
  const connectTimeout = positiveMs('connectTimeout', options.connectTimeout, 2000);
  const commandTimeout = positiveMs('commandTimeout', options.commandTimeout, 500);
  const logger = checkLogger(WHERE, options.logger);
  checkConnection(options);
  const owned = options.client === undefined;
  const client = options.client ?? newClient(options, connectTimeout, commandTimeout);
  const where = describe(options);
  // ioredis reports connection trouble as events too; the operations report it to callers,
  // and once the cache exists, its logger (see `watchConnection`).
  const onError = () => {};
  client.on('error', onError);
  // ioredis answers a failed SELECT by emitting an error and carrying on with the connection,
  // in db 0, among other data: a connection whose SELECT failed is dropped instead (ioredis
  // reconnects, and SELECTs again, on its retry schedule), so no command ever runs on it.
  let selectRefused: string | undefined;
  const onSelectError = (error: unknown) => {
    if (isReplyError(error) && (error as { command?: { name?: unknown } }).command?.name === 'select') {
      selectRefused = firstLine(error.message);
      client.disconnect(true);
    }
  };
  if (owned) client.on('error', onSelectError);
  // A failed connection reaches the caller only as "Connection is closed": keep the real
  // reason (ECONNREFUSED, ENOTFOUND, a refused AUTH or SELECT) from the first error event
  // instead; the ones after it are that failure's echoes.
  let reason: Error | undefined;
  let refused: string | undefined;
  const onConnectError = (error: unknown) => {
    if (!(error instanceof Error)) return;
    reason ??= withoutCommand(error);
    if (isReplyError(error) && /^(WRONGPASS|NOAUTH|NOPERM)/.test(error.message)) refused = firstLine(error.message);
  };
  client.on('error', onConnectError);
  let clock: ServerClock;
  try {
    await deadline(connect(client, owned), connectTimeout, `could not connect to ${where} within ${connectTimeout} ms`);
    await deadline(client.ping(), connectTimeout, `${where} did not answer PING within ${connectTimeout} ms`);
    clock = await deadline(serverClock(client), connectTimeout, `${where} did not answer TIME within ${connectTimeout} ms`);
  } catch (error) {
    if (owned) {
      client.off('error', onSelectError);
      client.disconnect();
    } else client.off('error', onError);
    if (refused !== undefined) {
      throw new DragonflyConnectionError(`could not connect to ${where}: the server refused the credentials: ${refused}`, 'connection', { cause: reason });
    }
    if (selectRefused !== undefined) {
      throw new CacheError(`could not connect to ${where}: the server refused SELECT ${databaseOf(options)}: ${selectRefused}`, 'server', { cause: reason });
    }
    if (reason !== undefined) {
      const context = error instanceof DragonflyConnectionError ? error.message : `could not connect to ${where}`;
      throw new DragonflyConnectionError(`${context}: ${firstLine(reason.message)}`, 'connection', { cause: reason });
    }
    throw toCacheError(error, `could not connect to ${where}`);
  } finally {
    client.off('error', onConnectError);
  }
  return new DragonflyCache(client, owned, keyPrefix, defaultTtl, commandTimeout, where, logger, clock, () => {
    client.off('error', onError);
    client.off('error', onSelectError);
  });
}

/**
 * How far the server's clock is from ours: tag invalidations are stamped
 * with the server's time (one clock for every process, whatever theirs say),
 * and a tagged entry's start is translated to it. `error` bounds the
 * estimate (half the round trip, plus the clock's resolution).
 */
interface ServerClock {
  offsetMs: number;
  errorMs: number;
}

async function serverClock(client: Client): Promise<ServerClock> {
  const before = Date.now();
  const [seconds, micros] = await client.time();
  const after = Date.now();
  const server = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return { offsetMs: Math.round(server - (before + after) / 2), errorMs: Math.ceil((after - before) / 2) + 1 };
}

/** What an entry with metadata holds (`ck2|`); the times are the server's clock, epoch ms. */
class StoredMeta {
  constructor(
    readonly value: unknown,
    /** Where its ttl ends; `undefined` without grace. */
    readonly freshUntil: number | undefined,
    /** When its computation started. */
    readonly startedAt: number,
    readonly tags: readonly string[] | undefined,
  ) {}
}

interface MetaJson {
  f?: number;
  s: number;
  t?: string[];
}

function asciiJson(value: unknown): string {
  // Lua counts bytes, JavaScript UTF-16 units: an ASCII meta has one length for both.
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Reads a `ck2|` entry; throws on anything malformed (foreign data: the caller reads a miss). */
function withMeta(stored: string): StoredMeta {
  const bar = stored.indexOf('|', WITH_META.length);
  const length = Number(stored.slice(WITH_META.length, bar));
  if (bar === -1 || !Number.isSafeInteger(length) || length <= 0) throw new Error('malformed entry');
  const start = bar + 1;
  // decode, not JSON.parse: its depth guard protects against foreign data here too.
  const meta = decode(stored.slice(start, start + length)) as Partial<MetaJson> | null;
  if (meta === null || typeof meta !== 'object' || typeof meta.s !== 'number') throw new Error('malformed entry');
  const tags = meta.t;
  if (tags !== undefined && (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string'))) throw new Error('malformed entry');
  return new StoredMeta(decode(stored.slice(start + length)), typeof meta.f === 'number' ? meta.f : undefined, meta.s, tags);
}

/** The database the options select: the URL's path, else `db`, else 0. */
function databaseOf(options: DragonflyCacheOptions): number {
  if (options.url !== undefined) return Number(new URL(options.url).pathname.slice(1) || 0);
  return options.db ?? 0;
}

function firstLine(message: string): string {
  const end = message.indexOf('\n');
  return end === -1 ? message : message.slice(0, end);
}

/**
 * The error as a cause safe to keep: ioredis attaches the failed command to a
 * reply error, and a refused AUTH or HELLO carries the password in its arguments.
 */
function withoutCommand(error: Error): Error {
  if (!('command' in error)) return error;
  const copy = new Error(firstLine(error.message));
  copy.name = error.name;
  return copy;
}

function newClient(options: DragonflyCacheOptions, connectTimeout: number, commandTimeout: number): Client {
  // Fail fast: a cache that waits for an absent server is worse than a miss (see README, "Outages").
  const connection: RedisOptions = {
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout,
    // No ioredis commandTimeout: the cache bounds every command itself (see `Deadlines`),
    // and a second timer per command cost throughput for nothing.
    socketTimeout: Math.max(2000, commandTimeout * 4),
  };
  const tls = options.tls === true ? {} : options.tls === false ? undefined : options.tls;
  const credentials: RedisOptions = {
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(tls === undefined ? {} : { tls }),
  };
  if (options.nodes !== undefined) return newCluster(options.nodes, { ...credentials, ...connection }, connectTimeout);
  const failFast: RedisOptions = {
    ...connection,
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
  };
  if (options.url !== undefined) return new Redis(options.url, failFast);
  return new Redis({ host: options.host ?? '127.0.0.1', port: options.port ?? 6379, db: options.db ?? 0, ...credentials, ...failFast });
}

/**
 * A Cluster that keeps the promise of the single-server client: a command that
 * failed is never resent. ioredis retries a command whose node was lost, and
 * one answered CLUSTERDOWN, every 100 ms up to 16 times: measured in a
 * failover (test/backends/cluster-failover.test.ts), 19 of 20 writes that had
 * rejected with a timeout landed after the replica was promoted, where they
 * could overwrite newer ones. With both delays 0 such a command fails at once
 * (a `connection` error); MOVED is still followed at once, since the command
 * never ran. ioredis never reconnects a node of a cluster (its retryStrategy
 * and reconnectOnError are ioredis's): a lost node is replaced by the one
 * MOVED names, and the slots are refreshed. A replica answers MOVED, not
 * READONLY, to a client that did not ask to read from it.
 */
function newCluster(nodes: readonly ClusterNodeAddress[], perNode: RedisOptions, connectTimeout: number): Cluster {
  const options: ClusterOptions = {
    lazyConnect: true,
    // Only the top-level setting counts for a Cluster (its nodes always queue).
    enableOfflineQueue: false,
    // Auto-pipelining groups commands per node before a topology change and sends them after
    // it: during a failover that reached callers as raw MOVED replies and "All keys in the
    // pipeline should belong to the same slots allocation group". Plain commands follow MOVED.
    enableAutoPipelining: false,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    slotsRefreshTimeout: Math.min(1000, connectTimeout),
    clusterRetryStrategy: (times) => Math.min(50 * times, 1000),
    redisOptions: perNode,
  };
  return new Cluster(
    nodes.map((node) => ({ host: node.host ?? '127.0.0.1', port: node.port })),
    options,
  );
}

// Never the URL itself: it may carry a password.
function describe(options: DragonflyCacheOptions): string {
  if (options.client) return 'the given client';
  if (options.nodes !== undefined) {
    const [first] = options.nodes as readonly ClusterNodeAddress[];
    const more = options.nodes.length - 1;
    return `Redis Cluster at ${first?.host ?? '127.0.0.1'}:${first?.port}${more > 0 ? ` (+${more} seed node${more === 1 ? '' : 's'})` : ''}`;
  }
  if (options.url !== undefined) {
    try {
      const url = new URL(options.url);
      return `Dragonfly at ${url.hostname}:${url.port || 6379}`;
    } catch {
      return 'Dragonfly at the given url';
    }
  }
  return `Dragonfly at ${options.host ?? '127.0.0.1'}:${options.port ?? 6379}`;
}

async function connect(client: Client, owned: boolean): Promise<void> {
  if (owned) {
    await client.connect();
    // Without an offline queue a Cluster refuses a command for a node whose connection is
    // still opening ("Connection is closed"): the first burst failed. Every master's is opened now.
    if (client instanceof Cluster) await Promise.all(client.nodes('master').map((node) => node.ping()));
    return;
  }
  if (client.status === 'ready') return;
  if (client.status === 'wait') return void (await client.connect());
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('end', () => reject(new Error('connection ended')));
  });
}

async function deadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DragonflyConnectionError(message, 'connection')), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}

function toCacheError(error: unknown, context: string, stored?: number): CacheError {
  if (error instanceof CacheError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const extra = stored === undefined ? {} : { stored };
  // A cluster that lost a master answers CLUSTERDOWN until a replica takes over: an outage
  // (which the fallback cache routes around), not an error in what was asked.
  if (isReplyError(error) && !message.startsWith('CLUSTERDOWN')) return new CacheError(`${context}: server error: ${message}`, 'server', { cause: error, ...extra });
  if (message.includes('timed out')) {
    return new DragonflyConnectionError(`${context}: command timed out`, 'timeout', { cause: error, ...extra });
  }
  return new DragonflyConnectionError(`${context}: ${message}`, 'connection', { cause: error, ...extra });
}

function isOutOfMemory(error: unknown): boolean {
  return isReplyError(error) && error.message.startsWith('OOM');
}

// A list, hash, ... under our prefix is data we did not write: a miss, like a foreign string.
function isWrongType(error: unknown): boolean {
  return isReplyError(error) && error.message.startsWith('WRONGTYPE');
}

// How often the server's eviction and expiry counters are read while someone listens to `evict` or `expire`.
const SERVER_POLL_MS = 5000;
// Keys sampled per node by the bounded `stats()` estimate (see `estimate`).
const STATS_SAMPLE = 1000;
const STATS_PAGES = 10;
// A node with at most this many keys is counted exactly (at most 20 SCAN pages), a larger one sampled.
const COUNT_UP_TO = 20_000;
// z for a two-sided 99% interval.
const Z99 = 2.576;

class DragonflyCache implements Cache {
  readonly kind = 'dragonfly';
  private readonly client: ScriptClient;
  private readonly counters = new CounterSet();
  private readonly events = new EventHub();
  private readonly ns: string;
  private readonly deadlines: Deadlines;
  private readonly unwatch: () => void;
  private serverPoll: NodeJS.Timeout | undefined;
  private serverSeen: { evictions: number; expirations: number } | undefined;
  private closed = false;
  private flightLocks: RedisFlightLocks | undefined;

  constructor(
    client: Client,
    private readonly owned: boolean,
    keyPrefix: string,
    private readonly defaultTtl: number | undefined,
    commandTimeout: number,
    where: string,
    private readonly logger: CacheLogger | undefined,
    private readonly clock: ServerClock,
    private readonly detach: () => void,
  ) {
    this.deadlines = new Deadlines(commandTimeout);
    this.ns = `${keyPrefix}:`;
    this.untenanted = `${this.ns}g:`;
    this.records = `${this.ns}x:`;
    client.defineCommand('ckSetManyPx', { lua: SET_MANY_PX });
    client.defineCommand('ckDeleteIfEquals', { numberOfKeys: 1, lua: DELETE_IF_EQUALS });
    client.defineCommand('ckTagTouch', { numberOfKeys: 1, lua: TAG_TOUCH });
    client.defineCommand('ckTagInvalidate', { numberOfKeys: 1, lua: TAG_INVALIDATE });
    client.defineCommand('ckReadLife', { numberOfKeys: 1, lua: READ_LIFE });
    defineLockCommands(client);
    this.client = client as ScriptClient;
    this.unwatch = this.watchConnection(client, where);
    this.events.onChange = () => this.pollServer();
  }

  // Tag records live at `<prefix>:x:<scope><tag>`: outside every scope, so no key listing,
  // pattern clear or tenant's stats sees them.
  private readonly records: string;
  private readonly readThrough = {
    staleHit: (tenantId: string | undefined) => this.counters.add(scopeOf(tenantId), 'staleHits'),
    unstorable: (tenantId: string | undefined) => this.counters.add(scopeOf(tenantId), 'errors'),
  };

  /** `<keyPrefix>:g:`, the scope of untenanted calls, joined once: a key then costs one concatenation, not two. */
  private readonly untenanted: string;

  private rawKey(scope: string, key: string): string {
    return (scope === 'g:' ? this.untenanted : this.ns + scope) + key;
  }

  /** Now, on the server's clock. */
  private now(): number {
    return Date.now() + this.clock.offsetMs;
  }

  private open(): void {
    if (this.closed) throw new CacheError('the cache is closed', 'closed');
  }

  on<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.on(type, listener);
    return this;
  }

  off<E extends CacheEventType>(type: E, listener: CacheEventListener<E>): this {
    this.events.off(type, listener);
    return this;
  }

  /** Queues an event; only called when `this.events.listening`. */
  private emit(type: CacheEventType, operation: string, key: string | undefined, count: number, scope: string, durationMs?: number, error?: unknown): void {
    const event: CacheEvent = { type, source: 'dragonfly', operation, key, count, tenantId: tenantOfScope(scope) };
    if (durationMs !== undefined) event.durationMs = durationMs;
    if (error !== undefined) event.error = error;
    this.events.emit(event);
  }

  /**
   * Logs connection trouble (ioredis emits an `error` per failed attempt,
   * about once a second while the server is away: one `warn` per outage, the
   * rest at `debug`) and emits `reconnect` when the link is back.
   */
  private watchConnection(client: Client, where: string): () => void {
    let downSince: number | undefined;
    const down = (why: string) => {
      if (this.closed) return;
      if (downSince === undefined) {
        downSince = performance.now();
        log(this.logger, 'warn', `cachekit: connection to ${where} ${why}`);
      } else log(this.logger, 'debug', `cachekit: ${where} still unreachable: ${why}`);
    };
    const onError = (error: unknown) => down(`failed: ${error instanceof Error ? firstLine(error.message) : String(error)}`);
    const onClose = () => down('lost');
    const onReady = () => {
      if (downSince === undefined) return;
      const ms = performance.now() - downSince;
      downSince = undefined;
      log(this.logger, 'info', `cachekit: reconnected to ${where} after ${Math.round(ms)} ms`);
      if (this.events.listening) this.emit('reconnect', 'connection', undefined, 1, 'g:', ms);
    };
    client.on('error', onError);
    client.on('node error', onError);
    client.on('close', onClose);
    client.on('ready', onReady);
    return () => {
      client.off('error', onError);
      client.off('node error', onError);
      client.off('close', onClose);
      client.off('ready', onReady);
    };
  }

  /**
   * Evictions and expiries happen on the server, key by key, unseen: while
   * someone listens to `evict` or `expire`, the server's counters are read
   * every 5 s and what they grew by is emitted as one event each.
   */
  private pollServer(): void {
    const wanted = !this.closed && (this.events.has('evict') || this.events.has('expire'));
    if (!wanted) {
      clearInterval(this.serverPoll);
      this.serverPoll = undefined;
      this.serverSeen = undefined;
      return;
    }
    if (this.serverPoll !== undefined) return;
    const read = () => {
      this.serverCounters().then(
        (now) => {
          const before = this.serverSeen;
          this.serverSeen = now;
          if (before === undefined || !this.events.listening) return;
          if (now.evictions > before.evictions) this.emit('evict', 'server', undefined, now.evictions - before.evictions, 'g:');
          if (now.expirations > before.expirations) this.emit('expire', 'server', undefined, now.expirations - before.expirations, 'g:');
        },
        (error: unknown) => log(this.logger, 'debug', `cachekit: reading the server's counters failed: ${error instanceof Error ? firstLine(error.message) : String(error)}`),
      );
    };
    read();
    this.serverPoll = setInterval(read, SERVER_POLL_MS);
    // Listening alone must not keep a process alive.
    this.serverPoll.unref();
  }

  /** Counts the failure and turns it into a typed error. */
  private fail(scope: string, error: unknown, op: string, started?: number): CacheError {
    this.counters.add(scope, 'errors');
    const failure = toCacheError(error, `${op} failed`);
    if (this.events.listening) this.emit('error', op, undefined, 1, scope, started === undefined ? undefined : performance.now() - started, failure);
    return failure;
  }

  /** Data under our prefix that we did not write reads as a miss and counts as an error. */
  private unwrap(scope: string, stored: string | null): unknown {
    if (stored === null) return undefined;
    if (stored.startsWith(ENVELOPE)) {
      try {
        return decode(stored.slice(ENVELOPE.length));
      } catch {
        // fall through: corrupted
      }
    } else if (stored.startsWith(WITH_META)) {
      try {
        return withMeta(stored);
      } catch {
        // fall through: corrupted
      }
    }
    this.counters.add(scope, 'errors');
    return undefined;
  }

  /** Whether none of the entry's tags was invalidated since its computation started (see src/core/tags.ts). */
  private async tagsValid(scope: string, entry: StoredMeta): Promise<boolean> {
    const tags = entry.tags as readonly string[];
    const records = await this.mget(tags.map((tag) => this.records + scope + tag));
    // The start is our estimate of the server's time: an invalidation within its error counts as after it.
    const start = entry.startedAt - this.clock.errorMs;
    return records.every((record) => record !== null && Number(record) < start);
  }

  /** A value `get` would return, from what `unwrap` gave: `undefined` past its ttl or invalidated. */
  private async live(scope: string, value: unknown): Promise<unknown> {
    if (!(value instanceof StoredMeta)) return value;
    if (value.freshUntil !== undefined && this.now() >= value.freshUntil) return undefined;
    if (value.tags !== undefined && !(await this.tagsValid(scope, value))) return undefined;
    return value.value;
  }

  async get<T>(key: string, options?: ScopeOptions): Promise<T | undefined> {
    this.open();
    checkKey(key);
    checkScopeOptions('get', options);
    const scope = options?.tenantId === undefined ? 'g:' : scopeOf(options.tenantId);
    const started = this.events.listening ? performance.now() : 0;
    let stored: string | null;
    try {
      stored = await this.deadlines.bound(this.client.get(this.rawKey(scope, key)));
    } catch (error) {
      if (!isWrongType(error)) throw this.fail(scope, error, 'get', started);
      this.counters.add(scope, 'errors');
      stored = null;
    }
    let value = this.unwrap(scope, stored);
    if (value instanceof StoredMeta) {
      try {
        value = await this.live(scope, value);
      } catch (error) {
        throw this.fail(scope, error, 'get');
      }
    }
    if (value === undefined) this.counters.miss(scope);
    else this.counters.hit(scope);
    if (this.events.listening) this.emit(value === undefined ? 'miss' : 'hit', 'get', key, 1, scope, performance.now() - started);
    return value as T | undefined;
  }

  async readEntry<T>(key: string, options?: ScopeOptions): Promise<CacheEntry<T> | undefined> {
    this.open();
    checkKey(key);
    checkScopeOptions('readEntry', options);
    const scope = scopeOf(options?.tenantId);
    let found: unknown;
    let stale = false;
    try {
      found = this.unwrap(scope, await this.deadlines.bound(this.client.get(this.rawKey(scope, key))));
      if (found instanceof StoredMeta) {
        if (found.tags !== undefined && !(await this.tagsValid(scope, found))) found = undefined;
        else {
          stale = found.freshUntil !== undefined && this.now() >= found.freshUntil;
          found = found.value;
        }
      }
    } catch (error) {
      if (!isWrongType(error)) throw this.fail(scope, error, 'readEntry');
      this.counters.add(scope, 'errors');
      found = undefined;
    }
    if (found === undefined || stale) this.counters.miss(scope);
    else this.counters.hit(scope);
    return found === undefined ? undefined : { value: found as T, stale };
  }

  getOrSet<T>(key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<T> {
    return getOrSet(this, this.readThrough, key, factory, options);
  }

  async invalidateTags(tags: readonly string[], options?: ScopeOptions): Promise<void> {
    this.open();
    const list = tagsOf(tags, 'invalidateTags');
    checkScopeOptions('invalidateTags', options);
    const scope = scopeOf(options?.tenantId);
    if (list === undefined) return;
    noteTagInvalidation();
    try {
      await Promise.all(list.map((tag) => this.deadlines.bound(this.client.ckTagInvalidate(this.records + scope + tag, TAG_GUARD_MS))));
    } catch (error) {
      throw this.fail(scope, error, 'invalidateTags');
    }
  }

  writeEntry(key: string, value: unknown, options?: EntryOptions): Promise<boolean> {
    return this.write('writeEntry', key, value, options);
  }

  /**
   * The stored text of a value, and how long the server keeps it (ms,
   * `undefined`: forever): `ck1|` for a plain entry, `ck2|` with the
   * metadata (ttl end, computation start, tags) otherwise.
   */
  private payload(value: unknown, ttl: number | undefined, meta: WriteMeta | undefined): { text: string; life: number | undefined } {
    const encoded = encode(value);
    if (meta === undefined) return { text: ENVELOPE + encoded, life: ttl };
    const graced = meta.graceMs > 0 && ttl !== undefined;
    const json: MetaJson = { s: meta.startedAt + this.clock.offsetMs };
    if (graced) json.f = this.now() + (ttl as number);
    if (meta.tags !== undefined) json.t = meta.tags as string[];
    const text = asciiJson(json);
    return { text: `${WITH_META}${text.length}|${text}${encoded}`, life: graced ? (ttl as number) + meta.graceMs : ttl };
  }

  /** Makes the tags' records outlive an entry of `life` ms (see src/core/tags.ts). */
  private touchTags(scope: string, tags: readonly string[], life: number | undefined): Promise<unknown>[] {
    return tags.map((tag) => this.deadlines.bound(this.client.ckTagTouch(this.records + scope + tag, life ?? -1)));
  }

  set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    return this.write('set', key, value, options);
  }

  add(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    return this.write('add', key, value, options);
  }

  /**
   * One SET for all: `add` is SET ... NX, which answers null when an entry
   * exists (also one kept only by its grace). A tagged write touches its
   * tags' records in the same round trip.
   */
  private async write(op: 'set' | 'add' | 'writeEntry', key: string, value: unknown, options: EntryOptions | undefined): Promise<boolean> {
    const prepared = this.prepare(op, key, value, options);
    if (prepared === undefined) return false;
    const { scope, raw, text: payload, life, meta } = prepared;
    const started = this.events.listening ? performance.now() : 0;
    let reply: string | null;
    try {
      const setting = this.deadlines.bound(
        op !== 'add'
          ? life === undefined
            ? this.client.set(raw, payload)
            : this.client.set(raw, payload, 'PX', life)
          : life === undefined
            ? this.client.set(raw, payload, 'NX')
            : this.client.set(raw, payload, 'PX', life, 'NX'),
      );
      if (meta?.tags === undefined) reply = await setting;
      else [reply] = (await Promise.all([setting, ...this.touchTags(scope, meta.tags, life)])) as [string | null];
    } catch (error) {
      if (!isOutOfMemory(error)) throw this.fail(scope, error, op, started);
      if (op === 'set') return false;
      // `false` from add means "a live entry exists" to a lock: a full server must not read the same.
      // (The server answers OOM before it looks at the key, so this holds whether one exists or not.)
      throw new CacheError(`add refused: the server is out of memory: ${firstLine((error as Error).message)}`, 'refused', { cause: error });
    }
    if (reply !== 'OK') return false;
    this.counters.add(scope, 'sets');
    if (this.events.listening) this.emit('set', op, key, 1, scope, performance.now() - started);
    return true;
  }

  /** A write's checks and stored text; `undefined` when a tagged value's computation is too old to store. */
  private prepare(op: 'set' | 'add' | 'writeEntry', key: string, value: unknown, options: EntryOptions | undefined) {
    this.open();
    checkKey(key);
    if (op !== 'writeEntry') checkSetOptions(op, options);
    const meta = writeMetaOf(op, options, op === 'writeEntry');
    const scope = scopeOf(options?.tenantId);
    const ttl = ttlMs(options?.ttl, this.defaultTtl);
    if (meta?.tags !== undefined && tooOldToTag(meta.startedAt, Date.now())) return undefined;
    const { text, life } = this.payload(value, ttl, meta);
    return { scope, raw: this.rawKey(scope, key), text, life, meta };
  }

  /** Locks for `singleFlight: 'shared'` (src/core/shared-flight.ts), made on first use. */
  [FLIGHT_LOCKS](): FlightLocks {
    this.open();
    return (this.flightLocks ??= new RedisFlightLocks(this.client, this.ns, {
      deadlines: this.deadlines,
      payload: (op, key, value, options) => {
        const prepared = this.prepare(op, key, value, options);
        if (prepared === undefined) return undefined;
        const { scope, raw, text, life, meta } = prepared;
        return { raw, text, life, touch: () => (meta?.tags === undefined ? [] : this.touchTags(scope, meta.tags, life)) };
      },
      fail: (scope, error, op) => this.fail(scope, error, op),
      stored: (scope, key) => {
        this.counters.add(scope, 'sets');
        if (this.events.listening) this.emit('set', 'set', key, 1, scope);
      },
    }));
  }

  async delete(key: string, options?: ScopeOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    checkScopeOptions('delete', options);
    const scope = scopeOf(options?.tenantId);
    const started = this.events.listening ? performance.now() : 0;
    let removed: number;
    try {
      removed = await this.deadlines.bound(this.client.unlink(this.rawKey(scope, key)));
    } catch (error) {
      throw this.fail(scope, error, 'delete', started);
    }
    if (removed > 0) this.counters.add(scope, 'deletes');
    if (removed > 0 && this.events.listening) this.emit('delete', 'delete', key, 1, scope, performance.now() - started);
    return removed > 0;
  }

  async deleteIfEquals(key: string, expected: unknown, options?: ScopeOptions): Promise<boolean> {
    this.open();
    checkKey(key);
    checkScopeOptions('deleteIfEquals', options);
    const scope = scopeOf(options?.tenantId);
    const encoded = encode(expected);
    let removed: number;
    try {
      removed = await this.deadlines.bound(this.client.ckDeleteIfEquals(this.rawKey(scope, key), ENVELOPE + encoded, encoded));
    } catch (error) {
      throw this.fail(scope, error, 'deleteIfEquals');
    }
    if (removed > 0) this.counters.add(scope, 'deletes');
    if (removed > 0 && this.events.listening) this.emit('delete', 'deleteIfEquals', key, 1, scope);
    return removed > 0;
  }

  async clearPattern(pattern: string, options?: ScopeOptions): Promise<number> {
    this.open();
    checkPattern(pattern);
    checkScopeOptions('clearPattern', options);
    const scope = scopeOf(options?.tenantId);
    let removed: number;
    try {
      // The scope is a literal without glob metacharacters, so the pattern cannot match outside it.
      removed = await this.unlinkMatching(this.ns + scope + pattern);
    } catch (error) {
      throw this.fail(scope, error, 'clearPattern');
    }
    this.counters.add(scope, 'deletes', removed);
    if (removed > 0 && this.events.listening) this.emit('delete', 'clearPattern', undefined, removed, scope);
    return removed;
  }

  /** `SCAN … MATCH … COUNT 1000`, one page at a time, on every master; never `KEYS`. */
  async *keys(pattern: string, options?: ScopeOptions): AsyncGenerator<string, void, undefined> {
    this.open();
    checkPattern(pattern);
    checkScopeOptions('keys', options);
    const scope = scopeOf(options?.tenantId);
    // The scope is a literal without glob metacharacters, so the pattern cannot match outside it.
    const match = this.ns + scope + pattern;
    const strip = this.ns.length + scope.length;
    for (const node of this.nodes()) {
      let cursor = '0';
      do {
        this.open();
        let page: [string, string[]];
        try {
          page = await this.deadlines.bound(node.scan(cursor, 'MATCH', match, 'COUNT', CHUNK));
        } catch (error) {
          throw this.fail(scope, error, 'keys');
        }
        cursor = page[0];
        for (const raw of page[1]) yield raw.slice(strip);
      } while (cursor !== '0');
    }
  }

  async getMany<T>(keys: Iterable<string>, options?: ScopeOptions): Promise<Map<string, T>> {
    this.open();
    const list = keysOf(keys);
    checkScopeOptions('getMany', options);
    const scope = scopeOf(options?.tenantId);
    const found = new Map<string, T>();
    if (list.length === 0) return found;
    const raws = list.map((key) => this.rawKey(scope, key));
    const started = this.events.listening ? performance.now() : 0;
    let replies: (string | null)[];
    try {
      replies = await this.mget(raws);
    } catch (error) {
      throw this.fail(scope, error, 'getMany', started);
    }
    let hits = 0;
    const values = list.map((key, i) => this.unwrap(scope, replies[i] ?? null));
    if (values.some((value) => value instanceof StoredMeta)) {
      try {
        for (let i = 0; i < values.length; i++) values[i] = await this.live(scope, values[i]);
      } catch (error) {
        throw this.fail(scope, error, 'getMany');
      }
    }
    list.forEach((key, i) => {
      const value = values[i];
      if (value !== undefined) {
        found.set(key, value as T);
        hits++;
      }
    });
    this.counters.hit(scope, hits);
    this.counters.miss(scope, list.length - hits);
    if (this.events.listening) {
      const ms = performance.now() - started;
      if (hits > 0) this.emit('hit', 'getMany', undefined, hits, scope, ms);
      if (list.length > hits) this.emit('miss', 'getMany', undefined, list.length - hits, scope, hits > 0 ? undefined : ms);
    }
    return found;
  }

  async setMany(entries: BatchEntries, options?: SetOptions): Promise<number> {
    this.open();
    const pairs = entriesOf(entries);
    checkSetOptions('setMany', options);
    const scope = scopeOf(options?.tenantId);
    const ttl = ttlMs(options?.ttl, this.defaultTtl);
    const meta = writeMetaOf('setMany', options, false);
    // Encode everything before writing anything: one bad value stores nothing.
    const latest = new Map<string, string>();
    let life = ttl;
    for (const [key, value] of pairs) {
      const payload = this.payload(value, ttl, meta);
      latest.set(this.rawKey(scope, key), payload.text);
      life = payload.life;
    }
    if (latest.size === 0) return 0;
    const groups = this.groups([...latest.keys()]);
    const touched = meta?.tags === undefined ? [] : this.touchTags(scope, meta.tags, life);
    const results = await Promise.allSettled([
      ...groups.map((raws) => {
        const flat: string[] = [];
        if (life === undefined) {
          for (const raw of raws) flat.push(raw, latest.get(raw) as string);
          return this.deadlines.bound(this.client.mset(flat));
        }
        for (const raw of raws) flat.push(latest.get(raw) as string);
        return this.deadlines.bound(this.client.ckSetManyPx(raws.length, ...raws, life, ...flat));
      }),
      ...touched,
    ]);
    // Each group is one atomic command; a server filling up mid-batch accepts the first
    // groups and refuses the rest (OOM), so count what was stored rather than all or nothing.
    let stored = 0;
    let failure: unknown;
    results.forEach((result, g) => {
      if (result.status === 'fulfilled') stored += g < groups.length ? (groups[g] as string[]).length : 0;
      else if (!isOutOfMemory(result.reason)) failure ??= result.reason;
    });
    this.counters.add(scope, 'sets', stored);
    if (stored > 0 && this.events.listening) this.emit('set', 'setMany', undefined, stored, scope);
    if (failure !== undefined) {
      this.counters.add(scope, 'errors');
      const error = toCacheError(failure, `setMany failed (stored ${stored} of ${latest.size} entries)`, stored);
      if (this.events.listening) this.emit('error', 'setMany', undefined, 1, scope, undefined, error);
      throw error;
    }
    return stored;
  }

  /** GET, PTTL and MEMORY USAGE of the key together (one slot: a cluster answers them on one node). */
  async inspect(key: string, options?: ScopeOptions): Promise<EntryInfo | undefined> {
    this.open();
    checkKey(key);
    checkScopeOptions('inspect', options);
    const scope = scopeOf(options?.tenantId);
    const raw = this.rawKey(scope, key);
    let replies: [string | null, number, number | null];
    try {
      replies = await Promise.all([
        this.deadlines.bound(this.client.get(raw)),
        this.deadlines.bound(this.client.pttl(raw)),
        this.deadlines.bound(this.client.memory('USAGE', raw) as Promise<number | null>),
      ]);
    } catch (error) {
      if (isWrongType(error)) return undefined;
      throw this.fail(scope, error, 'inspect');
    }
    const [stored, pttl, usage] = replies;
    if (stored === null || !stored.startsWith(ENVELOPE)) return undefined;
    let value: unknown;
    try {
      value = decode(stored.slice(ENVELOPE.length));
    } catch {
      return undefined;
    }
    // PTTL: -1 no expiry, -2 gone since the GET.
    if (pttl === -2) return undefined;
    return { value, ttl: pttl < 0 ? Infinity : pttl / 1000, bytes: usage ?? Buffer.byteLength(raw) + Buffer.byteLength(stored) };
  }

  /**
   * Bounded by default (see `estimate`): two round trips per node, whatever
   * the keyspace; `{ exact: true }` walks every key with SCAN instead.
   */
  async stats(options?: StatsOptions): Promise<CacheStats> {
    this.open();
    const exact = checkStatsOptions(options);
    const tenantId = options?.tenantId;
    const scope = tenantId === undefined ? undefined : scopeOf(tenantId);
    const prefix = this.ns + (scope ?? '');
    try {
      const measured = exact ? await this.measure(prefix + '*') : await this.estimate(prefix);
      if (scope !== undefined) return toStats(this.counters.forScope(scope), measured, this.events.listenerErrors, { evictions: 0, expirations: 0 });
      return toStats(this.counters.total, measured, this.events.listenerErrors, await this.serverCounters());
    } catch (error) {
      throw this.fail(scope ?? 'g:', error, 'stats');
    }
  }

  async validate(): Promise<boolean> {
    if (this.closed) return false;
    const probe = `${this.ns}v:${process.pid}:${Math.random().toString(36).slice(2)}`;
    const payload = ENVELOPE + encode({ probe });
    try {
      await this.deadlines.bound(this.client.set(probe, payload, 'PX', 10_000));
      const back = await this.deadlines.bound(this.client.get(probe));
      await this.deadlines.bound(this.client.unlink(probe));
      return back === payload;
    } catch {
      return false;
    }
  }

  async clear(): Promise<void> {
    this.open();
    try {
      await this.unlinkMatching(this.ns + '*');
    } catch (error) {
      throw this.fail('g:', error, 'clear');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pollServer();
    this.unwatch();
    this.flightLocks?.close();
    // Writes still in flight (the LLM wrappers store in the background) land first, or time out.
    await this.deadlines.drained();
    this.detach();
    if (!this.owned) return;
    try {
      await this.deadlines.bound(this.client.quit());
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * `get` (`stale: false`) or `readEntry` (`stale: true`) for a tiered cache's
   * memory tier, counted alike, with what a copy of the entry may keep: its
   * fresh life left and its tags. No event: the tiered cache emits its own.
   */
  async readForTier(key: string, tenantId: string | undefined, stale: boolean): Promise<TierRead | undefined> {
    this.open();
    const scope = scopeOf(tenantId);
    const op = stale ? 'readEntry' : 'get';
    let stored: string | null;
    let life: number;
    try {
      [stored, life] = await this.deadlines.bound(this.client.ckReadLife(this.rawKey(scope, key)));
    } catch (error) {
      throw this.fail(scope, error, op);
    }
    if (life === -3) {
      this.counters.add(scope, 'errors');
      stored = null;
    }
    const found = this.unwrap(scope, stored);
    let read: TierRead | undefined;
    if (found instanceof StoredMeta) {
      let valid: boolean;
      try {
        valid = found.tags === undefined || (await this.tagsValid(scope, found));
      } catch (error) {
        throw this.fail(scope, error, op);
      }
      if (valid) {
        const now = this.now();
        const past = found.freshUntil !== undefined && now >= found.freshUntil;
        if (!past || stale) {
          const fresh = found.freshUntil === undefined ? life : found.freshUntil - now;
          read = { value: found.value, stale: past, lifeMs: life < 0 ? undefined : Math.min(fresh, life), tags: found.tags, startedAt: found.startedAt - this.clock.offsetMs };
        }
      }
    } else if (found !== undefined) {
      read = { value: found, stale: false, lifeMs: life < 0 ? undefined : life, tags: undefined, startedAt: 0 };
    }
    if (read === undefined || read.stale) this.counters.miss(scope);
    else this.counters.hit(scope);
    return read;
  }

  /** Publishes `message` on the tiered caches' channel of this key prefix. */
  async publishForTier(message: string): Promise<void> {
    this.open();
    try {
      await this.deadlines.bound(this.client.publish(this.tierChannel, message));
    } catch (error) {
      throw toCacheError(error, 'publishing an invalidation failed');
    }
  }

  /** The channel tiered caches of this key prefix tell each other what changed on. */
  get tierChannel(): string {
    return `${this.ns}~tier`;
  }

  /** A new connection to the same server, for SUBSCRIBE; `undefined` on a cluster. */
  tierSubscriber(): Redis | undefined {
    this.open();
    if (this.isCluster()) return undefined;
    // Resubscribed by the tiered cache itself, so it knows when the link is whole again.
    return (this.client as Redis).duplicate({ autoResubscribe: false, lazyConnect: true });
  }

  private isCluster(): boolean {
    return this.client instanceof Cluster;
  }

  /** Keys grouped so each group is one command: per hash slot on a cluster, per chunk everywhere. */
  private groups(raws: string[]): string[][] {
    const bySlot = new Map<number, string[]>();
    if (this.isCluster()) {
      for (const raw of raws) {
        const slot = calculateSlot(raw);
        const group = bySlot.get(slot);
        if (group) group.push(raw);
        else bySlot.set(slot, [raw]);
      }
    } else {
      bySlot.set(0, raws);
    }
    const out: string[][] = [];
    for (const group of bySlot.values()) {
      for (let i = 0; i < group.length; i += CHUNK) out.push(group.slice(i, i + CHUNK));
    }
    return out;
  }

  private async mget(raws: string[]): Promise<(string | null)[]> {
    const groups = this.groups(raws);
    if (groups.length === 1) return this.deadlines.bound(this.client.mget(groups[0] as string[]));
    const replies = await Promise.all(groups.map((group) => this.deadlines.bound(this.client.mget(group))));
    const byKey = new Map<string, string | null>();
    groups.forEach((group, g) => group.forEach((raw, i) => byKey.set(raw, (replies[g] as (string | null)[])[i] ?? null)));
    return raws.map((raw) => byKey.get(raw) ?? null);
  }

  private nodes(): Redis[] {
    return this.client instanceof Cluster ? this.client.nodes('master') : [this.client as Redis];
  }

  /**
   * SCAN + UNLINK in pages, never KEYS and never one long blocking command.
   * The next page is scanned while the previous one is being unlinked.
   */
  private async unlinkMatching(match: string): Promise<number> {
    let removed = 0;
    for (const node of this.nodes()) {
      const pending: Promise<number>[] = [];
      let cursor = '0';
      do {
        const [next, raws] = await this.deadlines.bound(node.scan(cursor, 'MATCH', match, 'COUNT', CHUNK));
        cursor = next;
        for (const group of this.groups(raws)) {
          const unlinked = this.deadlines.bound(this.client.unlink(group));
          // An UNLINK can fail while the next SCAN is awaited, or after a SCAN failed and nobody
          // awaits it any more: observed at once, it never becomes an unhandled rejection (which
          // ends a Node process with default settings). Promise.all below still sees the failure.
          unlinked.catch(() => {});
          pending.push(unlinked);
        }
      } while (cursor !== '0');
      for (const n of await Promise.all(pending)) removed += n;
    }
    return removed;
  }

  /**
   * The keys under `prefix` and their bytes, estimated from a sample in
   * bounded time. Per node: DBSIZE, then SCAN from cursor 0 without MATCH
   * until 1 000 keys came back, at most 10 pages (SCAN walks the hash table in bucket order,
   * so the keys it returns first are a sample that does not depend on their
   * names), then MEMORY USAGE of the sampled keys under `prefix`. The share
   * of the sample under the prefix times DBSIZE is `size`; their mean bytes
   * times `size` is `memoryMb`. A node with at most 20 000 keys is counted
   * exactly instead (at most 20 SCAN pages), as is one the sample covered whole. The margin is the 99% Wilson interval of the
   * share (99 estimates in 100 are within it), times DBSIZE, summed over the
   * nodes: at most 4.1% of DBSIZE (share 1/2, 1 000 keys), 0.7% when the
   * prefix holds none or all of the keys. A scope that is a small share of
   * the server is therefore poorly resolved in relative terms (a tenant with
   * 1% of 10 million keys: 100 000 ± 8 000): ask `{ exact: true }` there.
   */
  private async estimate(prefix: string): Promise<Measured> {
    let size = 0;
    let bytes = 0;
    let margin = 0;
    let estimated = false;
    for (const node of this.nodes()) {
      const total = await this.deadlines.bound(node.dbsize());
      if (total === 0) continue;
      if (total <= COUNT_UP_TO) {
        // Small enough to count in a few pages: exact, and still bounded.
        const counted = await this.measureNode(node, `${prefix}*`);
        size += counted.size;
        bytes += counted.bytes;
        continue;
      }
      const sample: string[] = [];
      let cursor = '0';
      let pages = 0;
      // A sparse table (many empty buckets) answers fewer keys per page: the page count is capped too.
      do {
        const [next, raws] = await this.deadlines.bound(node.scan(cursor, 'COUNT', STATS_SAMPLE));
        cursor = next;
        pages++;
        for (const raw of raws) sample.push(raw);
      } while (cursor !== '0' && sample.length < STATS_SAMPLE && pages < STATS_PAGES);
      const whole = cursor === '0';
      const matched = sample.filter((raw) => raw.startsWith(prefix) && !raw.startsWith(this.records));
      let matchedBytes = 0;
      let live = 0;
      if (matched.length > 0) {
        const pipeline = node.pipeline();
        for (const raw of matched) pipeline.memory('USAGE', raw);
        for (const [error, usage] of (await this.deadlines.bound(pipeline.exec())) ?? []) {
          if (!error && typeof usage === 'number') {
            live++;
            matchedBytes += usage;
          }
        }
      }
      if (whole) {
        size += live;
        bytes += matchedBytes;
        continue;
      }
      estimated = true;
      const n = sample.length;
      if (n === 0) {
        // Nothing came back within the page cap: no basis for a share, only the bound.
        margin += total;
        continue;
      }
      const share = live / n;
      const nodeSize = Math.round(share * total);
      size += nodeSize;
      bytes += live === 0 ? 0 : (matchedBytes / live) * nodeSize;
      margin += wilsonHalfWidth(share, n) * total;
    }
    return { size, bytes, method: estimated ? 'estimated' : 'counted', margin: Math.ceil(margin) };
  }

  /** Live keys matching and their bytes according to the server (`MEMORY USAGE`). */
  private async measure(match: string): Promise<Measured> {
    let size = 0;
    let bytes = 0;
    for (const node of this.nodes()) {
      const counted = await this.measureNode(node, match);
      size += counted.size;
      bytes += counted.bytes;
    }
    return { size, bytes, method: 'counted', margin: 0 };
  }

  private async measureNode(node: Redis, match: string): Promise<{ size: number; bytes: number }> {
    let size = 0;
    let bytes = 0;
    let cursor = '0';
    do {
      const [next, found] = await this.deadlines.bound(node.scan(cursor, 'MATCH', match, 'COUNT', CHUNK));
      cursor = next;
      // Tag records are bookkeeping, not entries.
      const raws = found.filter((raw) => !raw.startsWith(this.records));
      if (raws.length === 0) continue;
      const pipeline = node.pipeline();
      for (const raw of raws) pipeline.memory('USAGE', raw);
      for (const [error, usage] of (await this.deadlines.bound(pipeline.exec())) ?? []) {
        // A key that expired since the scan answers nil: it is not counted.
        if (!error && typeof usage === 'number') {
          size++;
          bytes += usage;
        }
      }
    } while (cursor !== '0');
    return { size, bytes };
  }

  private async serverCounters(): Promise<{ evictions: number; expirations: number }> {
    let evictions = 0;
    let expirations = 0;
    for (const node of this.nodes()) {
      const info = await this.deadlines.bound(node.info('stats'));
      // Field sets differ between Dragonfly versions: read what is there, tolerate what is not.
      evictions += Number(/^evicted_keys:(\d+)/m.exec(info)?.[1] ?? 0);
      expirations += Number(/^expired_keys:(\d+)/m.exec(info)?.[1] ?? 0);
    }
    return { evictions, expirations };
  }
}

/**
 * How far the true share may be from `share` (measured on `n` keys), at
 * 99%: the larger side of the Wilson score interval, which stays honest at
 * shares of 0 and 1 where the normal approximation would claim no error.
 */
function wilsonHalfWidth(share: number, n: number): number {
  const z2 = Z99 * Z99;
  const centre = (share + z2 / (2 * n)) / (1 + z2 / n);
  const half = (Z99 * Math.sqrt((share * (1 - share)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return Math.max(centre + half - share, share - (centre - half));
}

/** The tenant id of a scope (`g:` untenanted, `t:<encoded tenant>:`). */
/** What `readForTier` found. */
export interface TierRead {
  value: unknown;
  /** Past its ttl, kept by its grace (only when asked for `readEntry`). */
  stale: boolean;
  /** Milliseconds before it stops being fresh, as the server counted them; `undefined`: never. */
  lifeMs: number | undefined;
  tags: readonly string[] | undefined;
  /** When its computation started, on this process's clock (0 for a plain entry). */
  startedAt: number;
}

/** The Redis tier a tiered cache drives: a Dragonfly cache's operations for it, `undefined` for any other cache. */
export type TierBackend = Pick<DragonflyCache, 'readForTier' | 'publishForTier' | 'tierChannel' | 'tierSubscriber'>;

/** The Redis tier behind `cache` when it is a Dragonfly cache (for `createTieredCache`). */
export function tierBackendOf(cache: unknown): TierBackend | undefined {
  return cache instanceof DragonflyCache ? cache : undefined;
}

function tenantOfScope(scope: string): string | undefined {
  return scope.length <= 2 ? undefined : decodeURIComponent(scope.slice(2, -1));
}
