// The audit log as an operator searches it (issue 17), in a real browser on prod: who
// changed a flag, found from the flag's name in the filter, with the actor's email on
// every row; the promotions that carried the flag come with it; reads stay out of the
// way until asked for; a row opens in full.
import assert from "node:assert/strict";
import fs from "node:fs";
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
const FLAGS = `app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
`;

function tmpFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-audit-"));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

async function signedIn(c, email) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await c.signIn(page, email);
  return { ctx, page };
}

test("who changed a flag: typed as the flag's name, answered with the actor's email in under three actions", async () => {
  const staging = await startConsole("staging", STAGING_APP);
  let prod;
  try {
    staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", FLAGS));
    const readKey = staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read").trim().split("\n").pop().trim();
    prod = await startConsole(
      "prod",
      `staging_source_url = "${staging.origin}"\nstaging_source_key = "${readKey}"\n` + PROD_APP,
    );
    const a = await signedIn(prod, "alice@raxx.test");
    const b = await signedIn(prod, "bob@raxx.test");
    await a.page.goto(prod.url("/promotions/new?app=raxx-api-prod"));
    await a.page.check('input[name=flag][value="new-checkout"]');
    await a.page.fill("#pr-reason", "Ship the new checkout");
    await a.page.click("button:has-text('Queue for review')");
    const promotion = a.page.url();
    await b.page.goto(promotion);
    await b.page.click("button:has-text('Approve and apply')");
    await a.page.goto(prod.url("/apps/raxx-api-prod/flags/new-checkout"));
    await a.page.fill("#kill-reason", "Incident 4711: checkout errors");
    await a.page.click("button:has-text('Disable new-checkout')");

    // Bob, on the audit log, reads a few pages first (each read is audited)...
    const page = b.page;
    await page.goto(prod.url("/audit"));
    await page.goto(prod.url("/audit"));
    // ...then (1) types the flag as the table shows targets and (2) submits.
    await page.fill("#f-target", "flag new-checkout");
    await page.press("#f-target", "Enter");
    await page.waitForURL(/target=flag/);
    const rows = page.locator("table tbody tr");
    const text = await rows.allTextContents();
    const kill = text.find((t) => t.includes("flag.kill"));
    assert.ok(kill, `the kill is listed: ${text.join("\n")}`);
    assert.match(kill, /alice@raxx\.test/, "the actor's email is on the row");
    assert.match(kill, /Incident 4711/);
    assert.ok(text.some((t) => t.includes("flag.promotion.queue") && t.includes("alice@raxx.test")), "the promotion that carried the flag is found too");
    assert.ok(text.some((t) => t.includes("flag.promotion.approve") && t.includes("bob@raxx.test")));
    assert.ok(!text.some((t) => t.includes("audit.view")), "reads are hidden by default");
    await screenshot(page, "prod-audit-search-flag");

    // (3) The actor cell filters by that actor.
    await page.click("table tbody tr:has-text('flag.kill') td:nth-child(3) a");
    await page.waitForURL(/actor=\d+/);
    const byAlice = await page.locator("table tbody tr td:nth-child(3)").allTextContents();
    assert.ok(byAlice.length > 0 && byAlice.every((t) => t.includes("alice@raxx.test")), byAlice.join(" | "));

    // Email and its start work in the actor field; free text finds the reason.
    await page.goto(prod.url("/audit"));
    await page.fill("#f-actor", "ali");
    await page.fill("#f-q", "incident");
    await page.click("form.filters button[type=submit]");
    const found = await page.locator("table tbody tr").allTextContents();
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0], /flag\.kill/);

    // The toggle shows reads; a row opens in full with both hashes.
    await page.goto(prod.url("/audit"));
    await page.check("#f-reads");
    await page.click("form.filters button[type=submit]");
    assert.ok((await page.locator("table tbody tr").allTextContents()).some((t) => t.includes("audit.view")));
    await page.click("table tbody tr:has-text('flag.kill') td:first-child a");
    assert.match(await page.textContent("h1"), /Audit entry \d+/);
    const facts = await page.textContent("dl.facts");
    assert.match(facts, /Previous hash\s*[0-9a-f]{64}/);
    assert.match(facts, /Hash\s*[0-9a-f]{64}/);
    assert.match(await page.textContent("pre.context"), /"\w+"/);
    await screenshot(page, "prod-audit-entry");
  } finally {
    await prod?.stop();
    await staging.stop();
  }
});
