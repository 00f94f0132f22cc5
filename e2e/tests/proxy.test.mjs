// Passkey registration and sign-in in Chromium through Debian's nginx terminating TLS with a
// throwaway certificate (issue 13, docs/deploy.md): https public_url, the __Host- cookie,
// HSTS, and the client address nginx saw in the audit row. Chromium trusts the throwaway
// certificate by its public key (--ignore-certificate-errors-spki-list), which keeps the
// page a secure context without certificate errors, as WebAuthn requires.
// Without nginx/openssl: skipped with a message; under CI=true that is a failure.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { addVirtualAuthenticator, BIN, CHROMIUM, ENROL_CODE, freePort } from "../lib/harness.mjs";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => fs.existsSync(p));
const OPENSSL = ["/usr/bin/openssl"].find((p) => fs.existsSync(p));
const missing = !NGINX ? "nginx" : !OPENSSL ? "openssl" : null;
if (missing && process.env.CI === "true") {
  throw new Error(`${missing} is not installed (apt-get install ${missing}): under CI=true the proxy test must run`);
}
if (missing) console.error(`!! ${missing} not found: skipping the reverse-proxy browser test (apt-get install ${missing})`);

const HOST = "staging.localhost";
let dir, nginx, consoleProc, browser, origin, configPath;

function openssl(...args) {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function spkiHash(cert) {
  return execFileSync(
    "sh",
    ["-c", `openssl x509 -in '${cert}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`],
    { encoding: "utf8" },
  ).trim();
}

async function waitFor(probe, what, logFile) {
  for (let i = 0; i < 200; i++) {
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start:\n${logFile ? fs.readFileSync(logFile, "utf8") : ""}`);
}

before(async () => {
  if (missing) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-e2e-proxy-"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=raxx throwaway CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", "proxy.key", "-out", "proxy.csr", "-subj", `/CN=${HOST}`);
  fs.writeFileSync(path.join(dir, "proxy.ext"),
    `subjectAltName=DNS:${HOST}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl("x509", "-req", "-days", "2", "-in", "proxy.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "7",
    "-out", "proxy.crt", "-extfile", "proxy.ext");

  const consolePort = await freePort();
  const proxyPort = await freePort();
  origin = `https://${HOST}:${proxyPort}`;
  configPath = path.join(dir, "console.toml");
  fs.writeFileSync(configPath, `public_url = "${origin}"
listen = "127.0.0.1:${consolePort}"
database_url = "sqlite://${dir}/console.db"
admin_emails = ["alice@raxx.test"]
admin_enrol_code = "${ENROL_CODE}"
trusted_proxies = ["127.0.0.1/32"]
`);
  const ng = path.join(dir, "nginx");
  fs.mkdirSync(ng);
  fs.writeFileSync(path.join(ng, "nginx.conf"), `daemon off;
master_process off;
pid ${ng}/nginx.pid;
error_log ${ng}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${ng}/body;
  proxy_temp_path ${ng}/proxy;
  fastcgi_temp_path ${ng}/fastcgi;
  uwsgi_temp_path ${ng}/uwsgi;
  scgi_temp_path ${ng}/scgi;
  server {
    listen 127.0.0.1:${proxyPort} ssl;
    server_name ${HOST};
    ssl_certificate ${dir}/proxy.crt;
    ssl_certificate_key ${dir}/proxy.key;
    location / {
      proxy_pass http://127.0.0.1:${consolePort};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`);
  nginx = spawn(NGINX, ["-p", ng, "-e", path.join(ng, "error.log"), "-c", path.join(ng, "nginx.conf")], { stdio: "ignore" });
  const logFile = path.join(dir, "serve.log");
  const log = fs.openSync(logFile, "a");
  consoleProc = spawn(BIN, ["serve", "--config", configPath], { stdio: ["ignore", log, log] });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${consolePort}/readyz`)).ok, "raxx-console", logFile);
  await waitFor(
    () =>
      new Promise((resolve) => {
        const s = net.connect(proxyPort, "127.0.0.1", () => {
          s.end();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      }),
    "nginx",
    path.join(ng, "error.log"),
  );

  browser = await chromium.launch({
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
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
      `--ignore-certificate-errors-spki-list=${spkiHash(path.join(dir, "proxy.crt"))}`,
    ],
  });
});

after(async () => {
  await browser?.close();
  for (const p of [consoleProc, nginx]) {
    if (p && p.exitCode === null) {
      const done = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await done;
    }
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("passkey registration and sign-in through nginx terminating TLS", { skip: missing ? `${missing} missing` : false }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await addVirtualAuthenticator(page);
  const login = await page.goto(`${origin}/login`);
  assert.equal(login.status(), 200);
  assert.equal(login.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
  assert.equal(await page.evaluate(() => window.isSecureContext), true);

  await page.fill("#reg-email", "alice@raxx.test");
  await page.fill("#reg-name", "Alice");
  await page.fill("#reg-code", ENROL_CODE);
  await page.click("form[data-passkey=register] button[type=submit]");
  await page.waitForURL(`${origin}/`);
  assert.equal(await page.textContent("h1"), "Dashboard");

  const cookies = await ctx.cookies(origin);
  const session = cookies.find((c) => c.name === "__Host-raxx_console");
  assert.ok(session, JSON.stringify(cookies));
  assert.equal(session.secure, true);
  assert.equal(session.path, "/");
  assert.equal(session.domain, HOST); // host-only: no Domain attribute

  // Sign out, then sign in with the passkey just made, still through the proxy.
  await page.click("text=Sign out");
  await page.waitForURL(`${origin}/login`);
  await page.fill("#login-email", "alice@raxx.test");
  await page.click("form[data-passkey=login] button[type=submit]");
  await page.waitForURL(`${origin}/`);
  const me = await page.evaluate(async () => (await fetch("/api/v1/me")).json());
  assert.equal(me.email, "alice@raxx.test");
  await ctx.close();

  // The audit rows of both ceremonies name the address nginx saw (Chromium connects from
  // 127.0.0.1, nginx's own address is trusted, so the console walks X-Forwarded-For and
  // finds 127.0.0.1 as the left-most, all-trusted hop). Distinct client addresses, forged
  // headers and request ids: crates/cli/tests/it/deploy_proxy.rs.
  const rows = execFileSync(BIN, ["audit", "export", "--config", configPath], { encoding: "utf8" })
    .trim().split("\n").map((l) => JSON.parse(l));
  const signIns = rows.filter((r) => r.action.startsWith("auth.") && r.outcome === "allowed");
  assert.ok(signIns.length >= 2, JSON.stringify(rows.map((r) => r.action)));
  for (const r of signIns) {
    assert.equal(r.ip, "127.0.0.1", JSON.stringify(r));
  }
});
