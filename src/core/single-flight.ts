import { decode, encode } from './serialization.js';

/**
 * One upstream call per key at a time, inside one process. Callers who ask
 * for a key while its call runs join it; once it has answered, the answer is
 * held until its cache write has landed, so a caller who comes in between
 * (the cache still misses) joins it too instead of calling upstream again.
 *
 * The caller who started the call gets upstream's own answer; every joiner
 * gets a private copy, made through the cache's own encoding, so no two
 * callers ever share one mutable object. An answer that encoding cannot carry
 * (the cache could not store it either) is handed to joiners as it is.
 */
/** An answer kept for joiners while its cache write is in flight, and what was stored of it (what a joiner saves by it). */
export interface Held {
  write: Promise<unknown>;
  stored: unknown;
}

/** A joined flight: its answer (a private copy), and `held` when it had already answered. */
export interface Joined<T> {
  answer: Promise<T>;
  held: Held | undefined;
}

// Moves on every tag invalidation in this process (`noteTagInvalidation`): a
// flight that started before one may compute what the invalidation dropped, so no caller who
// comes after it joins that flight (one more upstream call, only for calls that straddle it).
let tagEpoch = 0;

/** Called by every backend's `invalidateTags` before it acts: flights started before it take no new joiners. */
export function noteTagInvalidation(): void {
  tagEpoch++;
}

export class SingleFlight {
  // Per tenant, then per key: a lookup builds no combined string.
  private readonly byScope = new Map<string, Map<string, Flight<unknown>>>();

  /**
   * The flight a new caller for `key` would join, or `undefined`. `running`
   * limits it to calls still waiting for upstream (a refresh must not be
   * answered by a result that was already there when it was asked).
   */
  join<T>(scope: string | undefined, key: string, running = false): Joined<T> | undefined {
    const flight = this.byScope.get(scope ?? '')?.get(key) as Flight<T> | undefined;
    if (flight === undefined || (running && flight.answered) || flight.epoch !== tagEpoch) return undefined;
    return { answer: flight.joined(), held: flight.held };
  }

  /**
   * Runs `work` as the flight for `key`. `work` gets a `hold` function: called
   * with the answer and its cache write, it keeps the answer for joiners until
   * that write settles. Without it, the flight ends with `work`.
   */
  run<T>(
    scope: string | undefined,
    key: string,
    work: (hold: Hold<T>) => Promise<T>,
    copies: Copies<T> = copiesByEncoding,
  ): Promise<T> {
    const scoped = this.scoped(scope ?? '');
    const flight = new Flight<T>(copies);
    scoped.set(key, flight as Flight<unknown>);
    const end = () => {
      if (scoped.get(key) === flight) scoped.delete(key);
      if (scoped.size === 0 && this.byScope.get(scope ?? '') === scoped) this.byScope.delete(scope ?? '');
    };
    const hold = (answer: T, held: Held) => {
      flight.held = held;
      flight.answer(answer);
      // Copied now: the caller who started it gets `answer` itself and may change it before anyone joins.
      flight.snapshot();
      held.write.then(end, end);
    };
    let promise: Promise<T>;
    try {
      promise = work(hold);
    } catch (error) {
      promise = Promise.reject(error);
    }
    return promise.then(
      (answer) => {
        flight.answer(answer);
        if (!flight.held) end();
        return answer;
      },
      (error: unknown) => {
        flight.fail(error);
        end();
        throw error;
      },
    );
  }

  private scoped(scope: string): Map<string, Flight<unknown>> {
    let scoped = this.byScope.get(scope);
    if (!scoped) this.byScope.set(scope, (scoped = new Map()));
    return scoped;
  }
}

/**
 * Makes a copier for one answer: called once per flight, its result once per
 * joiner, with `held` true for a joiner who came after the answer (it never
 * waited for upstream: for the cache's purposes, a hit).
 */
export type Copies<T> = (answer: T) => (held: boolean) => T;

/** Keeps `answer` for joiners until `held.write` settles. */
export type Hold<T> = (answer: T, held: Held) => void;

class Flight<T> {
  readonly epoch = tagEpoch;
  answered = false;
  held: Held | undefined;
  private value: T | undefined;
  private copy: ((held: boolean) => T) | undefined;
  private error: { reason: unknown } | undefined;
  private waiters: { resolve: (value: T) => void; reject: (error: unknown) => void }[] = [];

  constructor(private readonly copies: Copies<T>) {}

  joined(): Promise<T> {
    if (this.error) return Promise.reject(this.error.reason);
    if (this.answered) return new Promise<T>((resolve) => resolve(this.copier()(true)));
    return new Promise<T>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  answer(value: T): void {
    if (this.answered) return;
    this.answered = true;
    this.value = value;
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const waiter of waiters) {
      try {
        waiter.resolve(this.copier()(false));
      } catch (error) {
        waiter.reject(error);
      }
    }
  }

  fail(reason: unknown): void {
    if (this.answered) return;
    this.error = { reason };
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(reason);
  }

  snapshot(): void {
    this.copier();
  }

  // Made on first use: an answer nobody joined and nobody holds is never encoded for copying.
  private copier(): (held: boolean) => T {
    return (this.copy ??= this.copies(this.value as T));
  }
}

/**
 * Copies by the cache's own encoding: exactly what a hit would return. The
 * text is made once, however many callers joined; an answer the encoding
 * cannot carry (the cache cannot store it either) is handed out as it is.
 */
export function copiesByEncoding<T>(answer: T): (held?: boolean) => T {
  if (answer === null || typeof answer !== 'object') return () => answer;
  let text: string;
  try {
    text = encode(answer);
  } catch {
    return () => answer;
  }
  return () => decode(text) as T;
}
