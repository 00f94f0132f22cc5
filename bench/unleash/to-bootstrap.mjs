// Convert a raxx flags file (JSON form, SPEC §7) into an Unleash Edge offline bootstrap
// file: the client-features document (`GET /api/client/features`) that unleash-server would
// serve after load-flags.mjs loaded the same file (same mapping: mapping.mjs).
//
//   node to-bootstrap.mjs FLAGS.json > features.json
//
// Project `default`; `enabled` is the environment's state (`enabled = false` → off).

import { readFileSync } from 'node:fs';
import { strategies } from './mapping.mjs';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node to-bootstrap.mjs FLAGS.json');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(file, 'utf8'));
const features = Object.keys(spec.flags).sort().map((key) => {
  const def = spec.flags[key];
  return {
    name: key,
    type: 'release',
    description: def.description ?? '',
    project: 'default',
    enabled: def.enabled !== false,
    stale: false,
    impressionData: false,
    strategies: strategies(key, def).map((s, i) => ({ ...s, id: `${key}-${i}`, sortOrder: i })),
    variants: [],
  };
});
process.stdout.write(JSON.stringify({ version: 2, features, query: { project: ['default'], environment: 'development' }, meta: { revisionId: 1, etag: '"bench-1"', queryHash: 'bench' } }));
