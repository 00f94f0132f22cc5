// Reviews an approver can trust (issue 16), in a real browser as two prod admins: the
// reviewer sees a rollout moving from 10 % to 50 % and an added condition, the applied
// promotion still shows them after a later kill switch, a restore goes through review, and
// a deep link survives a passkey sign-in.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { addVirtualAuthenticator, ENROL_CODE, launchBrowser, screenshot, startConsole } from "../lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const STAGING_APP = `[[apps]]\nname = "raxx-api-staging"\nenv = "staging"\n`;
const PROD_APP = `[[apps]]\nname = "raxx-api-prod"\nenv = "prod"\npromote_from = "raxx-api-staging"\n`;

const BEFORE = `app = "raxx-api-staging"

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
`;

const AFTER = BEFORE.replace(
  "rollout = { on = 10, off = 90 }",
  'when = [{ attr = "country", op = "in", value = ["DE", "FR"] }]\nrollout = { on = 50, off = 50 }',
);

const ROLLOUT = "rule 2: rollout off 90% → 50%, on 10% → 50%";
const CONDITION = 'rule 2: condition added: country in ["DE","FR"]';

const lastLine = (out) => out.trim().split("\n").pop().trim();

function tmpFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-review-"));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

async function signedIn(c, email) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await c.signIn(page, email);
  assert.equal(new URL(page.url()).pathname, "/", `${email} signed in on ${c.env}`);
  return { ctx, page };
}

async function queueNewCheckout(page, prod, reason) {
  await page.goto(prod.url("/promotions/new?app=raxx-api-prod"));
  await page.check('input[name=flag][value="new-checkout"]');
  await page.fill("#pr-reason", reason);
  await page.click("button:has-text('Queue for review')");
  assert.match(new URL(page.url()).pathname, /^\/promotions\/\d+$/);
  return page.url();
}

async function approve(page, url) {
  await page.goto(url);
  await page.click("button:has-text('Approve and apply')");
  assert.match(await page.textContent("h1"), /applied/);
}

test("the reviewer sees a 10 % → 50 % rollout and an added condition, frozen through apply and a kill; a restore is reviewed", async () => {
  const staging = await startConsole("staging", STAGING_APP);
  let prod;
  try {
    staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", BEFORE));
    const readKey = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read"));
    prod = await startConsole(
      "prod",
      `staging_source_url = "${staging.origin}"\nstaging_source_key = "${readKey}"\n` + PROD_APP,
    );
    const a = await signedIn(prod, "alice@raxx.test");
    const b = await signedIn(prod, "bob@raxx.test");

    // Prod gets the 10 % rollout first (one promotion, two people).
    const first = await queueNewCheckout(a.page, prod, "First rollout: 10 %");
    await approve(b.page, first);

    // Staging moves the rollout to 50 % and adds a condition; alice queues it.
    staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", AFTER));
    const url = await queueNewCheckout(a.page, prod, "Widen the checkout rollout to 50 % in DE and FR");

    // Bob's review shows both, at the level of the condition and the percentage.
    await b.page.goto(url);
    const changes = await b.page.locator(".review-changes li").allTextContents();
    assert.deepEqual(changes, [CONDITION, ROLLOUT]);
    const row = (part) => b.page.locator(`table.side-by-side tr:has(th:text-is("${part}"))`);
    assert.match(await row("rollout on").getAttribute("class"), /diff-changed/);
    assert.deepEqual(
      (await row("rollout on").locator("td code").allTextContents()).map((t) => t.trim()),
      ["10 %", "50 %"],
    );
    const added = b.page.locator("table.side-by-side tr.diff-added:has(th:text-is('when'))");
    assert.equal(await added.count(), 1, "one added condition row");
    assert.match(await added.textContent(), /country in \["DE","FR"\]/);
    assert.match(await added.locator("td.sign").textContent(), /\+/);
    assert.match(await b.page.textContent("main"), /under review/);
    await screenshot(b.page, "prod-review");

    await b.page.click("button:has-text('Approve and apply')");
    assert.match(await b.page.textContent("h1"), /applied/);

    // A later kill switch: the applied promotion still shows what was approved and applied.
    await a.page.goto(prod.url("/apps/raxx-api-prod/flags/new-checkout"));
    await a.page.fill("#kill-reason", "Incident 4711: checkout errors in FR");
    await a.page.click("button:has-text('Disable new-checkout')");
    assert.match(await a.page.textContent(".flash"), /disabled/);
    await b.page.goto(url);
    assert.deepEqual(await b.page.locator(".review-changes li").allTextContents(), [CONDITION, ROLLOUT]);
    assert.match(await b.page.textContent("main"), /as it was approved/);
    assert.match(await b.page.textContent("#pr-now ~ div"), /enabled false → true/, "drift in its own panel");
    await screenshot(b.page, "prod-review-applied-after-kill");

    // Restore: offered on the killed flag's page; only enabled = true; reviewed by bob.
    await a.page.goto(prod.url("/apps/raxx-api-prod/flags/new-checkout"));
    await screenshot(a.page, "prod-flag-killed-restore");
    await a.page.fill("#restore-reason", "Incident 4711 fixed in 2.4.1");
    await a.page.click("button:has-text('Queue a restore')");
    const restoreUrl = a.page.url();
    assert.match(new URL(restoreUrl).pathname, /^\/promotions\/\d+$/);
    assert.match(await a.page.textContent("h1"), /Restore #\d+/);
    assert.equal(await a.page.locator("button:has-text('Approve')").count(), 0, "no self-approval");
    await b.page.goto(restoreUrl);
    assert.deepEqual(await b.page.locator(".review-changes li").allTextContents(), ["enabled false → true"]);
    assert.match(await b.page.textContent("main"), /Nothing from staging rides along/);
    await screenshot(b.page, "prod-restore-review");
    await b.page.click("button:has-text('Approve and apply')");
    assert.match(await b.page.textContent("h1"), /applied/);
    await b.page.goto(prod.url("/apps/raxx-api-prod/flags/new-checkout"));
    assert.match(await b.page.textContent("main"), /enabled/);
    assert.equal(await b.page.locator("#restore-reason").count(), 0, "no Restore once enabled");
    await a.ctx.close();
    await b.ctx.close();
  } finally {
    await prod?.stop();
    await staging.stop();
  }
});

test("a deep link to a promotion survives the passkey sign-in; an off-site next does not", async () => {
  const prod = await startConsole("prod", PROD_APP);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await addVirtualAuthenticator(page);
    // Signed out, a page GET goes to /login with next.
    await page.goto(prod.url("/promotions?status=pending"));
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.equal(new URL(page.url()).searchParams.get("next"), "/promotions?status=pending");
    await page.fill("#reg-email", "alice@raxx.test");
    await page.fill("#reg-name", "Alice");
    await page.fill("#reg-code", ENROL_CODE);
    await page.click("form[data-passkey=register] button[type=submit]");
    await page.waitForURL(prod.url("/"));
    await page.click("text=Sign out");
    await page.waitForURL(prod.url("/login"));

    await page.goto(prod.url("/login?next=%2Fpromotions%3Fstatus%3Dpending"));
    await page.fill("#login-email", "alice@raxx.test");
    await page.click("form[data-passkey=login] button[type=submit]");
    await page.waitForURL(prod.url("/promotions?status=pending"));
    assert.match(await page.textContent("h1"), /promotions/i);

    await page.click("text=Sign out");
    await page.waitForURL(prod.url("/login"));
    await page.goto(prod.url("/login?next=%2F%2Fevil.example%2Fpromotions"));
    await page.fill("#login-email", "alice@raxx.test");
    await page.click("form[data-passkey=login] button[type=submit]");
    await page.waitForURL(prod.url("/"));
    assert.equal(new URL(page.url()).host, new URL(prod.origin).host);
    await ctx.close();
  } finally {
    await prod.stop();
  }
});
