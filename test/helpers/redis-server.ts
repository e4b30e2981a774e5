import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { afterAll, inject } from 'vitest';
import { createDragonflyCache } from '../../src/backends/dragonfly.js';
import { freePort } from './free-port.js';

export { freePort };

/**
 * Whether a `redis-server` binary is on PATH (found by test/global-setup.ts), for
 * tests that start and hurt their own. Declare such tests with
 * `describeWith('redis-server')` / `itWith('redis-server')` (test/helpers/skips.ts),
 * which report the skip, rather than reading this.
 */
export const redisServerInstalled: boolean = inject('redisServerInstalled');

export interface RedisServerOptions {
  /** `maxmemory` in bytes (with `maxmemoryPolicy`); default: none. */
  maxmemory?: number;
  /** Default `noeviction`, so a full server refuses writes with OOM. */
  maxmemoryPolicy?: string;
}


function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * Sends one command on a fresh raw socket and resolves with the first reply line
 * (`+PONG`, `:3`, `-ERR ...`). Raw RESP rather than ioredis or `redis-cli`, so the
 * helper never blocks the event loop a load test is measuring and never retries.
 */
export function rawCommand(port: number, args: readonly string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply from 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(buffer.slice(0, end));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A private `redis-server` on a free port that a test may kill, pause, restart
 * or disconnect clients from: the one place that knows how to hurt a server.
 * Never the shared server: it only ever signals the process it spawned.
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  private paused = false;
  /** Faults injected so far (kill, pause, restart, client kill, ...), for the figures. */
  faults = 0;

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    live.add(server);
    await server.spawn();
    return server;
  }

  private async spawn(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (this.options.maxmemory !== undefined) {
      args.push('--maxmemory', String(this.options.maxmemory), '--maxmemory-policy', this.options.maxmemoryPolicy ?? 'noeviction');
    }
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    this.paused = false;
    await this.waitUntilAnswering(10_000);
  }

  /** Resolves once the server answers PING; throws after `ms`. */
  async waitUntilAnswering(ms = 10_000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      try {
        if ((await rawCommand(this.port, ['PING'], 500)) === '+PONG') return;
      } catch {
        // not up yet
      }
      if (Date.now() > until) throw new Error(`redis-server on port ${this.port} did not answer within ${ms} ms`);
      await sleep(20);
    }
  }

  /** SIGKILL, the outage a crashed server causes; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    this.paused = false;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.faults++;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the server keeps its sockets (the kernel even accepts new ones) but never answers. */
  pause(): void {
    if (!this.child || this.paused) return;
    this.faults++;
    this.child.kill('SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    if (!this.child || !this.paused) return;
    this.child.kill('SIGCONT');
    this.paused = false;
  }

  /** Starts a fresh, empty server on the same port (kills the old one first if needed). */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  /** `CLIENT KILL TYPE normal`: drops every client connection (the admin socket is skipped). */
  async killClients(): Promise<number> {
    this.faults++;
    const reply = await rawCommand(this.port, ['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
    return Number(reply.slice(1));
  }

  /** Any admin command on a raw socket; the first reply line. */
  command(...args: string[]): Promise<string> {
    return rawCommand(this.port, args);
  }

  /** Kills the server for good (SIGKILL works on a paused process too). */
  async stop(): Promise<void> {
    live.delete(this);
    await this.kill();
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    this.child?.kill('SIGKILL');
  }
}

const live = new Set<RedisServer>();
process.once('exit', () => {
  for (const server of live) server.killNow();
});

/**
 * Registers an `afterAll` that stops every server this file started, even when
 * a test failed half-way through with the server paused or dead. Call once at
 * the top of a test file that uses `RedisServer`.
 */
export function stopRedisServersAfterAll(): void {
  afterAll(async () => {
    await Promise.all([...live].map((server) => server.stop()));
  });
}

/** The outages the fail-open tests put every wrapper through, one script each. */
export const outages = {
  async killAndRestart(server: RedisServer, downMs: number): Promise<void> {
    await server.kill();
    await sleep(downMs);
    await server.restart();
  },
  async pauseFor(server: RedisServer, ms: number): Promise<void> {
    server.pause();
    await sleep(ms);
    server.resume();
  },
  async killClientsThrice(server: RedisServer): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await server.killClients();
      await sleep(200);
    }
  },
  /** Fills a server started with `maxmemory` from outside the code under test, until it refuses writes. */
  async fill(server: RedisServer, commandTimeout: number): Promise<void> {
    server.faults++;
    const filler = await createDragonflyCache({ url: server.url, commandTimeout, keyPrefix: 'filler' });
    const big = 'f'.repeat(8192);
    let i = 0;
    while (await filler.set(`f${i++}`, big));
    await sleep(800);
    await filler.close();
  },
};
