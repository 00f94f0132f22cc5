// A browser app on a second origin uses the real OpenFeature web SDK with the OFREP web
// provider against a console: an origin listed in the app's `cors_origins` evaluates and
// polls (a `flags apply` reaches the page and fires PROVIDER_CONFIGURATION_CHANGED); an
// origin no app lists is blocked by the browser and counted in /metrics. Every OFREP
// response the page receives is checked against the OFREP definition's schemas.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { launchBrowser, startConsole, freePort } from "../lib/harness.mjs";
import { APP, applyFlags, checkOfrepResponse, clientKey, flagsFile } from "../lib/ofrep.mjs";

const e2eDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = `
import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
window.OF = { OpenFeature, ProviderEvents, OFREPWebProvider };
`;

let con;
let key;
let browser;
let site;
let sitePort;

before(async () => {
  sitePort = await freePort();
  // The allowed origin is the site on 127.0.0.1; the same site as `localhost` is another
  // origin that no app lists.
  con = await startConsole(
    "staging",
    `[[apps]]\nname = "${APP}"\nenv = "staging"\ncors_origins = ["http://127.0.0.1:${sitePort}"]\n`,
  );
  applyFlags(con, flagsFile("light"));
  key = clientKey(con);
  const bundle = await esbuild.build({
    stdin: { contents: ENTRY, resolveDir: e2eDir },
    bundle: true,
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0].text;
  site = http.createServer((req, res) => {
    if (req.url === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(js);
    } else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>app</title><script type="module" src="/app.js"></script>`);
    }
  });
  await new Promise((r) => site.listen(sitePort, "127.0.0.1", r));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise((r) => (site ? site.close(r) : r()));
  await con?.stop();
});

/** A page of `origin` whose OFREP responses are recorded and checked as they arrive. */
async function appPage(origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = [];
  const problems = [];
  page.on("response", async (r) => {
    const url = new URL(r.url());
    if (!r.url().startsWith(con.origin) || !url.pathname.startsWith("/ofrep/")) return;
    const method = r.request().method();
    if (method === "OPTIONS") {
      seen.push({ method, status: r.status(), headers: await r.allHeaders() });
      return;
    }
    let body;
    try {
      body = r.status() === 304 ? undefined : await r.json();
    } catch {
      body = undefined;
    }
    try {
      checkOfrepResponse(method, url.pathname, r.status(), body);
    } catch (e) {
      problems.push(e.message);
    }
    seen.push({ method, status: r.status(), headers: await r.allHeaders(), body });
  });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => window.OF !== undefined);
  return { page, context, seen, problems };
}

test("an allowed origin evaluates every type, polls with ETags and sees a flags apply", async () => {
  const { page, context, seen, problems } = await appPage(`http://127.0.0.1:${sitePort}`);
  const first = await page.evaluate(
    async ({ baseUrl, key }) => {
      const { OpenFeature, ProviderEvents, OFREPWebProvider } = window.OF;
      await OpenFeature.setContext({ targetingKey: "user-1", email: "ann@raxx.app" });
      const provider = new OFREPWebProvider({
        baseUrl,
        headers: [["Authorization", `Bearer ${key}`]],
        pollInterval: 300,
      });
      await OpenFeature.setProviderAndWait(provider);
      const client = OpenFeature.getClient();
      window.client = client;
      window.changes = [];
      client.addHandler(ProviderEvents.ConfigurationChanged, (d) => window.changes.push(d.flagsChanged));
      const b = client.getBooleanDetails("new-checkout", false);
      return {
        bool: [b.value, b.reason, b.variant, b.flagMetadata],
        theme: client.getStringValue("theme", "x"),
        int: client.getNumberValue("upload-limit", 0),
        float: client.getNumberValue("sample-rate", 0.5),
        object: client.getObjectValue("banner", {}),
        disabled: client.getBooleanDetails("legacy-search", false).reason,
      };
    },
    { baseUrl: con.origin, key },
  );
  assert.deepEqual(first.bool.slice(0, 3), [true, "TARGETING_MATCH", "on"]);
  assert.equal(first.bool[3].app, APP);
  assert.equal(typeof first.bool[3].version, "number");
  assert.equal(first.theme, "light");
  assert.equal(first.int, 100);
  assert.equal(first.float, 1);
  assert.deepEqual(first.object, { text: "Welcome", size: 3 });
  assert.equal(first.disabled, "DISABLED");

  // Polling revalidates with If-None-Match (ETag is exposed to the page): 304s.
  await page.waitForFunction(() => true, null, { timeout: 100 });
  const deadline = Date.now() + 10_000;
  while (!seen.some((s) => s.status === 304) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(seen.some((s) => s.status === 304), `no 304 among ${seen.map((s) => s.status)}`);

  applyFlags(con, flagsFile("dark"));
  await page.waitForFunction(() => window.changes.length > 0, null, { timeout: 15_000 });
  const after = await page.evaluate(() => ({
    theme: window.client.getStringValue("theme", "x"),
    changed: window.changes[0],
  }));
  assert.equal(after.theme, "dark");
  assert.ok(after.changed.includes("theme"), `changed: ${after.changed}`);

  // Chromium does not show CORS preflights to page listeners: send the browser's
  // preflight for this origin ourselves and read the answer it got.
  const preflight = await sendPreflight(`http://127.0.0.1:${sitePort}`);
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers["access-control-allow-origin"], `http://127.0.0.1:${sitePort}`);
  assert.match(preflight.headers["access-control-allow-headers"], /authorization/);
  assert.ok(preflight.headers["access-control-max-age"]);
  const ok = seen.find((s) => s.status === 200);
  assert.equal(ok.headers["access-control-expose-headers"], "ETag");
  assert.equal(ok.headers["access-control-allow-credentials"], undefined);
  assert.deepEqual(problems, []);
  await context.close();
});

test("an origin no app lists is blocked by the browser and counted", async () => {
  const before = await refusedCount();
  const { page, context, seen, problems } = await appPage(`http://localhost:${sitePort}`);
  const result = await page.evaluate(
    async ({ baseUrl, key }) => {
      const { OpenFeature, OFREPWebProvider } = window.OF;
      await OpenFeature.setContext({ targetingKey: "user-1" });
      let initError = null;
      try {
        await OpenFeature.setProviderAndWait(
          new OFREPWebProvider({ baseUrl, headers: [["Authorization", `Bearer ${key}`]], pollInterval: 0 }),
        );
      } catch (e) {
        initError = String(e);
      }
      const d = OpenFeature.getClient().getBooleanDetails("new-checkout", false);
      let fetchError = null;
      try {
        await fetch(`${baseUrl}/ofrep/v1/evaluate/flags`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: "{}",
        });
      } catch (e) {
        fetchError = String(e);
      }
      return { initError, value: d.value, errorCode: d.errorCode, fetchError };
    },
    { baseUrl: con.origin, key },
  );
  assert.equal(result.value, false, "the code default is served");
  assert.ok(result.errorCode, "with an error code");
  assert.match(result.fetchError, /TypeError|Failed to fetch/);
  const preflight = await sendPreflight(`http://localhost:${sitePort}`);
  assert.equal(preflight.headers["access-control-allow-origin"], undefined);
  assert.ok(!seen.some((s) => s.method === "POST" && s.status === 200), "no evaluation reached the page");
  assert.ok((await refusedCount()) > before, "the refusal is counted in /metrics");
  assert.deepEqual(problems, []);
  await context.close();
});

/** `raxx_ofrep_cors_refused_total{kind="preflight"}` from the console's /metrics. */
async function refusedCount() {
  const text = await (await fetch(`http://127.0.0.1:${con.port}/metrics`)).text();
  const m = text.match(/^raxx_ofrep_cors_refused_total\{kind="preflight"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

/** The preflight a browser sends before a cross-origin bulk evaluation, from `origin`. */
function sendPreflight(origin) {
  const host = new URL(con.origin).host;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: con.port,
        method: "OPTIONS",
        path: "/ofrep/v1/evaluate/flags",
        headers: {
          host,
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type",
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}
