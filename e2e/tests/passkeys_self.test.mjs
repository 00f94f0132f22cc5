// "Your passkeys" (SPEC §3, issue 19 item 2) with the DevTools virtual authenticator: add a
// backup passkey after confirming with the current one, rename, remove; the last passkey
// cannot be removed by its owner; the next sign-in shows what changed.
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

/** The passkey rows of the page: [{ id, name }]. */
async function rows(page) {
  return page.$$eval("#passkeys tbody tr", (trs) =>
    trs.map((tr) => ({ id: tr.dataset.passkeyId, name: tr.querySelector(".pk-name").textContent.trim() })),
  );
}

test("add a backup passkey, rename and remove; the last one stays; the next sign-in says what changed", async () => {
  const c = await startConsole("prod");
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const laptop = await addVirtualAuthenticator(page);

    // Alice's first passkey, through bootstrap enrolment.
    await page.goto(c.url("/login"));
    await page.fill("#reg-email", "alice@raxx.test");
    await page.fill("#reg-name", "Alice");
    await page.fill("#reg-code", ENROL_CODE);
    await page.click("form[data-passkey=register] button[type=submit]");
    await page.waitForURL(c.url("/"));

    await page.click("nav >> text=Passkeys");
    await page.waitForURL(c.url("/passkeys"));
    assert.equal(await page.textContent("h1"), "Your passkeys");
    let list = await rows(page);
    assert.equal(list.length, 1);
    // The only passkey: no remove control, and the API refuses with a clear 409.
    assert.equal(await page.locator('button[aria-label^="Remove the passkey"]').count(), 0);
    assert.match(await page.textContent("#passkeys"), /your only passkey/);
    const refused = await page.evaluate(async (id) => {
      const me = await (await fetch("/api/v1/me")).json();
      const r = await fetch(`/api/v1/passkeys/${id}`, {
        method: "DELETE",
        headers: { "X-CSRF-Token": me.csrf_token, "X-Console-Env": me.env },
      });
      return { status: r.status, body: await r.json() };
    }, list[0].id);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, "last_passkey");
    assert.match(refused.body.message, /only passkey/);
    // Without a fresh confirmation there is no registration form.
    assert.equal(await page.locator("form[data-passkey-add]").count(), 0);

    // Step 1: confirm with the current passkey.
    await page.click("form[data-passkey-stepup] button[type=submit]");
    await page.locator("#stepped-up").waitFor();
    // Step 2: the backup lives on another device (a second authenticator).
    await laptop.cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: laptop.authenticatorId });
    await addVirtualAuthenticator(page);
    await page.fill("#pk-new-name", "backup key");
    await page.click("form[data-passkey-add] button[type=submit]");
    await page.locator("#passkeys tbody tr >> nth=1").waitFor();
    list = await rows(page);
    assert.deepEqual(
      list.map((r) => r.name),
      ["passkey", "backup key"],
    );
    await screenshot(page, "prod-passkeys");

    // Rename the first one.
    const first = list[0].id;
    await page.fill(`#rename-${first}`, "old laptop");
    await page.click(`tr[data-passkey-id="${first}"] form[action$="/rename"] button`);
    await page.locator(".flash").waitFor();
    assert.match(await page.textContent(".flash"), /renamed to “old laptop”/);

    // Remove it (the laptop is gone); the backup is now the last one and stays.
    await page.click(`tr[data-passkey-id="${first}"] summary`);
    await page.click('button[aria-label="Remove the passkey old laptop"]');
    await page.locator(".flash").waitFor();
    assert.match(await page.textContent(".flash"), /“old laptop” removed/);
    list = await rows(page);
    assert.deepEqual(
      list.map((r) => r.name),
      ["backup key"],
    );
    assert.equal(await page.locator('button[aria-label^="Remove the passkey"]').count(), 0);

    // Sign out and back in with the backup: the dashboard says what changed, until dismissed.
    await page.click("text=Sign out");
    await page.waitForURL(c.url("/login"));
    await page.fill("#login-email", "alice@raxx.test");
    await page.click("form[data-passkey=login] button[type=submit]");
    await page.waitForURL(c.url("/"));
    const notices = await page.textContent("#passkey-notices");
    assert.match(notices, /A new passkey “backup key” was added to your account on \d{4}-\d\d-\d\d/);
    assert.match(notices, /A passkey “old laptop” was removed from your account on/);
    await screenshot(page, "prod-passkey-notices");
    await page.click("#passkey-notices button[type=submit]");
    await page.waitForURL(c.url("/"));
    assert.equal(await page.locator("#passkey-notices").count(), 0);
    await ctx.close();
  } finally {
    await c.stop();
  }
});
