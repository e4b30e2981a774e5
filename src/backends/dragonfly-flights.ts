import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import { CacheError } from '../core/errors.js';
import { scopeOf } from '../core/keys.js';
import { decode } from '../core/serialization.js';
import type { FlightLocks, FlightOutcome } from '../core/shared-flight.js';
import type { EntryOptions } from '../core/types.js';
import type { Deadlines } from './deadlines.js';

// The cross-process half of `singleFlight: 'shared'` on Dragonfly/Redis (see
// src/core/shared-flight.ts). Locks live at `<prefix>:f:<scope><key>`, outside
// every scope (no listing, pattern clear or stats sees them); on a cluster
// with a hash tag that puts each in its entry's slot, so the store-under-lock
// script declares both keys in one slot. Outcomes are published on
// `<prefix>:flights` as `<outcome> <token> <lock key length> <lock key>`, and
// a small plain entry's stored text after it (the waiters need no read):
// every process of the prefix hears them, whatever the key (PUBLISH reaches
// every cluster node), so larger values are never sent this way.

// Every key a script touches is declared in KEYS (Dragonfly refuses undeclared ones).
const ACQUIRE = `local h = redis.call('GET', KEYS[1])
if not h then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {} end
return {h, redis.call('PTTL', KEYS[1])}`;
const BEAT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
// The outcome is published by the script that ends the lock: in the same step, so a process
// that closes its cache right after its answer never leaves its waiters unwoken.
// ARGV: token, channel, message.
const RELEASE = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;
// KEYS[1] the lock, KEYS[2] the entry; ARGV: token, channel, message, payload, lifetime in ms ('' forever).
const COMMIT = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[5] == '' then redis.call('SET', KEYS[2], ARGV[4]) else redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;

type LockClient = (Redis | Cluster) & {
  ckFlightAcquire(lock: string, token: string, ttlMs: number): Promise<[string, number] | []>;
  ckFlightBeat(lock: string, token: string, ttlMs: number): Promise<number>;
  ckFlightRelease(lock: string, token: string, channel: string, message: string): Promise<number>;
  ckFlightCommit(lock: string, entry: string, token: string, channel: string, message: string, payload: string, lifeMs: string): Promise<number>;
};

/** What the cache lends its locks: its deadlines, its payload encoding, and its failure counting. */
export interface LockHost {
  deadlines: Deadlines;
  /** The stored text of a write and how long it lives (ms, `undefined`: forever); throws `validation`/`serialization` errors as the write would. */
  payload(op: 'set' | 'writeEntry', key: string, value: unknown, options: EntryOptions | undefined): { raw: string; text: string; life: number | undefined; touch: () => Promise<unknown>[] } | undefined;
  /** Counts a failure in the scope's errors and turns it into a typed CacheError. */
  fail(scope: string, error: unknown, op: string): CacheError;
  /** Counts a landed write. */
  stored(scope: string, key: string): void;
}

/** Registers the lock scripts on `client`. */
export function defineLockCommands(client: Redis | Cluster): void {
  client.defineCommand('ckFlightAcquire', { numberOfKeys: 1, lua: ACQUIRE });
  client.defineCommand('ckFlightBeat', { numberOfKeys: 1, lua: BEAT });
  client.defineCommand('ckFlightRelease', { numberOfKeys: 1, lua: RELEASE });
  client.defineCommand('ckFlightCommit', { numberOfKeys: 2, lua: COMMIT });
}

type Heard = (outcome: FlightOutcome | 'down', token: string, stored?: () => unknown) => void;

// Plain entries (`ck1|`) up to this many characters travel in the 'stored' message.
const CARRIED = 8192;
const PLAIN = 'ck1|';

function message(outcome: FlightOutcome, token: string, lock: string, carried = ''): string {
  return `${outcome} ${token} ${lock.length} ${lock}${carried}`;
}

/** `FlightLocks` on one Dragonfly/Redis (or cluster) client; one subscriber connection, opened on first use. */
export class RedisFlightLocks implements FlightLocks {
  private readonly client: LockClient;
  private readonly channel: string;
  private readonly listeners = new Map<string, Set<Heard>>();
  private subscriber: Redis | Cluster | undefined;
  private subscribed: Promise<void> | undefined;

  constructor(
    client: Redis | Cluster,
    private readonly ns: string,
    private readonly host: LockHost,
  ) {
    this.client = client as LockClient;
    this.channel = `${ns}flights`;
  }

  private lockKey(key: string, scope: string): string {
    if (!(this.client instanceof Cluster)) return `${this.ns}f:${scope}${key}`;
    return `${this.ns}f:{${slotTag(calculateSlot(this.ns + scope + key))}}${scope}${key}`;
  }

  private async run<T>(scope: string, op: string, work: () => Promise<T>): Promise<T> {
    try {
      return await this.host.deadlines.bound(work());
    } catch (error) {
      throw this.host.fail(scope, error, op);
    }
  }

  async acquire(key: string, tenantId: string | undefined, token: string, ttlMs: number): Promise<{ holder: string; leftMs: number } | undefined> {
    const scope = scopeOf(tenantId);
    const reply = await this.run(scope, 'flightLock', () => this.client.ckFlightAcquire(this.lockKey(key, scope), token, ttlMs));
    if (reply.length === 0) return undefined;
    return { holder: String(reply[0]), leftMs: Math.max(0, Number(reply[1])) };
  }

  async beat(key: string, tenantId: string | undefined, token: string, ttlMs: number): Promise<boolean> {
    const scope = scopeOf(tenantId);
    return (await this.run(scope, 'flightBeat', () => this.client.ckFlightBeat(this.lockKey(key, scope), token, ttlMs))) === 1;
  }

  async release(key: string, tenantId: string | undefined, token: string, outcome: FlightOutcome): Promise<void> {
    const scope = scopeOf(tenantId);
    const lock = this.lockKey(key, scope);
    await this.run(scope, 'flightRelease', () => this.client.ckFlightRelease(lock, token, this.channel, message(outcome, token, lock)));
  }

  async commit(op: 'set' | 'writeEntry', key: string, value: unknown, options: EntryOptions | undefined, token: string): Promise<boolean> {
    const scope = scopeOf(options?.tenantId);
    const lock = this.lockKey(key, scope);
    const payload = this.host.payload(op, key, value, options);
    if (payload === undefined) {
      // Refused (a tagged value too old to store): the waiters are told at once.
      await this.release(key, options?.tenantId, token, 'unstored');
      return false;
    }
    const { raw, text, life, touch } = payload;
    const [written] = await this.run(scope, op, () =>
      Promise.all([this.client.ckFlightCommit(lock, raw, token, this.channel, message('stored', token, lock, text.length <= CARRIED && text.startsWith(PLAIN) ? text : ''), text, life === undefined ? '' : String(life)), ...touch()]),
    );
    if (written !== 1) return false;
    this.host.stored(scope, key);
    return true;
  }

  async listen(key: string, tenantId: string | undefined, heard: Heard): Promise<() => void> {
    const lock = this.lockKey(key, scopeOf(tenantId));
    await this.subscribe();
    let set = this.listeners.get(lock);
    if (set === undefined) this.listeners.set(lock, (set = new Set()));
    set.add(heard);
    return () => {
      const current = this.listeners.get(lock);
      if (current === undefined) return;
      current.delete(heard);
      if (current.size === 0) this.listeners.delete(lock);
    };
  }

  /** Subscribes once; a failure is the caller's (it fails open) and the next call tries again. */
  private subscribe(): Promise<void> {
    this.subscribed ??= this.open().catch((error: unknown) => {
      this.subscribed = undefined;
      this.subscriber?.disconnect();
      this.subscriber = undefined;
      throw this.host.fail('g:', error, 'flightSubscribe');
    });
    return this.subscribed;
  }

  private async open(): Promise<void> {
    const subscriber: Redis | Cluster = this.client instanceof Cluster ? this.client.duplicate() : (this.client as Redis).duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', () => {});
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const first = text.indexOf(' ');
      const second = text.indexOf(' ', first + 1);
      const third = text.indexOf(' ', second + 1);
      if (first === -1 || second === -1 || third === -1) return;
      const end = third + 1 + Number(text.slice(second + 1, third));
      const set = this.listeners.get(text.slice(third + 1, end));
      if (set === undefined) return;
      const outcome = text.slice(0, first) as FlightOutcome;
      const token = text.slice(first + 1, second);
      const carried = text.slice(end);
      // Decoded per listener: no two callers share one object.
      const stored = carried.startsWith(PLAIN) ? () => decode(carried.slice(PLAIN.length)) : undefined;
      for (const heard of [...set]) heard(outcome, token, stored);
    });
    // A lost link may have lost messages: every waiter is told, and calls upstream itself.
    subscriber.on('close', () => {
      for (const set of [...this.listeners.values()]) for (const heard of [...set]) heard('down', '');
    });
    if (subscriber.status === 'wait') await this.host.deadlines.bound(subscriber.connect());
    await this.host.deadlines.bound(subscriber.subscribe(this.channel));
  }

  /** Closes the subscriber connection. */
  close(): void {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
    this.subscribed = undefined;
  }
}

// One short hash tag per cluster slot, found once: a lock carries its entry's slot whatever the key holds.
let slotTags: string[] | undefined;

function slotTag(slot: number): string {
  if (slotTags === undefined) {
    const tags: string[] = new Array<string>(16384);
    let found = 0;
    for (let i = 0; found < 16384; i++) {
      const tag = i.toString(36);
      const s = calculateSlot(tag);
      if (tags[s] === undefined) {
        tags[s] = tag;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot] as string;
}
