// Page checks the crawl runs on every page it visits: axe-core (WCAG 2.1 AA) in the
// page, in light and dark, and html-validate on the HTML the server sent.
import fs from "node:fs";
import { createRequire } from "node:module";
import { HtmlValidate } from "html-validate";

const require = createRequire(import.meta.url);
// Evaluated through DevTools (page.evaluate), so the console's CSP (script-src 'self')
// stays on and is not bypassed for the check.
const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
export const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/** axe-core's violations on the page as it is now, one line each ("" when none). */
export async function axeViolations(page) {
  const loaded = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }),
    WCAG_TAGS,
  );
  return result.violations.flatMap((v) =>
    v.nodes.map((n) => `${v.id}: ${n.target.join(" ")} — ${n.failureSummary?.split("\n").slice(1, 2).join("").trim() || v.help}`),
  );
}

/** axe in both colour schemes; restores light. */
export async function axeBothThemes(page) {
  const out = [];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const v of await axeViolations(page)) out.push(`[${scheme}] ${v}`);
  }
  await page.emulateMedia({ colorScheme: "light" });
  return out;
}

const validator = new HtmlValidate({
  extends: ["html-validate:standard", "html-validate:a11y"],
  rules: {
    // The server writes `<!doctype html>` in lower case, as the HTML standard allows.
    "doctype-style": "off",
  },
});

/** html-validate's errors for an HTML document, one line each. */
export async function htmlErrors(html) {
  const report = await validator.validateString(html);
  return report.results.flatMap((r) => r.messages.map((m) => `${m.ruleId} at ${m.line}:${m.column}: ${m.message}`));
}

/** Actions (buttons, links, inputs, summaries) that stick out of the viewport sideways. */
export async function offscreenActions(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary")) {
      // Not rendered: display none, visibility hidden, or inside a closed <details>.
      if (!el.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true })) continue;
      const inClosed = el.closest("details:not([open])");
      if (inClosed && !(el.tagName === "SUMMARY" && el.parentElement === inClosed)) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (el.closest(".skip")) continue; // the skip link sits off-screen until focused
      if (r.left < -1 || r.right > width + 1) {
        const name = (el.textContent || el.getAttribute("aria-label") || el.name || el.tagName).trim().slice(0, 40);
        out.push(`${el.tagName.toLowerCase()} "${name}" spans ${Math.round(r.left)}..${Math.round(r.right)} of ${width}`);
      }
    }
    if (document.documentElement.scrollWidth > width + 1) out.push(`the page scrolls sideways (${document.documentElement.scrollWidth} > ${width})`);
    return out;
  });
}
