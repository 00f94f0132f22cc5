// The OpenFeature Node server SDK with its OFREP provider, unchanged, against a real
// console: every flag type, reasons, flagMetadata, errors. Every OFREP response the
// provider receives is checked against the OFREP definition's schemas (lib/ofrep.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OpenFeature, ErrorCode } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { startConsole } from "../lib/harness.mjs";
import { APP, OfrepLog, applyFlags, clientKey, consoleFetch, flagsFile } from "../lib/ofrep.mjs";

let con;
let key;
const log = new OfrepLog();

before(async () => {
  con = await startConsole("staging", `[[apps]]\nname = "${APP}"\nenv = "staging"\n`);
  applyFlags(con, flagsFile());
  key = clientKey(con);
});

after(async () => {
  await OpenFeature.close();
  await con?.stop();
});

function client(name, secret = key) {
  const provider = new OFREPProvider({
    baseUrl: con.origin,
    headers: [["Authorization", `Bearer ${secret}`]],
    fetchImplementation: consoleFetch(con, log),
  });
  OpenFeature.setProvider(name, provider);
  return OpenFeature.getClient(name);
}

test("the Node server SDK evaluates every flag type through OFREP", async () => {
  const c = client("every-type");
  const ctx = { targetingKey: "user-1" };

  const b = await c.getBooleanDetails("new-checkout", false, { ...ctx, email: "ann@raxx.app" });
  assert.equal(b.value, true);
  assert.equal(b.reason, "TARGETING_MATCH");
  assert.equal(b.variant, "on");
  assert.equal(b.errorCode, undefined);
  assert.equal(b.flagMetadata.app, APP);
  assert.equal(typeof b.flagMetadata.version, "number");

  const s = await c.getStringDetails("theme", "x", ctx);
  assert.deepEqual([s.value, s.variant], ["light", "light"]);

  const i = await c.getNumberDetails("upload-limit", 0, ctx);
  assert.deepEqual([i.value, i.variant], [100, "large"]);

  const f = await c.getNumberDetails("sample-rate", 0.5, ctx);
  assert.deepEqual([f.value, f.variant], [1, "all"]);
  // On the wire the float is a float: `1.0`, never `1` (a strictly typed SDK refuses `1`).
  const raw = await consoleFetch(con, log)(`${con.origin}/ofrep/v1/evaluate/flags/sample-rate`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ context: ctx }),
  });
  assert.match(await raw.text(), /"value":1\.0/);

  const o = await c.getObjectDetails("banner", {}, ctx);
  assert.deepEqual(o.value, { text: "Welcome", size: 3 });

  const d = await c.getBooleanDetails("legacy-search", false, ctx);
  assert.deepEqual([d.value, d.reason], [true, "DISABLED"]);
});

test("errors reach the SDK as OpenFeature error codes, with the code default", async () => {
  const c = client("errors");
  const missing = await c.getBooleanDetails("no-such-flag", false, { targetingKey: "u" });
  assert.equal(missing.value, false);
  assert.equal(missing.errorCode, ErrorCode.FLAG_NOT_FOUND);

  const wrongType = await c.getBooleanDetails("theme", false, { targetingKey: "u" });
  assert.equal(wrongType.value, false);
  assert.equal(wrongType.errorCode, ErrorCode.TYPE_MISMATCH);

  const bad = client("bad-key", "not-a-key");
  const refused = await bad.getBooleanDetails("new-checkout", false, { targetingKey: "u" });
  assert.equal(refused.value, false);
  assert.ok(refused.errorCode, "a refused key is an error, not a value");
});

test("the configuration endpoint answers what OFREP describes, with an ETag", async () => {
  const fetch = consoleFetch(con, log);
  const r = await fetch(`${con.origin}/ofrep/v1/configuration`, { headers: { "x-api-key": key } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.capabilities.cacheInvalidation.polling.enabled, true);
  assert.ok(body.capabilities.cacheInvalidation.polling.minPollingInterval >= 1000);
  assert.deepEqual(body.capabilities.flagEvaluation.unsupportedTypes, []);
  const again = await fetch(`${con.origin}/ofrep/v1/configuration`, {
    headers: { "x-api-key": key, "if-none-match": r.headers.get("etag") },
  });
  assert.equal(again.status, 304);
  const noKey = await fetch(`${con.origin}/ofrep/v1/configuration`, {});
  assert.equal(noKey.status, 401);
});

test("every OFREP response seen was checked against the definition", () => {
  const statuses = new Set(log.seen.map((s) => s.status));
  for (const s of [200, 304, 401, 404]) assert.ok(statuses.has(s), `no ${s} seen: ${[...statuses]}`);
  assert.ok(log.seen.length >= 10, `only ${log.seen.length} responses`);
});
