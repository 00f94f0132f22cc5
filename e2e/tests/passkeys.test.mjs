// Passkey registration (bootstrap with the enrolment code, and through an invite) and sign-in,
// on the demo's origins (staging.localhost / prod.localhost), with the DevTools virtual
// authenticator in Debian's Chromium.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { addVirtualAuthenticator, ENROL_CODE, launchBrowser, screenshot, startConsole } from "../lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function pill(page) {
  return {
    env: await page.getAttribute("body", "data-env"),
    text: (await page.textContent(".env-pill"))?.trim(),
  };
}

for (const env of ["staging", "prod"]) {
  test(`bootstrap registration and passkey sign-in on ${env}.localhost`, async () => {
    const c = await startConsole(env);
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await addVirtualAuthenticator(page);
      await page.goto(c.url("/login"));
      assert.deepEqual(await pill(page), { env, text: env.toUpperCase() });

      // A wrong enrolment code is refused with a readable message.
      await page.fill("#reg-email", "alice@raxx.test");
      await page.fill("#reg-name", "Alice");
      await page.fill("#reg-code", "wrong-code");
      await page.click("form[data-passkey=register] button[type=submit]");
      const err = page.locator("form[data-passkey=register] .form-error");
      await err.waitFor({ state: "visible" });
      assert.match(await err.textContent(), /enrolment code/);

      await page.fill("#reg-code", ENROL_CODE);
      await page.click("form[data-passkey=register] button[type=submit]");
      await page.waitForURL(c.url("/"));
      assert.equal(await page.textContent("h1"), "Dashboard");
      assert.deepEqual(await pill(page), { env, text: env.toUpperCase() });
      await screenshot(page, `${env}-dashboard-after-registration`);

      // Sign out, then sign in with the passkey just made.
      await page.click("text=Sign out");
      await page.waitForURL(c.url("/login"));
      await page.fill("#login-email", "alice@raxx.test");
      await page.click("form[data-passkey=login] button[type=submit]");
      await page.waitForURL(c.url("/"));
      const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
      assert.equal(me.email, "alice@raxx.test");
      assert.equal(me.env, env);
      assert.deepEqual(me.groups, [env === "prod" ? "production-admins" : "staging-admins"]);
      await ctx.close();
    } finally {
      await c.stop();
    }
  });
}

test("an invitee registers a passkey from the invite link and joins the group", async () => {
  const c = await startConsole("prod");
  try {
    const adminCtx = await browser.newContext();
    const admin = await adminCtx.newPage();
    await c.signIn(admin, "alice@raxx.test");
    await admin.goto(c.url("/invites"));
    await admin.fill("#inv-email", "carol@raxx.test");
    await admin.selectOption("#inv-group", "production-admins");
    await admin.click("text=Create invite");
    const link = await admin.inputValue("input.copy");
    assert.ok(link.startsWith(c.origin + "/invite/"), link);
    await screenshot(admin, "prod-invites");

    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await addVirtualAuthenticator(page);
    await page.goto(link);
    await page.fill("#inv-name", "Carol");
    await page.click("text=Register a passkey and join");
    await page.waitForURL(c.url("/"));
    const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
    assert.equal(me.email, "carol@raxx.test");
    assert.ok(me.roles.includes("console-flag-admin"), JSON.stringify(me));

    // The admin sees the invite in the audit log and ends Carol's session.
    await admin.goto(c.url("/audit?action=invite.create"));
    assert.match(await admin.textContent("table"), /invite\.create/);
    await admin.goto(c.url("/sessions"));
    await admin.click('button[aria-label^="End the session of carol@raxx.test"]');
    await admin.waitForURL(c.url("/sessions"));
    assert.match(await admin.textContent(".flash"), /Session ended/);
    const status = await page.evaluate(async () => (await fetch("/api/v1/me")).status);
    assert.equal(status, 401);
    // The used link says so and what to do, inside the console's layout.
    const again = await page.goto(link);
    assert.equal(again.status(), 404);
    assert.match(await page.textContent("main"), /this invite was already used on .* sign in with your passkey/);
    assert.equal(await page.textContent(".env-pill"), "PROD");
    // Its invite row now names who invited and when it was accepted.
    await admin.goto(c.url("/invites"));
    assert.equal((await admin.textContent("td[data-label='Invited by']")).trim(), "alice@raxx.test");
    assert.match(await admin.textContent("td[data-label='Accepted']"), /^\d{4}-\d\d-\d\d /);
    await ctx.close();
    await adminCtx.close();
  } finally {
    await c.stop();
  }
});
