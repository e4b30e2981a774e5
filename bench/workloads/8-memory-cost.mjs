// Workload 8: heap bytes per entry at 100 000 entries (a 3-field object each),
// each measurement in a fresh `node --expose-gc` process, contenders interleaved.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { check, median, progress } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const N = 100_000;
const CONTENDERS = ['lru-cache (refs)', 'lru-cache + JSON strings', 'cachekit', 'cachekit byReference'];

export default {
  id: 8,
  title: 'Memory cost per entry at 100 000 entries',
  async run({ quick }) {
    const distUrl = pathToFileURL(join(here, '..', '..', 'dist', 'index.js')).href;
    const rounds = quick ? 1 : 3;
    const samples = new Map(CONTENDERS.map((c) => [c, []]));
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < CONTENDERS.length; i++) {
        const c = CONTENDERS[(i + r) % CONTENDERS.length];
        progress(`8 memory cost: round ${r + 1}/${rounds} - ${c}`);
        const out = execFileSync(process.execPath, ['--expose-gc', join(here, '8-child.mjs'), distUrl, c, String(N)], { encoding: 'utf8', cwd: here });
        samples.get(c).push(JSON.parse(out).bytesPerEntry);
      }
    }
    const rows = CONTENDERS.map((c) => ({ name: c, value: median(samples.get(c)) }));
    const ref = rows[0].value;
    const ours = rows.find((r) => r.name === 'cachekit').value;
    const byRef = rows.find((r) => r.name === 'cachekit byReference').value;
    return {
      tables: [
        {
          title: `8. Heap bytes per entry, ${N.toLocaleString('en')} entries of { id, name, active } (keys included)`,
          valueHeader: 'bytes per entry (median)',
          reference: 'lru-cache (refs)',
          rows: rows.map((r) => ({ ...r, display: r.value.toFixed(0), ratio: r.value / ref })),
        },
      ],
      checks: [
        check('memory per entry: cachekit vs raw lru-cache', '<= 2x', `${(ours / ref).toFixed(2)}x (${ours.toFixed(0)} B vs ${ref.toFixed(0)} B; overhead ${(ours - ref).toFixed(0)} B/entry)`, ours <= 2 * ref),
        check('memory per entry: cachekit byReference vs raw lru-cache', '<= 2x', `${(byRef / ref).toFixed(2)}x (${byRef.toFixed(0)} B)`, byRef <= 2 * ref),
      ],
    };
  },
};
