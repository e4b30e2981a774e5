// Workload 7: clear 1 000 000 keys matching a pattern on Redis, cachekit
// clearPattern against `redis-cli --scan --pattern ... | xargs redis-cli unlink`,
// and the longest single command the server ran (SLOWLOG) while each cleared.
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { check, median, progress } from '../lib.mjs';

const MATCHING = 1_000_000;
const OTHERS = 100_000;
const SLOWLOG_THRESHOLD_US = 100;

async function populate(admin) {
  // DEBUG POPULATE writes `<prefix>:<n>` keys server-side, about a million a second.
  await admin.call('DEBUG', 'POPULATE', String(MATCHING), 'bench7:g:doc', '100');
  await admin.call('DEBUG', 'POPULATE', String(OTHERS), 'bench7:g:keep', '100');
  const size = await admin.dbsize();
  if (size !== MATCHING + OTHERS) throw new Error(`expected ${MATCHING + OTHERS} keys, found ${size}`);
  await admin.slowlog('RESET');
}

async function longest(admin) {
  const entries = await admin.slowlog('GET', '-1');
  let worst = { us: 0, command: '(none over the threshold)' };
  const durations = [];
  for (const [, , us, args] of entries) {
    const name = String(args[0]).toLowerCase();
    if (['debug', 'slowlog', 'config', 'dbsize', 'info', 'flushdb'].includes(name)) continue;
    // SLOWLOG keeps 32 arguments and sums up the rest as "... (N more arguments)".
    const more = /\((\d+) more arguments\)/.exec(String(args.at(-1)));
    const count = more ? args.length - 2 + Number(more[1]) : args.length - 1;
    durations.push(us);
    if (us > worst.us) worst = { us, command: `${String(args[0]).toUpperCase()} of ${count} keys` };
  }
  durations.sort((a, b) => a - b);
  // Commands under the threshold are not logged: the count tells how many were.
  const over10ms = durations.filter((us) => us > 10_000).length;
  return { ...worst, logged: durations.length, over10ms, p99: durations[Math.floor(durations.length * 0.99)] ?? 0 };
}

export default {
  id: 7,
  title: 'Pattern clear of 1 000 000 keys on Redis',
  async run({ ck, redis, quick }) {
    const server = await redis();
    const admin = new Redis({ port: server.port });
    const cache = await ck.createDragonflyCache({ url: server.url, keyPrefix: 'bench7', commandTimeout: 5000 });
    await admin.config('SET', 'slowlog-log-slower-than', String(SLOWLOG_THRESHOLD_US));
    await admin.config('SET', 'slowlog-max-len', '100000');
    const contenders = [
      { name: 'cachekit clearPattern', clear: () => cache.clearPattern('doc:*') },
      {
        name: 'redis-cli --scan \\| xargs redis-cli unlink',
        clear: async () => {
          const p = String(server.port);
          execFileSync('sh', ['-c', `redis-cli -p ${p} --scan --pattern 'bench7:g:doc:*' | xargs redis-cli -p ${p} unlink > /dev/null`]);
        },
      },
    ];
    const rounds = quick ? 1 : 3;
    const samples = new Map(contenders.map((c) => [c.name, []]));
    try {
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < contenders.length; i++) {
          const c = contenders[(i + r) % contenders.length];
          progress(`7 clear pattern: round ${r + 1}/${rounds} - filling ${MATCHING + OTHERS} keys for ${c.name}`);
          await admin.flushdb();
          await populate(admin);
          progress(`7 clear pattern: round ${r + 1}/${rounds} - ${c.name}`);
          const t0 = performance.now();
          await c.clear();
          const seconds = (performance.now() - t0) / 1000;
          const left = await admin.dbsize();
          if (left !== OTHERS) throw new Error(`${c.name} left ${left} keys, expected the ${OTHERS} others`);
          samples.get(c.name).push({ seconds, longest: await longest(admin) });
        }
      }
    } finally {
      await admin.flushdb();
      await cache.close();
      admin.disconnect();
    }
    const rows = contenders.map((c) => {
      const s = samples.get(c.name);
      const seconds = median(s.map((x) => x.seconds));
      const worst = s.reduce((a, b) => (b.longest.us > a.longest.us ? b : a)).longest;
      return { name: c.name, seconds, worst, opsPerSec: MATCHING / seconds };
    });
    const [ours, cli] = rows;
    const speed = cli.seconds / ours.seconds;
    return {
      tables: [
        {
          title: `7. Clear ${MATCHING.toLocaleString('en')} matching keys among ${(MATCHING + OTHERS).toLocaleString('en')} (${rounds} round${rounds > 1 ? 's' : ''})`,
          valueHeader: 'seconds (median)',
          reference: 'cachekit clearPattern',
          extra: `longest single command (SLOWLOG, threshold ${SLOWLOG_THRESHOLD_US} µs)`,
          rows: rows.map((r) => ({
            name: r.name,
            display: r.seconds.toFixed(2),
            ratio: r.seconds / ours.seconds,
            extra: r.worst.us
              ? `${(r.worst.us / 1000).toFixed(2)} ms, ${r.worst.command}; ${r.worst.logged} commands over ${SLOWLOG_THRESHOLD_US} µs, their p99 ${(r.worst.p99 / 1000).toFixed(2)} ms; ${r.worst.over10ms} over 10 ms`
              : `< ${SLOWLOG_THRESHOLD_US / 1000} ms`,
          })),
        },
      ],
      checks: [
        check('pattern clear: longest single command', '<= 10 ms', `${(ours.worst.us / 1000).toFixed(2)} ms (${ours.worst.command})`, ours.worst.us <= 10_000),
        check('pattern clear: speed vs redis-cli pipeline', '>= 0.5x', `${speed.toFixed(2)}x (${ours.seconds.toFixed(2)} s vs ${cli.seconds.toFixed(2)} s)`, speed >= 0.5),
      ],
    };
  },
};
