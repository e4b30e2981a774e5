import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterOptions } from 'ioredis';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

// Asynchronous, so a test's load is not stalled while the helper watches the cluster.
const run = promisify(execFile);
async function cli(port: number, ...args: string[]): Promise<string> {
  try {
    return (await run('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 2000 })).stdout;
  } catch {
    return '';
  }
}

export interface RedisClusterOptions {
  /** Replicas per master (0 or 1). Default 0: three masters only. */
  replicas?: 0 | 1;
  /**
   * `cluster-node-timeout` in ms: how long a master may be silent before its
   * replica takes over. Default 1000 (Redis's own default, 15 s, would make a
   * failover test wait that long).
   */
  nodeTimeoutMs?: number;
  /** `cluster-require-full-coverage`: whether every slot is refused while any has no master. Default `true` (Redis's default). */
  requireFullCoverage?: boolean;
}

/** One node of the cluster as `CLUSTER NODES` reports it. */
export interface ClusterNode {
  port: number;
  role: 'master' | 'replica';
  /** The master's port, for a replica. */
  masterPort?: number;
  /** Slot ranges served, for a master: `[first, last]` pairs. */
  slots: [number, number][];
}

export interface RedisClusterHandle {
  /** Every node's port, masters first (as `--cluster create` assigned them). */
  ports: number[];
  /** A client the behaviour suite was written against (offline queue on, ioredis retries). */
  client(): Cluster;
  /** The cluster's view of its nodes, read from a live node. */
  nodes(): Promise<ClusterNode[]>;
  /** `INFO <section>` of the node on `port` (empty if it does not answer). */
  info(port: number, section: string): Promise<string>;
  /** SIGKILLs the node on `port` and resolves once it exited; its data is gone with it. */
  kill(port: number): Promise<void>;
  /**
   * Resolves once every slot the killed master served has a live master and the
   * cluster reports `cluster_state:ok`: the replica was promoted. Resolves with
   * the promoted node's port.
   */
  failedOver(killedPort: number, timeoutMs?: number): Promise<number>;
  stop(): void;
}

/**
 * A real Redis Cluster on free ports: three masters, optionally each with a
 * replica, for the cluster variant of the behaviour suite and the failover
 * test. Cluster ports use port + 10000 for the bus, so ports are picked below
 * 55535. The one place that knows how to start and hurt a cluster.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const replicas = options.replicas ?? 0;
  const nodeTimeout = options.nodeTimeoutMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'ck-cluster-'));
  const ports: number[] = [];
  while (ports.length < 3 * (1 + replicas)) {
    const port = await freePort();
    if (port < 55_535 && !ports.includes(port)) ports.push(port);
  }
  const servers = new Map<number, ChildProcess>();
  for (const port of ports) {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`];
    args.push('--cluster-node-timeout', String(nodeTimeout), '--save', '', '--appendonly', 'no', '--dir', dir);
    // A replica that never finished its first sync is not eligible for promotion; by default the
    // master waits 5 s for more replicas before streaming that sync.
    args.push('--repl-diskless-sync-delay', '0');
    if (options.requireFullCoverage === false) args.push('--cluster-require-full-coverage', 'no');
    servers.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
  }
  const stop = () => {
    for (const server of servers.values()) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const live = (port: number) => {
    const server = servers.get(port);
    return server !== undefined && server.exitCode === null && server.signalCode === null;
  };
  const nodes = async (): Promise<ClusterNode[]> => {
    for (const port of ports) {
      if (!live(port)) continue;
      const out = await cli(port, 'cluster', 'nodes');
      if (out.trim() !== '') return parseNodes(out);
    }
    throw new Error('no live node of the cluster answered CLUSTER NODES');
  };
  try {
    for (const port of ports) await waitFor(async () => (await cli(port, 'ping')).trim() === 'PONG');
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8' });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    // Every node must know every other and agree the slots are covered, replicas attached.
    for (const port of ports) await waitFor(async () => /cluster_state:ok/.test(await cli(port, 'cluster', 'info')));
    if (replicas > 0) {
      await waitFor(async () => (await nodes()).filter((n) => n.role === 'replica').length === 3);
      for (const replica of (await nodes()).filter((n) => n.role === 'replica')) {
        await waitFor(async () => (await cli(replica.port, 'info', 'replication')).includes('master_link_status:up'));
      }
    }
  } catch (error) {
    stop();
    throw error;
  }
  // The replicas each killed master had, so `failedOver` knows which promotion to wait for.
  const replicasOf = new Map<number, number[]>();
  return {
    ports,
    client: () =>
      new Cluster(
        ports.slice(0, 3).map((port) => ({ host: '127.0.0.1', port })),
        { enableOfflineQueue: true, redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 2000 } } satisfies ClusterOptions,
      ),
    nodes,
    info: (port, section) => cli(port, 'info', section),
    async kill(port) {
      const server = servers.get(port);
      if (server === undefined || !live(port)) return;
      replicasOf.set(port, (await nodes()).filter((n) => n.masterPort === port).map((n) => n.port));
      // Resolved once the exit is seen, so `nodes()` and `failedOver` skip it.
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGKILL');
      await exited;
    },
    async failedOver(killedPort, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      const survivor = ports.find((p) => p !== killedPort && live(p)) as number;
      const candidates = replicasOf.get(killedPort) ?? [];
      for (;;) {
        if (Date.now() > until) throw new Error(`no replica took over from 127.0.0.1:${killedPort} within ${timeoutMs} ms`);
        const view = await nodes().catch((): ClusterNode[] => []);
        const promoted = view.find((n) => n.role === 'master' && n.slots.length > 0 && candidates.includes(n.port));
        if (promoted && /cluster_state:ok/.test(await cli(survivor, 'cluster', 'info'))) return promoted.port;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    stop,
  };
}

function parseNodes(text: string): ClusterNode[] {
  const lines = text.trim().split('\n');
  const portOf = new Map<string, number>();
  for (const line of lines) {
    const [id, address] = line.split(' ');
    portOf.set(id as string, Number(/:(\d+)/.exec(address as string)?.[1]));
  }
  const out: ClusterNode[] = [];
  for (const line of lines) {
    const fields = line.split(' ');
    const flags = fields[2] as string;
    // A failed node stays listed (flag `fail`) until it is forgotten: not a node that serves.
    if (flags.includes('fail') && !flags.includes('fail?')) continue;
    const port = portOf.get(fields[0] as string) as number;
    if (flags.includes('slave')) {
      out.push({ port, role: 'replica', masterPort: portOf.get(fields[3] as string) as number, slots: [] });
      continue;
    }
    const slots = fields.slice(8).flatMap((range): [number, number][] => {
      if (range.startsWith('[')) return [];
      const [first, last] = range.split('-').map(Number);
      return [[first as number, (last ?? first) as number]];
    });
    out.push({ port, role: 'master', slots });
  }
  return out;
}

async function waitFor(ok: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error('timed out waiting for the Redis cluster');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
