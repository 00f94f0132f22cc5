// The mapping of a raxx flags file (JSON form, SPEC §7) onto Unleash strategies, shared by
// load-flags.mjs (unleash-server's admin API) and to-bootstrap.mjs (Unleash Edge's offline
// bootstrap file), so both peers serve the same flags:
//   - a rule with `when` → a flexibleRollout strategy at 100% with the conditions as
//     constraints (ends_with → STR_ENDS_WITH, in → IN, semver_gte → SEMVER_GT), serving the
//     rule's variant as a strategy variant (non-boolean flags);
//   - a rule with `rollout` → a flexibleRollout strategy at the rollout's first percentage
//     (boolean) or weighted strategy variants (other types);
//   - the default → a last 100% strategy with the default variant (non-boolean flags);
//     a boolean flag's default "off" is Unleash's "no strategy matched";
//   - `enabled = false` → the environment stays off.

export function payload(value) {
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'number') return { type: 'number', value: String(value) };
  return { type: 'json', value: JSON.stringify(value) };
}

export const OPS = { ends_with: 'STR_ENDS_WITH', starts_with: 'STR_STARTS_WITH', contains: 'STR_CONTAINS', in: 'IN', not_in: 'NOT_IN', semver_gte: 'SEMVER_GT', semver_gt: 'SEMVER_GT', semver_lt: 'SEMVER_LT', semver_eq: 'SEMVER_EQ' };

function constraint(c) {
  const operator = OPS[c.op];
  if (!operator) throw new Error(`no Unleash operator for ${c.op}`);
  if (operator.startsWith('SEMVER')) return { contextName: c.attr, operator, value: String(c.value) };
  const values = Array.isArray(c.value) ? c.value.map(String) : [String(c.value)];
  return { contextName: c.attr, operator, values, caseInsensitive: false, inverted: false };
}

function variant(def, name, weight = 1000) {
  return { name, weight, weightType: 'variable', stickiness: 'default', payload: payload(def.variants[name]) };
}

export function strategies(key, def) {
  const boolean = def.type === 'boolean';
  const out = [];
  for (const rule of def.rules ?? []) {
    const s = { name: 'flexibleRollout', constraints: (rule.when ?? []).map(constraint), parameters: { rollout: '100', stickiness: 'default', groupId: key }, variants: [] };
    if (rule.serve !== undefined) {
      if (boolean && def.variants[rule.serve] === false) continue;
      if (!boolean) s.variants = [variant(def, rule.serve)];
    } else if (rule.rollout) {
      const entries = Object.entries(rule.rollout);
      if (boolean) {
        const on = entries.find(([n]) => def.variants[n] === true);
        s.parameters.rollout = String(on ? on[1] : 0);
      } else {
        s.variants = entries.filter(([, pct]) => pct > 0).map(([n, pct]) => variant(def, n, pct * 10));
      }
    }
    out.push(s);
  }
  if (!boolean) {
    out.push({ name: 'flexibleRollout', constraints: [], parameters: { rollout: '100', stickiness: 'default', groupId: key }, variants: [variant(def, def.default)] });
  } else if (def.variants[def.default] === true) {
    out.push({ name: 'flexibleRollout', constraints: [], parameters: { rollout: '100', stickiness: 'default', groupId: key }, variants: [] });
  }
  return out;
}
