// Load a raxx flags file (JSON form, SPEC §7) into unleash-server through its admin API,
// so the peer serves the same flags: bench/run.sh.
//
//   node load-flags.mjs BASE_URL ADMIN_TOKEN FLAGS.json [SKIP]
//
// Flags already present (the first SKIP of the file, by key order) are left alone, so a
// 5-flag state can grow to 350 flags. Mapping, per flag (environment `development`):
//   - a rule with `when` → a flexibleRollout strategy at 100% with the conditions as
//     constraints (ends_with → STR_ENDS_WITH, in → IN, semver_gte → SEMVER_GT), serving the
//     rule's variant as a strategy variant (non-boolean flags);
//   - a rule with `rollout` → a flexibleRollout strategy at the rollout's first percentage
//     (boolean) or weighted strategy variants (other types);
//   - the default → a last 100% strategy with the default variant (non-boolean flags);
//     a boolean flag's default "off" is Unleash's "no strategy matched";
//   - `enabled = false` → the environment stays off.
// Only 127.0.0.1 is contacted.

import { readFileSync } from 'node:fs';
import { strategies } from './mapping.mjs';

const [base, token, file, skipArg] = process.argv.slice(2);
if (!base || !token || !file) {
  console.error('usage: node load-flags.mjs BASE_URL ADMIN_TOKEN FLAGS.json [SKIP]');
  process.exit(2);
}
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) {
  console.error(`refusing a non-loopback base URL: ${base}`);
  process.exit(2);
}
const skip = Number(skipArg ?? 0);
const spec = JSON.parse(readFileSync(file, 'utf8'));
const env = 'development';
const project = 'default';

async function call(method, path, body) {
  const resp = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok && resp.status !== 409) {
    throw new Error(`${method} ${path}: ${resp.status} ${await resp.text()}`);
  }
  return resp;
}

// Context fields the constraints use must exist.
for (const name of ['email', 'plan', 'appVersion']) {
  await call('POST', '/api/admin/context', { name, description: 'raxx bench', stickiness: false });
}

const keys = Object.keys(spec.flags).sort().slice(skip);
let done = 0;
for (const key of keys) {
  const def = spec.flags[key];
  await call('POST', `/api/admin/projects/${project}/features`, { name: key, type: 'release', description: def.description ?? '' });
  for (const s of strategies(key, def)) {
    await call('POST', `/api/admin/projects/${project}/features/${key}/environments/${env}/strategies`, s);
  }
  if (def.enabled !== false) {
    await call('POST', `/api/admin/projects/${project}/features/${key}/environments/${env}/on`);
  }
  done += 1;
}
console.log(`loaded ${done} flag(s) into unleash (${skip} already there)`);
