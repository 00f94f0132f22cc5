// The main operator flows end to end, in a real browser against real consoles:
// a two-person flag promotion, a key rotation, a customer suspension, an audit search and
// export. Each flow also writes screenshots of the pages it passes through.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { launchBrowser, screenshot, startConsole } from "../lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const STAGING_APP = `[[apps]]\nname = "raxx-api-staging"\nenv = "staging"\n`;
const PROD_APP = `[[apps]]\nname = "raxx-api-prod"\nenv = "prod"\npromote_from = "raxx-api-staging"\n`;

const STAGING_FLAGS = `app = "raxx-api-staging"

[flags.theme]
type = "string"
variants = { classic = "classic", midnight = "midnight" }
default = "classic"
description = "Colour theme"

[[flags.theme.rules]]
when = [{ attr = "plan", op = "in", value = ["pro", "team"] }]
serve = "midnight"

[flags.upload-limit-mb]
type = "integer"
variants = { standard = 25, large = 250 }
default = "standard"
`;

const lastLine = (out) => out.trim().split("\n").pop().trim();

function tmpFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-files-"));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

/** OFREP single-flag evaluation from Node (the app's side): loopback, with the console's Host. */
function ofrep(c, key, flag, context = {}) {
  const body = JSON.stringify({ context });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: c.port,
        method: "POST",
        path: `/ofrep/v1/evaluate/flags/${flag}`,
        headers: {
          Host: `${c.env}.localhost:${c.port}`,
          Authorization: `Bearer ${key}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            // no JSON body
          }
          resolve({ status: res.statusCode, body: json });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function signedIn(c, email) {
  const ctx = await browser.newContext({ acceptDownloads: true });
  const page = await ctx.newPage();
  await c.signIn(page, email);
  assert.equal(new URL(page.url()).pathname, "/", `${email} signed in on ${c.env}`);
  return { ctx, page };
}

test("flag promotion with two operators: alice queues, bob approves, prod OFREP serves it", async () => {
  const staging = await startConsole("staging", STAGING_APP);
  let prod;
  try {
    staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", STAGING_FLAGS));
    const readKey = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read"));
    prod = await startConsole(
      "prod",
      `staging_source_url = "${staging.origin}"\nstaging_source_key = "${readKey}"\n` + PROD_APP,
    );
    const prodClient = lastLine(prod.cli("keys", "create", "--app", "raxx-api-prod", "--kind", "client"));

    // Before: prod does not know the flag.
    const beforeEval = await ofrep(prod, prodClient, "theme", { targetingKey: "u1", plan: "pro" });
    assert.equal(beforeEval.status, 404, JSON.stringify(beforeEval.body));
    assert.equal(beforeEval.body.errorCode, "FLAG_NOT_FOUND");

    // Staging flags page, for the screenshots.
    const s = await signedIn(staging, "alice@raxx.test");
    await s.page.goto(staging.url("/flags"));
    await screenshot(s.page, "staging-flags");
    await s.page.goto(staging.url("/apps/raxx-api-staging/flags"));
    await screenshot(s.page, "staging-flags-app");
    // Server-side sorting: column headers are plain links (no JavaScript).
    const firstFlag = () => s.page.locator("tbody tr td:first-child code").first().textContent();
    assert.equal(await firstFlag(), "theme", "sorted by key by default");
    await s.page.click("th a.sort:has-text('Type')");
    assert.equal(new URL(s.page.url()).searchParams.get("sort"), "type");
    assert.equal(await firstFlag(), "upload-limit-mb", "integer sorts before string");
    assert.equal(await s.page.getAttribute("th:has(a:has-text('Type'))", "aria-sort"), "ascending");
    await s.ctx.close();

    // alice queues.
    const a = await signedIn(prod, "alice@raxx.test");
    await a.page.goto(prod.url("/promotions"));
    await a.page.click("text=New promotion into raxx-api-prod");
    assert.match(await a.page.textContent("h1"), /New promotion into raxx-api-prod/);
    await screenshot(a.page, "prod-promotion-new");
    await a.page.check('input[name=flag][value="theme"]');
    await a.page.fill("#pr-reason", "Ship the midnight theme to pro customers");
    await a.page.click("button:has-text('Queue for review')");
    const promoUrl = a.page.url();
    assert.match(new URL(promoUrl).pathname, /^\/promotions\/\d+$/, `landed on ${promoUrl}`);
    assert.match(await a.page.textContent(".flash"), /./, "a flash message after queueing");
    assert.match(await a.page.textContent("h1"), /pending/);
    // No approve button on her own promotion: absent from the HTML.
    assert.equal(await a.page.locator("form[action$='/approve']").count(), 0, "no approve form for the requester");
    assert.equal(await a.page.locator("button:has-text('Approve')").count(), 0);
    assert.match(await a.page.textContent("main"), /Another flag admin must approve it/);
    await screenshot(a.page, "prod-promotion-own");

    // bob approves in another browser context.
    const b = await signedIn(prod, "bob@raxx.test");
    await b.page.goto(promoUrl);
    await screenshot(b.page, "prod-promotion-review");
    const approve = b.page.locator("button:has-text('Approve and apply')");
    assert.match(await approve.textContent(), /raxx-api-prod on PROD/);
    await approve.click();
    assert.match(await b.page.textContent("h1"), /applied/);
    assert.match(await b.page.textContent(".flash"), /./);
    await screenshot(b.page, "prod-promotion-applied");

    // Prod OFREP serves the promoted value.
    const afterEval = await ofrep(prod, prodClient, "theme", { targetingKey: "u1", plan: "pro" });
    assert.equal(afterEval.status, 200, JSON.stringify(afterEval.body));
    assert.equal(afterEval.body.value, "midnight");
    assert.equal(afterEval.body.reason, "TARGETING_MATCH");
    // The unpromoted flag is still unknown in prod.
    assert.equal((await ofrep(prod, prodClient, "upload-limit-mb", { targetingKey: "u1" })).status, 404);

    await b.page.goto(prod.url("/flags"));
    await screenshot(b.page, "prod-flags");
    await b.page.goto(prod.url("/promotions"));
    await screenshot(b.page, "prod-promotions");
    await a.ctx.close();
    await b.ctx.close();
  } finally {
    await prod?.stop();
    await staging.stop();
  }
});

test("key rotation on staging: confirmation names app and env, secret shown once, old key works until revoked", async () => {
  const staging = await startConsole("staging", STAGING_APP);
  try {
    staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", STAGING_FLAGS));
    const oldKey = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "client"));
    assert.equal((await ofrep(staging, oldKey, "theme", { targetingKey: "u" })).status, 200);

    const { ctx, page } = await signedIn(staging, "alice@raxx.test");
    await page.goto(staging.url("/tokens"));
    await screenshot(page, "staging-tokens");
    // The token's id, which the rotation keeps (SPEC §8): /tokens/key:N/rotate.
    const rotateHref = await page.getAttribute("a:has-text('Rotate…')", "href");
    const tokenId = rotateHref.split("/")[2];
    assert.match(tokenId, /^key:\d+$/, rotateHref);
    await page.click("a:has-text('Rotate…')");
    const question = await page.textContent("h1");
    assert.match(question, /raxx-api-staging/, question);
    assert.match(question, /STAGING/, question);
    await screenshot(page, "staging-token-confirm");
    await page.selectOption("#rot-grace", "3600");
    const rotate = page.locator("button:has-text('Rotate')");
    assert.match(await rotate.textContent(), /raxx-api-staging on STAGING/);
    await rotate.click();

    assert.match(await page.textContent("h1"), /was rotated on STAGING/);
    const secret = await page.inputValue("input.copy");
    assert.ok(secret.length > 20 && secret !== oldKey, "a new secret");
    assert.ok((await page.textContent("main")).includes(`still ${tokenId}`), "the same id after rotation");
    // The copy button comes from /static/copy.js (no inline script).
    await page.click("button[data-copy]");
    // The clipboard write is asynchronous: wait (bounded) for the status it sets.
    await page.locator("[data-copy-status]").filter({ hasText: /Copied|Selected/ }).waitFor({ timeout: 5000 });
    assert.match(await page.textContent("[data-copy-status]"), /Copied|Selected/);
    await screenshot(page, "staging-token-result");

    // Shown once: back on the tokens page, the secret is nowhere.
    await page.goto(staging.url("/tokens"));
    assert.ok(!(await page.content()).includes(secret), "the secret is not on the tokens page");
    // One row for the token, its two versions under it; revoke-previous on the same id.
    assert.equal(await page.locator(`tr[data-token="${tokenId}"]`).count(), 1);
    const row = await page.textContent(`tr[data-token="${tokenId}"]`);
    assert.match(row, /version 2/);
    assert.match(row, /version 1/);
    assert.equal(await page.getAttribute(`tr[data-token="${tokenId}"] form`, "action"), `/tokens/${tokenId}/revoke-previous`);

    // Both keys work during the grace period.
    assert.equal((await ofrep(staging, secret, "theme", { targetingKey: "u" })).status, 200);
    assert.equal((await ofrep(staging, oldKey, "theme", { targetingKey: "u" })).status, 200, "old key in grace");

    // A no-JavaScript confirmation: the button sits behind a disclosure naming app and env.
    await page.click("summary:has-text('Revoke previous now')");
    const revoke = page.locator("button:has-text('Revoke previous')");
    assert.match(await revoke.textContent(), /raxx-api-staging on STAGING/);
    await screenshot(page, "staging-tokens-revoke-confirm");
    await revoke.click();
    assert.match(await page.textContent(".flash"), /./, "a flash message after revoking");
    await screenshot(page, "staging-tokens-after-revoke");
    assert.equal((await ofrep(staging, oldKey, "theme", { targetingKey: "u" })).status, 401, "old key revoked");
    assert.equal((await ofrep(staging, secret, "theme", { targetingKey: "u" })).status, 200, "new key still works");
    await ctx.close();
  } finally {
    await staging.stop();
  }
});

test("customer suspension on prod with a reason, then an audit search and CSV / JSON-lines export", async () => {
  const prod = await startConsole("prod", PROD_APP);
  try {
    const { ctx, page } = await signedIn(prod, "alice@raxx.test");
    await page.goto(prod.url("/customers"));
    await screenshot(page, "prod-customers");
    const first = page.locator("tbody tr a").first();
    const id = (await first.textContent()).trim();
    await first.click();
    await screenshot(page, "prod-customer");
    const suspend = page.locator("button:has-text('Suspend')");
    assert.match(await suspend.textContent(), /PROD/, "the suspend button names the env");
    // The reason is required: the browser will not submit without it.
    assert.equal(await page.getAttribute("#s-reason", "required"), "");
    await page.fill("#s-reason", "Chargeback fraud, ticket OPS-42");
    await suspend.click();
    assert.match(await page.textContent(".flash"), /suspend/i);
    assert.match(await page.textContent("main"), /suspended/);
    await screenshot(page, "prod-customer-suspended");

    // Audit search with filters.
    await page.goto(prod.url("/audit"));
    await page.fill("#f-action", "customer.suspend");
    await page.selectOption("#f-outcome", "allowed");
    await page.click("form.filters button[type=submit]");
    const q = new URL(page.url()).searchParams;
    assert.equal(q.get("action"), "customer.suspend");
    const rows = page.locator("tbody tr");
    assert.equal(await rows.count(), 1, "exactly the suspension");
    assert.match(await rows.first().textContent(), /customer\.suspend/);
    assert.match(await rows.first().textContent(), /Chargeback fraud/);
    await screenshot(page, "prod-audit-filtered");

    // Exports of this view, as real downloads.
    const [csvDl] = await Promise.all([page.waitForEvent("download"), page.click("a:has-text('CSV')")]);
    assert.equal(csvDl.suggestedFilename(), "audit-prod.csv");
    const csv = fs.readFileSync(await csvDl.path(), "utf8").trim().split("\n");
    assert.match(csv[0], /^id,time,actor,/);
    assert.equal(csv.length, 2, csv.join("\n"));
    assert.match(csv[1], /customer\.suspend/);
    assert.match(csv[1], /Chargeback fraud, ticket OPS-42/);
    assert.ok(csv[1].includes(id), `the CSV row names customer ${id}`);

    const [jsonDl] = await Promise.all([page.waitForEvent("download"), page.click("a:has-text('JSON lines')")]);
    assert.equal(jsonDl.suggestedFilename(), "audit-prod.jsonl");
    const lines = fs.readFileSync(await jsonDl.path(), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].action, "customer.suspend");
    assert.equal(lines[0].outcome, "allowed");
    assert.equal(lines[0].reason, "Chargeback fraud, ticket OPS-42");
    assert.equal(lines[0].context.selected_env, "prod");

    // A filter that matches nothing shows a clear empty state.
    await page.goto(prod.url("/audit?action=nothing.like.this"));
    assert.match(await page.textContent(".empty"), /No audit entries/);
    await ctx.close();
  } finally {
    await prod.stop();
  }
});

test("screenshots of the key pages on both envs", async () => {
  const staging = await startConsole("staging", STAGING_APP);
  let prod;
  try {
    staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", STAGING_FLAGS));
    staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "client");
    const readKey = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read"));
    prod = await startConsole("prod", `staging_source_url = "${staging.origin}"\nstaging_source_key = "${readKey}"\n` + PROD_APP);
    prod.cli("keys", "create", "--app", "raxx-api-prod", "--kind", "client");
    for (const c of [staging, prod]) {
      const { ctx, page } = await signedIn(c, "alice@raxx.test");
      const pages = { dashboard: "/", flags: "/flags", audit: "/audit", tokens: "/tokens", customers: "/customers", status: "/status", jobs: "/jobs", sessions: "/sessions", operators: "/operators" };
      if (c.env === "prod") Object.assign(pages, { promotions: "/promotions", "promotion-new": "/promotions/new?app=raxx-api-prod", invites: "/invites" });
      for (const [name, p] of Object.entries(pages)) {
        const r = await page.goto(c.url(p));
        assert.ok(r.status() < 400, `${c.env} ${p}: ${r.status()}`);
        // The header stays on one line at 1280px: the operator and sign-out sit beside the nav.
        const [nav, who] = await Promise.all([page.locator("header nav.nav-wide").boundingBox(), page.locator("header .who").boundingBox()]);
        assert.ok(Math.abs(nav.y - who.y) < nav.height, `${c.env} ${p}: header wraps (nav y ${nav.y}, who y ${who.y})`);
        await screenshot(page, `${c.env}-${name}`);
      }
      await ctx.close();
    }
  } finally {
    await prod?.stop();
    await staging.stop();
  }
});
