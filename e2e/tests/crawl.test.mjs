// Crawl every page reachable on each console as each kind of operator: the env pill reads
// the console's env everywhere, and no staging page contains a prod-write control.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { launchBrowser, manifestRoutes, screenshot, startConsole } from "../lib/harness.mjs";
import { axeBothThemes, htmlErrors, offscreenActions } from "../lib/checks.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const GROUPS = `
[groups.staging-admins]
members = ["sam@raxx.test"]
[groups.production-admins]
members = ["pat@raxx.test"]
[groups.readers]
members = ["nora@raxx.test"]
`;

const PHONE_FLAGS = `app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
description = "New checkout flow"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
rollout = { on = 25, off = 75 }
`;

const apps = {
  staging: `[[apps]]\nname = "raxx-api-staging"\nenv = "staging"\n`,
  prod: `[[apps]]\nname = "raxx-api-prod"\nenv = "prod"\npromote_from = "raxx-api-staging"\n`,
};

async function crawl(page, c, who, prodWrites, { phone = false } = {}) {
  const seen = new Set();
  const queue = ["/"];
  const problems = [];
  while (queue.length && seen.size < 80) {
    const p = queue.shift();
    if (seen.has(p)) continue;
    seen.add(p);
    const resp = await page.goto(c.url(p));
    const status = resp.status();
    if (status >= 500) problems.push(`${p}: status ${status}`);
    if (phone) {
      // 390 px: every action reachable without sideways scrolling, the menu open or shut.
      for (const issue of await offscreenActions(page)) problems.push(`${p} (390 px): ${issue}`);
      const menu = await page.$("details.nav-menu > summary");
      if (menu && (await menu.isVisible())) {
        await menu.click();
        for (const issue of await offscreenActions(page)) problems.push(`${p} (390 px, menu open): ${issue}`);
        await menu.click();
      }
    } else {
      // Valid HTML as sent, and axe-core's WCAG 2.1 AA rules in both colour schemes.
      for (const issue of await htmlErrors(await resp.text())) problems.push(`${p}: html ${issue}`);
      for (const issue of await axeBothThemes(page)) problems.push(`${p}: axe ${issue}`);
    }
    const env = await page.getAttribute("body", "data-env");
    const pill = (await page.textContent(".env-pill"))?.trim();
    if (env !== c.env || pill !== c.env.toUpperCase()) problems.push(`${p}: pill ${pill} data-env ${env}`);
    const css = await page.evaluate(() => getComputedStyle(document.querySelector(".env-pill")).backgroundColor);
    if (css === "rgba(0, 0, 0, 0)") problems.push(`${p}: unstyled pill`);
    // Accessibility basics on every page: one h1, every visible control labelled.
    const a11y = await page.evaluate(() => {
      const out = [];
      const h1s = document.querySelectorAll("h1").length;
      if (h1s !== 1) out.push(`${h1s} h1 elements`);
      for (const el of document.querySelectorAll("input, select, textarea")) {
        if (el.type === "hidden") continue;
        const labelled =
          (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) ||
          el.closest("label") ||
          el.getAttribute("aria-label") ||
          el.getAttribute("aria-labelledby");
        if (!labelled) out.push(`unlabelled ${el.tagName.toLowerCase()}[name=${el.name}]`);
      }
      for (const b of document.querySelectorAll("button")) {
        if (!(b.textContent.trim() || b.getAttribute("aria-label"))) out.push("a button with no text");
      }
      return out;
    });
    for (const issue of a11y) problems.push(`${p}: ${issue}`);
    if (c.env === "staging") {
      const targets = await page.$$eval("form", (fs) =>
        fs.map((f) => ({
          action: new URL(f.getAttribute("action") || "", document.baseURI).pathname,
          method: (f.getAttribute("method") || "get").toUpperCase(),
        })),
      );
      for (const t of targets) {
        if (t.method === "POST" && prodWrites.some((r) => r.re.test(t.action))) problems.push(`${p}: prod-write form ${t.action}`);
      }
    }
    const links = await page.$$eval("a[href]", (as) => as.map((a) => a.getAttribute("href")));
    for (const href of links) {
      if (!href.startsWith("/") || href.startsWith("//")) continue;
      const clean = href.split("#")[0];
      if (clean.startsWith("/auth/") || clean.startsWith("/static/") || clean.startsWith("/api/") || clean.includes("/export")) continue;
      if (!seen.has(clean)) queue.push(clean);
    }
  }
  if (c.env === "staging" && who === "sam") await screenshot(page, "staging-crawl-last-page");
  return { seen: [...seen], problems };
}

for (const env of ["staging", "prod"]) {
  test(`every page on ${env} shows the env pill; staging renders no prod-write control`, async () => {
    // Checked before any server starts, so a failure leaves no process behind.
    const prodWrites = manifestRoutes().filter((r) => r.cls === "prod-write");
    assert.ok(prodWrites.length > 0, "the manifest declares prod-write routes");
    // The prod console reads its staging source from a real staging console.
    const staging = env === "prod" ? await startConsole("staging", apps.staging) : null;
    let source = "";
    if (staging) {
      const key = staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read").trim().split("\n").pop();
      source = `staging_source_url = "${staging.origin}"\nstaging_source_key = "${key}"\n`;
    }
    const c = await startConsole(env, source + apps[env] + GROUPS);
    try {
      for (const who of ["alice", "sam", "pat", "nora"]) {
        const ctx = await browser.newContext();
        const page = await ctx.newPage();
        await c.signIn(page, `${who}@raxx.test`);
        assert.equal(new URL(page.url()).pathname, "/", `${who} signed in`);
        const { seen, problems } = await crawl(page, c, who, prodWrites);
        assert.deepEqual(problems, [], `${env} as ${who}: ${problems.join("\n")}`);
        assert.ok(seen.length >= 3, `${who} reached ${seen.join(", ")}`);
        await ctx.close();
      }
    } finally {
      await c.stop();
      await staging?.stop();
    }
  });
}

for (const env of ["staging", "prod"]) {
  test(`on a 390 px phone every action of every ${env} page is on screen`, async () => {
    const staging = env === "prod" ? await startConsole("staging", apps.staging) : null;
    let source = "";
    if (staging) {
      const key = staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read").trim().split("\n").pop();
      source = `staging_source_url = "${staging.origin}"\nstaging_source_key = "${key}"\n`;
      // A flag to promote, so the crawl reaches a promotion's review page too.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-phone-"));
      const file = path.join(dir, "raxx-api-staging.flags.toml");
      fs.writeFileSync(file, PHONE_FLAGS);
      staging.cli("flags", "apply", file);
    }
    const c = await startConsole(env, source + apps[env] + GROUPS);
    try {
      // alice is an admin on both consoles: she sees the most controls.
      const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
      const page = await ctx.newPage();
      await c.signIn(page, "alice@raxx.test");
      if (staging) {
        await page.goto(c.url("/promotions/new?app=raxx-api-prod"));
        await page.check('input[name=flag][value="new-checkout"]');
        await page.fill("#pr-reason", "phone layout");
        await page.click("button:has-text('Queue for review')");
        assert.match(new URL(page.url()).pathname, /^\/promotions\/\d+$/);
      }
      const { seen, problems } = await crawl(page, c, "alice", [], { phone: true });
      assert.deepEqual(problems, [], `${env} at 390 px: ${problems.join("\n")}`);
      assert.ok(seen.length >= 5, `reached ${seen.join(", ")}`);
      if (staging) assert.ok(seen.some((p) => /^\/promotions\/\d+$/.test(p)), `no review page in ${seen.join(", ")}`);
      await ctx.close();
    } finally {
      await c.stop();
      await staging?.stop();
    }
  });
}

test("a tampered _target_env and a form rendered before a grant was removed are refused with a readable page", async () => {
  const dir = (await import("node:fs")).mkdtempSync((await import("node:path")).join((await import("node:os")).tmpdir(), "raxx-e2e-grants-"));
  const withPat = apps.prod + `[groups.production-admins]\nmembers = ["pat@raxx.test"]\n`;
  let c = await startConsole("prod", withPat, { dir });
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  try {
    await c.signIn(page, "pat@raxx.test");
    await page.goto(c.url("/invites"));
    await page.fill("#inv-email", "x@raxx.test");
    await page.selectOption("#inv-group", "production-admins");
    await page.evaluate(() => {
      document.querySelector("form[action='/invites'] input[name=_target_env]").value = "staging";
    });
    await page.click("text=Create invite");
    assert.equal(await page.textContent("h1"), "Wrong environment");
    assert.match(await page.textContent("main"), /prepared for staging/);
    await screenshot(page, "prod-env-mismatch");

    // Render the form, then take pat out of the group in config and restart the console.
    await page.goto(c.url("/invites"));
    await page.fill("#inv-email", "y@raxx.test");
    await page.selectOption("#inv-group", "production-admins");
    const port = c.port;
    await c.stop();
    c = await startConsole("prod", apps.prod + `[groups.production-admins]\nmembers = []\n`, { dir, port });
    await page.click("text=Create invite");
    assert.equal(await page.textContent("h1"), "You do not have the role for this");
    assert.match(await page.textContent("main"), /console-invite-admin/);
    await screenshot(page, "prod-forbidden");
  } finally {
    await ctx.close();
    await c.stop();
  }
});
