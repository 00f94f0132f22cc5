// The flag tools operators use every day (issue 16 items 3–5), in a real browser: the
// playground explains a match and a miss (and keeps bad input with the error), OFREP usage
// shows up on the flags page, and on prod a queued promotion reaches a local receiver with
// a deep link that opens the review after sign-in.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { freePort, launchBrowser, screenshot, startConsole } from "../lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const STAGING_APP = `[[apps]]\nname = "raxx-api-staging"\nenv = "staging"\n`;

const FLAGS = `app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
description = "New checkout flow"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }

[flags.theme]
type = "string"
variants = { light = "light", dark = "dark" }
default = "light"

[[flags.theme.rules]]
when = [{ attr = "country", op = "eq", value = "DE" }, { attr = "plan", op = "in", value = ["pro", "team"] }]
serve = "dark"

[flags.old-banner]
type = "boolean"
variants = { on = true, off = false }
default = "off"
`;

const lastLine = (out) => out.trim().split("\n").pop().trim();

function tmpFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-tools-"));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

async function signedIn(c, email) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await c.signIn(page, email);
  return { ctx, page };
}

test("the playground explains a match and a miss; OFREP usage shows on the flags page", async () => {
  const staging = await startConsole("staging", STAGING_APP);
  try {
    staging.cli("flags", "apply", tmpFile("flags.toml", FLAGS));
    const { page } = await signedIn(staging, "alice@raxx.test");
    await page.goto(staging.url("/apps/raxx-api-staging/flags"));
    await page.click("a:has-text('Playground')");
    assert.equal(new URL(page.url()).pathname, "/apps/raxx-api-staging/playground");

    // Bad input: the error names the field and the input is kept.
    await page.fill("#pg-context", '["not", "an object"]');
    await page.click("button:has-text('Evaluate')");
    assert.match(await page.textContent("#pg-error"), /context must be a JSON object/);
    assert.equal(await page.inputValue("#pg-context"), '["not", "an object"]');
    assert.equal(await page.getAttribute("#pg-context", "aria-invalid"), "true");

    // A match.
    await page.fill("#pg-context", '{"targetingKey": "user-7", "email": "ann@raxx.app"}');
    await page.click("button:has-text('Evaluate')");
    const checkout = page.locator("#pg-flag-new-checkout");
    assert.match(await checkout.textContent(), /serves on \(true\) because rule 1 matched/);
    assert.equal(await checkout.locator(".pg-summary code").first().textContent(), "on", "the served variant is marked up as code");
    assert.match(await checkout.locator("li").nth(1).textContent(), /not reached/);

    // A miss: rule 1's condition failed on the email, the rollout decided; theme's first
    // failed condition is the second (plan absent).
    await page.fill("#pg-context", '{"targetingKey": "user-8", "email": "x@example.com", "country": "DE"}');
    await page.click("button:has-text('Evaluate')");
    const rule1 = page.locator("#pg-flag-new-checkout li").nth(0);
    assert.match(await rule1.textContent(), /missed/);
    assert.match(await rule1.textContent(), /condition 1 email ends with "@raxx.app" failed: email is "x@example.com"/);
    assert.match(await page.textContent("#pg-flag-new-checkout"), /because rule 2 matched/);
    assert.match(await page.textContent("#pg-flag-theme"), /condition 2 plan is one of \["pro","team"\] failed: plan is not in the context/);
    assert.equal(await page.inputValue("#pg-context"), '{"targetingKey": "user-8", "email": "x@example.com", "country": "DE"}');
    await screenshot(page, "playground");

    // Usage: evaluations over OFREP appear on the flags page after the flush (every 5 s).
    const client = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "client"));
    for (let i = 0; i < 12; i++) {
      const status = await new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port: staging.port,
            method: "POST",
            path: "/ofrep/v1/evaluate/flags/new-checkout",
            headers: {
              host: `staging.localhost:${staging.port}`,
              authorization: `Bearer ${client}`,
              "content-type": "application/json",
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode);
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ context: { targetingKey: `user-${i}` } }));
      });
      assert.equal(status, 200);
    }
    let count = "";
    for (let i = 0; i < 40 && count !== "12"; i++) {
      await new Promise((r) => setTimeout(r, 500));
      await page.goto(staging.url("/apps/raxx-api-staging/flags"));
      count = (await page.locator("#usage-new-checkout td.num").textContent()).trim();
    }
    assert.equal(count, "12");
    assert.match(await page.textContent("#usage-new-checkout"), /in use/);
    assert.match(await page.textContent("#usage-old-banner"), /never/);
    await page.locator("#usage-title").scrollIntoViewIfNeeded();
    await screenshot(page, "flag-usage");
  } finally {
    await staging.stop();
  }
});

test("a queued promotion reaches the receiver with a deep link that opens the review after sign-in", async () => {
  const got = [];
  let failNext = 1;
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (failNext > 0) {
        failNext -= 1;
        res.writeHead(503).end();
        return;
      }
      got.push({ path: req.url, body: JSON.parse(body) });
      res.writeHead(200).end("ok");
    });
  });
  const rport = await freePort();
  await new Promise((r) => receiver.listen(rport, "127.0.0.1", r));
  const staging = await startConsole("staging", STAGING_APP);
  let prod;
  try {
    staging.cli("flags", "apply", tmpFile("flags.toml", FLAGS));
    const readKey = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read"));
    prod = await startConsole(
      "prod",
      `staging_source_url = "${staging.origin}"\nstaging_source_key = "${readKey}"\n` +
        `[[apps]]\nname = "raxx-api-prod"\nenv = "prod"\npromote_from = "raxx-api-staging"\n\n` +
        `[[notify]]\nname = "reviewers"\nkind = "webhook"\nurl = "http://127.0.0.1:${rport}/hooks/s3cr3t"\nevents = ["promotion.queued"]\n`,
    );
    const a = await signedIn(prod, "alice@raxx.test");
    await a.page.goto(prod.url("/promotions/new?app=raxx-api-prod"));
    await a.page.check('input[name=flag][value="new-checkout"]');
    await a.page.fill("#pr-reason", "Ship the new checkout");
    await a.page.click("button:has-text('Queue for review')");
    const reviewPath = new URL(a.page.url()).pathname;
    assert.match(reviewPath, /^\/promotions\/\d+$/);
    // notify-delivery runs every 10 s: the first attempt fails, the retry (10 s later) lands.
    for (let i = 0; i < 90 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 500));
    assert.equal(got.length, 1, "delivered after a retry");
    assert.equal(got[0].body.event, "promotion.queued");
    assert.equal(got[0].body.link, prod.url(reviewPath));
    // Bob, signed out, follows the link: sign-in, then the review.
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(got[0].body.link);
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.equal(new URL(page.url()).searchParams.get("next"), reviewPath, "the sign-in page keeps the link");
    await prod.signIn(page, "bob@raxx.test");
    await page.goto(got[0].body.link);
    assert.equal(new URL(page.url()).pathname, reviewPath);
    assert.match(await page.textContent("h1"), /Promotion #\d+/);
  } finally {
    await prod?.stop();
    await staging.stop();
    receiver.close();
  }
});
