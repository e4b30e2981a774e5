import { decode, encode } from '../core/serialization.js';
import type { Held, SingleFlight } from '../core/single-flight.js';
import { countJoined, storeResult, type CallPlan, type CallSite } from './cached-call.js';

/** What a streamed answer is stored as: every chunk as upstream sent it, in order. */
export interface RecordedStream<C = unknown> {
  chunks: C[];
  /** The usage upstream reported in the stream, so a hit can count the tokens it saved. */
  usage?: unknown;
  /** What the integration keeps beside the chunks (an SDK's response headers), see `StreamShape.meta`. */
  meta?: unknown;
}

/** How one integration tells a whole streamed answer from a cut one, and finds its usage. */
export interface StreamShape<C> {
  /**
   * Whether `chunks`, which the source yielded to its end, are a whole answer
   * (a finish reason, a completion event). A stream cut by the server often
   * ends without an error: only its content can tell.
   */
  complete: (chunks: readonly C[]) => boolean;
  /** The usage the chunks report, if any. */
  usage?: ((chunks: readonly C[]) => unknown) | undefined;
  /**
   * What is stored beside the chunks and handed back on a hit as the
   * recording's `meta`: what the SDK returned with the stream rather than in
   * it (the AI SDK's request body and response headers). Default: nothing.
   */
  meta?: (() => unknown) | undefined;
}

/** An upstream stream as a recording reads it. */
export interface UpstreamStream<C> {
  source: AsyncIterable<C>;
  /** Stops the upstream request (the SDK's `controller.abort()`): called when no caller is left. */
  cancel: () => void;
  /** Whether the source was cut by an abort (SDKs end an aborted stream quietly). Default: never. */
  aborted?: (() => boolean) | undefined;
}

/**
 * One upstream stream and every caller reading it. Chunks are kept as they
 * arrive (and a private text copy of each, made at once, so what the first
 * caller does to its chunk objects reaches nobody else); each caller reads
 * from the start at its own pace, then waits for the live ones. Upstream is
 * cancelled when the last caller leaves before the end; the recording is
 * stored when upstream ended by itself with a whole answer, whoever is still
 * reading; a failure reaches every caller and nothing is stored.
 */
class Recording<C> {
  readonly chunks: C[] = [];
  private readonly texts: (string | undefined)[] = [];
  private state: 'live' | 'done' | 'failed' | 'cancelled' = 'live';
  private error: unknown;
  private readers = 0;
  private cancel: (() => void) | undefined;
  private wakers: (() => void)[] = [];

  /** `gone`: called once when it failed or was cancelled (nobody may join it any more). */
  constructor(private readonly gone: () => void) {}

  /** Reads upstream to its end in the background; `ended` gets the chunks of a stream that ended by itself. */
  pump(open: () => Promise<UpstreamStream<C>>, ended: (chunks: C[], aborted: boolean) => void): void {
    void (async () => {
      let upstream: UpstreamStream<C>;
      try {
        upstream = await open();
      } catch (error) {
        this.fail(error);
        return;
      }
      this.cancel = upstream.cancel;
      if (this.state === 'cancelled') return void upstream.cancel();
      try {
        for await (const chunk of upstream.source) {
          if (this.state !== 'live') break;
          this.chunks.push(chunk);
          this.texts.push(textOf(chunk));
          this.notify();
        }
      } catch (error) {
        if (this.state === 'live') this.fail(error);
        return;
      }
      if (this.state !== 'live') return;
      this.state = 'done';
      this.notify();
      // Stored from the copies made on arrival: what a caller did to its chunk objects since is not recorded.
      ended(
        this.texts.map((text, i) => (text === undefined ? (this.chunks[i] as C) : (decode(text) as C))),
        upstream.aborted?.() ?? false,
      );
    })();
  }

  get live(): boolean {
    return this.state === 'live';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * A caller's own stream of the recording: the first caller gets upstream's
   * chunk objects, the others private copies. It ends when upstream does, when
   * the caller stops iterating (`break`, `return()`), or when `signal` aborts
   * (the stream then ends quietly, as the SDKs' do); its leaving cancels
   * upstream only when no caller is left.
   */
  reader(originals: boolean, signal?: AbortSignal): AsyncGenerator<C, void, undefined> {
    this.readers++;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      signal?.removeEventListener('abort', leave);
      this.readers--;
      if (this.readers === 0 && this.state === 'live') {
        this.state = 'cancelled';
        this.gone();
        this.cancel?.();
      }
      this.notify();
    };
    // Registered now, not at the first read: a caller who has not started reading yet still holds upstream.
    signal?.addEventListener('abort', leave);
    if (signal?.aborted) leave();
    return this.read(originals, () => left, leave);
  }

  private async *read(originals: boolean, hasLeft: () => boolean, leave: () => void): AsyncGenerator<C, void, undefined> {
    try {
      for (let i = 0; ; ) {
        if (hasLeft()) return;
        if (i < this.chunks.length) {
          const text = this.texts[i];
          const chunk = originals || text === undefined ? (this.chunks[i] as C) : (decode(text) as C);
          i++;
          yield chunk;
          continue;
        }
        if (this.state === 'failed') throw this.error;
        if (this.state !== 'live') return;
        await new Promise<void>((resolve) => this.wakers.push(resolve));
      }
    } finally {
      leave();
    }
  }

  private fail(error: unknown): void {
    this.state = 'failed';
    this.error = error;
    this.gone();
    this.notify();
  }

  private notify(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }
}

// A chunk that cannot be encoded (a class instance) is handed to every caller as it is.
function textOf(chunk: unknown): string | undefined {
  try {
    return encode(chunk);
  } catch {
    return undefined;
  }
}

/** The live recordings of the sites sharing one single-flight group, per tenant, then per key. */
const liveBySite = new WeakMap<SingleFlight, Map<string, Map<string, LiveEntry>>>();

interface LiveEntry {
  recording: Recording<unknown>;
  /** What the caller who started it got besides the chunks (the SDK's response, say); rejects when opening upstream failed. */
  extra: Promise<unknown>;
  /** Once finished and being stored: what was stored, for the hits of callers who join it. */
  held?: Held | undefined;
}

function liveOf(site: CallSite<unknown>, tenantId: string | undefined): Map<string, LiveEntry> {
  let scopes = liveBySite.get(site.flights);
  if (scopes === undefined) liveBySite.set(site.flights, (scopes = new Map()));
  let live = scopes.get(tenantId ?? '');
  if (live === undefined) scopes.set(tenantId ?? '', (live = new Map()));
  return live;
}

function forget(site: CallSite<unknown>, tenantId: string | undefined, key: string, entry: LiveEntry): void {
  const scopes = liveBySite.get(site.flights);
  const live = scopes?.get(tenantId ?? '');
  if (live?.get(key) !== entry) return;
  live.delete(key);
  if (live.size === 0) scopes?.delete(tenantId ?? '');
}

/** A caller's view of a shared streamed call. */
export interface SharedStream<C, E> {
  /** This caller's own chunks. */
  chunks: AsyncGenerator<C, void, undefined>;
  /** What the starter's `open` gave besides the stream (the SDK's response). */
  extra: E;
  /** `'miss'`: this caller started upstream or joined it live; `'hit'`: it joined a finished answer whose write is in flight. */
  status: 'miss' | 'hit';
}

/** One streamed call that may share its upstream stream with identical calls. */
export interface StreamCall<C, E> {
  site: CallSite<unknown>;
  plan: CallPlan;
  key: string;
  /** Opens the upstream stream; `extra` travels to joiners. */
  open: () => Promise<UpstreamStream<C> & { extra: E }>;
  shape: StreamShape<C>;
  /** `false`: this call may join a running stream but never be joined (its own abort signal is bound to its upstream call). */
  share: boolean;
  /** The caller's abort signal: its stream ends when it aborts. */
  signal?: AbortSignal | undefined;
  /** The call's arguments, for the site's `tags(result, ...args)`. */
  args?: readonly unknown[] | undefined;
}

/**
 * Joins an identical streamed call of this process, if one is live (or just
 * finished, its write in flight), counting it (unless `counted`): a miss
 * while live, a hit once finished. `undefined` when there is none to join (or
 * a refresh finds only a finished one, or, before its read, the site has a
 * `softTimeout`).
 */
export function joinStream<C, E>(call: Pick<StreamCall<C, E>, 'site' | 'plan' | 'key' | 'signal'>, counted = false): Promise<SharedStream<C, E>> | undefined {
  // With a soft timeout a caller reads first: a stale recording it finds bounds its wait for a
  // stream that is slow to open, as it bounds the wait of the caller who started it.
  if (!counted && call.site.freshness?.softTimeout !== undefined && call.plan.control?.refresh !== true) return undefined;
  const entry = liveBySite.get(call.site.flights)?.get(call.plan.tenantId ?? '')?.get(call.key);
  if (entry === undefined) return undefined;
  const live = entry.recording.live;
  if (!live && (!entry.recording.done || call.plan.control?.refresh)) return undefined;
  // `counted`: the caller read the cache first and counted its miss there.
  if (!counted) countJoined(call.site, call.plan, call.key, live ? undefined : entry.held);
  return opened(entry.recording.reader(false, call.signal) as AsyncGenerator<C, void, undefined>, entry.extra as Promise<E>, live ? 'miss' : 'hit');
}

async function opened<C, E>(chunks: AsyncGenerator<C, void, undefined>, extra: Promise<E>, status: 'miss' | 'hit'): Promise<SharedStream<C, E>> {
  try {
    return { chunks, extra: await extra, status };
  } catch (error) {
    // Upstream never opened: this caller reads nothing (its leaving is all that is left to do).
    void chunks.return();
    throw error;
  }
}

/**
 * Starts a streamed call upstream, shared with identical calls of this process
 * that come while it runs (see `joinStream`): each caller gets the chunks seen
 * so far, then the live ones. Stored (in the background) only when upstream
 * ended by itself with a whole answer (`shape.complete`), even if the caller
 * who started it left; never when it failed, was cut, or every caller left
 * (upstream is then cancelled). Rejects when opening upstream fails.
 */
export async function startStream<C, E>(call: StreamCall<C, E>): Promise<SharedStream<C, E>> {
  const { site, plan, key, shape } = call;
  const recording = new Recording<C>(() => forget(site, plan.tenantId, key, entry));
  const started = performance.now();
  const upstream = call.open();
  const extra = upstream.then((u) => u.extra);
  // Joiners and the starter each await it; nobody may be left holding an unobserved rejection.
  extra.catch(() => {});
  const entry: LiveEntry = { recording: recording as Recording<unknown>, extra, held: undefined };
  if (call.share) liveOf(site, plan.tenantId).set(key, entry);
  recording.pump(
    () => upstream,
    (chunks, aborted) => {
      const held = aborted || !shape.complete(chunks) ? undefined : storeRecording(call, chunks, started);
      // Kept for joiners until the write lands, as single-flight holds an answer.
      if (held === undefined) forget(site, plan.tenantId, key, entry);
      else {
        entry.held = held;
        const end = () => forget(site, plan.tenantId, key, entry);
        held.write.then(end, end);
      }
    },
  );
  return opened(recording.reader(true, call.signal), extra, 'miss');
}

function storeRecording<C, E>(call: StreamCall<C, E>, chunks: C[], started: number): Held | undefined {
  return storeResult(call.site, call.plan, call.key, recordingOf(call.shape, chunks), performance.now() - started, call.args, call.plan.model);
}

function recordingOf<C>(shape: StreamShape<C>, chunks: C[]): RecordedStream<C> {
  const usage = shape.usage?.(chunks);
  const meta = shape.meta?.();
  const recorded: RecordedStream<C> = usage === undefined ? { chunks } : { chunks, usage };
  if (meta !== undefined) recorded.meta = meta;
  return recorded;
}

/** Whether a stored value is a recording (anything else reads as a miss). */
export function isRecording(value: unknown): value is RecordedStream {
  return value !== null && typeof value === 'object' && Array.isArray((value as RecordedStream).chunks);
}

/**
 * Yields recorded chunks one by one, as the live stream did (never merged),
 * `paceMs` apart when given, and stops as soon as the consumer does or
 * `signal` aborts.
 */
export async function* replayChunks<C>(chunks: readonly C[], options: { paceMs?: number | undefined; signal?: AbortSignal | undefined } = {}): AsyncGenerator<C, void, undefined> {
  const { paceMs, signal } = options;
  for (let i = 0; i < chunks.length; i++) {
    if (signal?.aborted) return;
    if (paceMs !== undefined && paceMs > 0 && i > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
    if (signal?.aborted) return;
    yield chunks[i] as C;
  }
}
