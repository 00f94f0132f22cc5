// The break-glass login link in a browser (issue 19): opening it shows a confirmation page
// that changes nothing; its button signs in and lands on the dashboard; reopening the used
// link says it was used.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, screenshot, startConsole } from "../lib/harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

for (const env of ["staging", "prod"]) {
  test(`a login link on ${env} asks before signing in, then works once`, async () => {
    const c = await startConsole(env);
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const link = c.loginLink("alice@raxx.test");
      const pillText = env === "prod" ? "PROD" : "STAGING";

      // Opening it (twice, like a previewer and then the person) changes nothing.
      for (let i = 0; i < 2; i++) {
        const resp = await page.goto(link);
        assert.equal(resp.status(), 200);
        assert.equal(await page.textContent("h1"), `Sign in as alice@raxx.test on ${pillText}`);
      }
      assert.equal((await ctx.cookies()).filter((k) => k.name.startsWith("raxx_console")).length, 0, "no session yet");
      await screenshot(page, `${env}-login-link-confirm`);

      // The button signs in and lands on the dashboard.
      await page.click(`button:has-text("Sign in as alice@raxx.test on ${pillText}")`);
      await page.waitForURL(c.url("/"));
      assert.equal(await page.getAttribute("header .op", "title"), "alice@raxx.test");
      assert.equal((await ctx.cookies()).filter((k) => k.name.startsWith("raxx_console")).length, 1);

      // Reopened, in a fresh browser context: the page says it was used and offers no button.
      const other = await (await browser.newContext()).newPage();
      const again = await other.goto(link);
      assert.equal(again.status(), 410);
      assert.equal(await other.textContent("h1"), "This login link cannot be used");
      assert.match(await other.textContent("main"), /used already/);
      assert.equal(await other.locator("form[action='/auth/link']").count(), 0);
      await screenshot(other, `${env}-login-link-used`);
      await other.context().close();
      await ctx.close();
    } finally {
      await c.stop();
    }
  });
}
