interface Pending {
  readonly at: number;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

/**
 * The cache's own deadline on each command, counted from when the operation
 * asks for it. ioredis starts its `commandTimeout` only when the command is
 * written, and with auto-pipelining a command first waits for the previous
 * pipeline's replies: on a hung server that doubled the wait (measured 600 ms
 * at commandTimeout 300). It also bounds a `client` given by the caller,
 * whatever its own options.
 *
 * One deadline of `ms` per command, all served by a single timer. Every
 * command gets the same budget, so deadlines expire in the order the commands
 * were issued: a FIFO queue and one timer armed for its head replace a
 * `setTimeout` and a `clearTimeout` per command. Those timers (ours plus
 * ioredis's own `commandTimeout`) cost 3-6% of Redis throughput under 64
 * concurrent callers (bench workload 2, A/B in one process; BENCHMARKS.md).
 */
export class Deadlines {
  // Entries before `head` are answered or timed out (`undefined` once let go).
  private queue: (Pending | undefined)[] = [];
  private head = 0;
  private live = 0;
  private timer: NodeJS.Timeout | undefined;
  private idle: (() => void)[] = [];

  constructor(private readonly ms: number) {}

  /**
   * Resolves once no command is pending: every one answered or timed out, so
   * at most `ms` from now. `close()` waits for it before it sends QUIT, which
   * ioredis writes at once, ahead of auto-pipelined commands still queued.
   */
  drained(): Promise<void> {
    if (this.live === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private wake(): void {
    const idle = this.idle;
    this.idle = [];
    for (const resolve of idle) resolve();
  }

  /** `work`, or a rejection with "Command timed out" once `ms` have passed without an answer. */
  bound<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { at: performance.now() + this.ms, reject, settled: false };
      this.queue.push(pending);
      this.live++;
      this.timer ??= this.arm(this.ms);
      // A late answer lands on a settled promise: observed, never unhandled.
      work.then(
        (value) => {
          if (this.settle(pending)) resolve(value);
        },
        (error: unknown) => {
          if (this.settle(pending)) reject(error);
        },
      );
    });
  }

  private settle(pending: Pending): boolean {
    if (pending.settled) return false;
    pending.settled = true;
    // Nothing in flight: forget the settled entries but leave the timer armed, so
    // one caller awaiting one command at a time does not arm a timer per command.
    if (--this.live === 0) {
      this.queue.length = 0;
      this.head = 0;
      this.wake();
    } else if (this.queue[this.head] === pending) this.forgetAnswered();
    return true;
  }

  /**
   * Lets go of the answered commands at the head of the queue. When commands
   * arrive continuously (several pipelines in flight) something is always
   * pending, and every record, with the caller's promise and its answer, was
   * kept until the timer fired: up to `ms` of answers held in memory. Replies
   * come in the order commands were written, so the head is usually the one
   * just answered.
   */
  private forgetAnswered(): void {
    const queue = this.queue;
    let head = this.head;
    while (head < queue.length && (queue[head] as Pending).settled) queue[head++] = undefined;
    if (head >= 256) {
      queue.splice(0, head);
      head = 0;
    }
    this.head = head;
  }

  private arm(ms: number): NodeJS.Timeout {
    // A pending command holds the connection open already; the timer alone must not keep a process alive.
    return setTimeout(() => this.expire(), Math.max(1, Math.ceil(ms))).unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    const queue = this.queue;
    while (this.head < queue.length) {
      const pending = queue[this.head] as Pending;
      if (!pending.settled && pending.at > now) break;
      this.head++;
      if (!pending.settled) {
        pending.settled = true;
        if (--this.live === 0) this.wake();
        pending.reject(new Error('Command timed out'));
      }
    }
    queue.splice(0, this.head);
    this.head = 0;
    const next = queue[0];
    if (next) this.timer = this.arm(next.at - now);
  }
}
