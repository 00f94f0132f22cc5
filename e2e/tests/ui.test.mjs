// An operator's day when things go wrong (issue 17), in Chromium against real consoles:
// a refused form keeps what was typed, a stale approval shows the promotion and why, an
// ended session sends you back where you were, prod's "Run now" asks first, the header
// stays on screen, and a phone gets a menu. Screenshots of the changed pages, desktop and
// phone, light and dark, go to e2e/screenshots/.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { addVirtualAuthenticator, ENROL_CODE, launchBrowser, SHOTS, startConsole } from "../lib/harness.mjs";
import { axeBothThemes } from "../lib/checks.mjs";

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
default = "midnight"
`;
const lastLine = (out) => out.trim().split("\n").pop().trim();
function tmpFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-ui-"));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

/** Desktop 1280 and phone 390, light and dark: `${name}-{desktop,phone}-{light,dark}.png`. */
async function shots(c, cookies, p, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const [form, viewport, mobile] of [
    ["desktop", { width: 1280, height: 800 }, false],
    ["phone", { width: 390, height: 844 }, true],
  ]) {
    for (const colorScheme of ["light", "dark"]) {
      const ctx = await browser.newContext({ viewport, isMobile: mobile, hasTouch: mobile, colorScheme });
      await ctx.addCookies(cookies);
      const page = await ctx.newPage();
      await page.goto(c.url(p));
      await page.screenshot({ path: path.join(SHOTS, `${name}-${form}-${colorScheme}.png`), fullPage: true });
      await ctx.close();
    }
  }
}

async function withStagingSource() {
  const staging = await startConsole("staging", STAGING_APP);
  staging.cli("flags", "apply", tmpFile("raxx-api-staging.flags.toml", STAGING_FLAGS));
  const readKey = lastLine(staging.cli("keys", "create", "--app", "raxx-api-staging", "--kind", "read"));
  const prod = await startConsole("prod", `staging_source_url = "${staging.origin}"\nstaging_source_key = "${readKey}"\n` + PROD_APP);
  return { staging, prod };
}

test("a validation error keeps the typed reason; a stale approval shows the promotion and why", async () => {
  const { staging, prod } = await withStagingSource();
  try {
    const actx = await browser.newContext();
    const a = await actx.newPage();
    await prod.signIn(a, "alice@raxx.test");
    await a.goto(prod.url("/promotions/new?app=raxx-api-prod"));
    const reason = "Ship midnight to everyone — typed before forgetting the tick";
    await a.fill("#pr-reason", reason);
    await a.click("button:has-text('Queue for review')");
    // Refused, and nothing lost: the reason is still there, the flags are marked.
    assert.equal(await a.inputValue("#pr-reason"), reason);
    assert.match(await a.textContent(".form-error"), /at least one flag/);
    assert.equal(await a.getAttribute('input[name=flag][value="theme"]', "aria-invalid"), "true");
    assert.equal(await a.title(), "PROD · New promotion · raxx console");
    assert.deepEqual(await axeBothThemes(a), []);
    await a.screenshot({ path: path.join(SHOTS, "prod-promotion-new-refused.png"), fullPage: true });

    // Tick and queue; then prod moves on under the request (a flags file applied).
    await a.check('input[name=flag][value="theme"]');
    await a.click("button:has-text('Queue for review')");
    assert.match(new URL(a.url()).pathname, /^\/promotions\/\d+$/);
    const promo = a.url();
    // A second request for the same flag, approved first: prod moves on under the first.
    await a.goto(prod.url("/promotions/new?app=raxx-api-prod"));
    await a.check('input[name=flag][value="theme"]');
    await a.fill("#pr-reason", "The same change, asked again");
    await a.click("button:has-text('Queue for review')");
    const second = a.url();
    assert.notEqual(second, promo);

    const bctx = await browser.newContext();
    const b = await bctx.newPage();
    await prod.signIn(b, "bob@raxx.test");
    await b.goto(second);
    await b.click("button:has-text('Approve and apply')");
    assert.match(await b.textContent("h1"), /applied/);
    await b.goto(promo);
    await b.click("button:has-text('Approve and apply')");
    // Not a bare 409 page: the promotion itself, saying why it went stale.
    assert.match(await b.textContent("h1"), /Promotion #\d+ into raxx-api-prod/);
    assert.match(await b.textContent("[role=alert]"), /This promotion went stale/);
    assert.match(await b.textContent("[role=alert]"), /not applied because prod flag `theme` changed/);
    assert.ok(await b.locator("nav.nav-wide a[href='/audit']").count(), "the layout and nav");
    assert.deepEqual(await axeBothThemes(b), []);
    await b.screenshot({ path: path.join(SHOTS, "prod-promotion-stale.png"), fullPage: true });
    await actx.close();
    await bctx.close();
  } finally {
    await prod.stop();
    await staging.stop();
  }
});

test("a deep link survives an ended session; a submit after it offers a sign-in back", async () => {
  const prod = await startConsole("prod", PROD_APP);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await addVirtualAuthenticator(page);
    await page.goto(prod.url("/login"));
    await page.fill("#reg-email", "alice@raxx.test");
    await page.fill("#reg-name", "Alice");
    await page.fill("#reg-code", ENROL_CODE);
    await page.click("form[data-passkey=register] button[type=submit]");
    await page.waitForURL(prod.url("/"));

    // A form open in a second tab; the session then ends in the first (sign-out), and the
    // browser still holds the old cookie (as a tab left open from before would).
    const cookies = await ctx.cookies();
    const form = await ctx.newPage();
    await form.goto(prod.url("/invites"));
    await form.fill("#inv-email", "carol@raxx.test");
    await form.selectOption("#inv-group", "production-admins");
    await page.click("header .who button:has-text('Sign out')");
    await page.waitForURL(prod.url("/login"));
    await ctx.addCookies(cookies);

    await form.click("text=Create invite");
    assert.equal(await form.textContent("h1"), "Please sign in");
    const back = form.locator("a:has-text('Sign in again')");
    const href = await back.getAttribute("href");
    assert.equal(href, "/login?next=%2Finvites&reason=ended");
    await form.screenshot({ path: path.join(SHOTS, "prod-submit-after-session-ended.png"), fullPage: true });
    await form.close();

    // The deep link: the sign-in page says why, and lands on the page after the passkey.
    await ctx.addCookies(cookies);
    await page.goto(prod.url("/audit?outcome=denied"));
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.equal(new URL(page.url()).searchParams.get("next"), "/audit?outcome=denied");
    assert.match(await page.textContent(".session-notice"), /Your session was ended — sign in again\./);
    assert.deepEqual(await axeBothThemes(page), []);
    await page.screenshot({ path: path.join(SHOTS, "prod-login-session-ended.png"), fullPage: true });
    await page.fill("#login-email", "alice@raxx.test");
    await page.click("form[data-passkey=login] button[type=submit]");
    await page.waitForURL(prod.url("/audit?outcome=denied"));
    assert.equal(await page.textContent("h1"), "Audit log");
    await ctx.close();
  } finally {
    await prod.stop();
  }
});

test("error pages carry the layout and the operator's navigation; a 421 is a page for a browser", async () => {
  const prod = await startConsole("prod", PROD_APP);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await prod.signIn(page, "alice@raxx.test");
    const r = await page.goto(prod.url("/no/such/page"));
    assert.equal(r.status(), 404);
    assert.equal(await page.textContent("h1"), "Not found");
    assert.ok(await page.locator("nav.nav-wide a[href='/audit']").count(), "alice's nav on a 404");
    assert.equal(await page.textContent(".env-pill"), "PROD");
    await page.screenshot({ path: path.join(SHOTS, "prod-404.png"), fullPage: true });

    // The same console reached by its IP, not its name: 421, as a page with the way there.
    const wrong = await page.goto(`http://127.0.0.1:${prod.port}/audit`);
    assert.equal(wrong.status(), 421);
    assert.equal(await page.textContent("h1"), "Wrong address for this console");
    assert.equal(await page.getAttribute("main a[href$='/']", "href"), `${prod.origin}/`);
    assert.deepEqual(await axeBothThemes(page), []);
    await page.screenshot({ path: path.join(SHOTS, "prod-421.png"), fullPage: true });
    await ctx.close();
  } finally {
    await prod.stop();
  }
});

test("Run now on prod asks first; on staging it runs; schedules read in words", async () => {
  for (const env of ["staging", "prod"]) {
    const c = await startConsole(env, env === "prod" ? PROD_APP : STAGING_APP);
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await c.signIn(page, "alice@raxx.test");
      await page.goto(c.url("/jobs"));
      // Each schedule in words, once a scheduler has published it.
      for (let i = 0; i < 50 && !(await page.locator("text=every 30 seconds").count()); i++) {
        await new Promise((r) => setTimeout(r, 200));
        await page.reload();
      }
      assert.ok(await page.locator("td:has-text('every 30 seconds')").count(), "status-poll in words");
      const row = page.locator("tr:has(th a:text-is('status-poll'))");
      if (env === "prod") {
        const submit = row.locator("button[type=submit]");
        assert.equal(await submit.isVisible(), false, "no one-click run on prod");
        await row.locator("summary:has-text('Run now')").click();
        assert.match(await row.textContent(), /Run status-poll now on PROD\?/);
        assert.deepEqual(await axeBothThemes(page), []);
        await page.screenshot({ path: path.join(SHOTS, "prod-jobs-confirm.png"), fullPage: true });
        await submit.click();
      } else {
        await row.locator("button:has-text('Run now')").click();
      }
      assert.match(await page.textContent(".flash"), /status-poll queued/);
      await ctx.close();
    } finally {
      await c.stop();
    }
  }
});

test("the env pill and the prod banner stay on screen while scrolling; phones get a menu", async () => {
  const prod = await startConsole("prod", PROD_APP);
  try {
    // A short window, so the jobs page scrolls.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 360 } });
    const page = await ctx.newPage();
    await prod.signIn(page, "alice@raxx.test");
    await page.goto(prod.url("/jobs"));
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    assert.ok((await page.evaluate(() => window.scrollY)) > 200, "the page scrolled");
    for (const sel of [".env-pill", ".prod-banner"]) {
      const box = await page.locator(sel).boundingBox();
      assert.ok(box && box.y >= 0 && box.y < 120, `${sel} on screen after scrolling: ${JSON.stringify(box)}`);
    }
    assert.equal(await page.getAttribute("link[rel=icon]", "href"), "/static/favicon-prod.svg");
    assert.equal(await page.title(), "PROD · Jobs · raxx console");
    const cookies = await ctx.cookies();
    await ctx.close();

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.addCookies(cookies);
    const p = await phone.newPage();
    await p.goto(prod.url("/jobs"));
    assert.equal(await p.locator("nav.nav-wide").isVisible(), false, "the wide nav is folded away");
    const menu = p.locator("details.nav-menu > summary");
    assert.ok(await menu.isVisible());
    await menu.click();
    await p.locator("details.nav-menu a:has-text('Invites')").click();
    await p.waitForURL(prod.url("/invites"));
    assert.equal(await p.textContent("h1"), "Invites");
    await phone.close();

    for (const [pth, name] of [
      ["/", "dashboard"],
      ["/jobs", "jobs"],
      ["/invites", "invites"],
      ["/status", "status"],
      ["/tokens", "tokens"],
      ["/audit", "audit"],
    ]) {
      await shots(prod, cookies, pth, `prod-${name}`);
    }
  } finally {
    await prod.stop();
  }
});
