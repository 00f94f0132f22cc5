// Real raxx-console servers (the built binary, `serve --config`) and Debian's Chromium
// driven by playwright-core. No browser download: executablePath is the system Chromium.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(repoRoot, "target");
export const BIN = process.env.RAXX_BIN || path.join(targetDir, "debug", "raxx-console");
export const CHROMIUM = process.env.RAXX_CHROMIUM || "/usr/bin/chromium";
export const SHOTS = path.join(repoRoot, "e2e", "screenshots");
export const ENROL_CODE = "e2e-enrol-code";

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitHealthy(url, proc, logFile) {
  for (let i = 0; i < 150; i++) {
    if (proc.exitCode !== null) {
      throw new Error(`raxx-console exited (${proc.exitCode}):\n${fs.readFileSync(logFile, "utf8")}`);
    }
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`raxx-console did not become healthy:\n${fs.readFileSync(logFile, "utf8")}`);
}

/** A console of `env` with its own SQLite database; `extra` is appended to its config. */
export async function startConsole(env, extra = "", { dir, port } = {}) {
  dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), `raxx-e2e-${env}-`));
  port = port || (await freePort());
  const origin = `http://${env}.localhost:${port}`;
  const configPath = path.join(dir, "console.toml");
  fs.writeFileSync(
    configPath,
    `public_url = "${origin}"
listen = "127.0.0.1:${port}"
database_url = "sqlite://${dir}/console.db"
admin_emails = ["alice@raxx.test", "bob@raxx.test"]
admin_enrol_code = "${ENROL_CODE}"
${extra}
`,
  );
  const logFile = path.join(dir, "serve.log");
  const log = fs.openSync(logFile, "a");
  const proc = spawn(BIN, ["serve", "--config", configPath], { stdio: ["ignore", log, log] });
  // Probe through loopback (Node's resolver may not know *.localhost).
  await waitHealthy(`http://127.0.0.1:${port}`, proc, logFile);
  return {
    env,
    origin,
    port,
    dir,
    configPath,
    url: (p) => `${origin}${p}`,
    loginLink(email) {
      const out = execFileSync(BIN, ["login-link", "--config", configPath, "--email", email], { encoding: "utf8" });
      return out.trim().split("\n").pop();
    },
    /** Sign `email` in on `page` as a person would: open a login link, confirm on its page. */
    async signIn(page, email) {
      await page.goto(this.loginLink(email));
      await page.click("form[action='/auth/link'] button[type=submit]");
      await page.waitForURL(`${origin}/`);
    },
    cli(...args) {
      return execFileSync(BIN, [...args, "--config", configPath], { encoding: "utf8" });
    },
    async stop() {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await done;
      }
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The DevTools WebAuthn virtual authenticator: a platform passkey that verifies the user. */
export async function addVirtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

export async function screenshot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Route patterns of a class from `raxx-console routes` (the manifest as a table). */
export function manifestRoutes() {
  const out = execFileSync(BIN, ["routes"], { encoding: "utf8" });
  return out
    .trim()
    .split("\n")
    .slice(1)
    .map((line) => line.split(/\s{2,}/))
    .map(([method, p, cls, resource]) => ({
      method,
      path: p,
      cls,
      resource,
      re: new RegExp(`^${p.replace(/\{[^}]+\}/g, "[^/?#]+")}$`),
    }));
}
