/**
 * Collapses concurrent calls for the same key into one execution: while a call
 * for `key` is running, later callers receive the same promise.
 */
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running as Promise<T>;
    const promise = (async () => {
      try {
        return await work();
      } finally {
        this.inFlight.delete(key);
      }
    })();
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Whether a call for `key` is running now. */
  has(key: string): boolean {
    return this.inFlight.has(key);
  }
}
