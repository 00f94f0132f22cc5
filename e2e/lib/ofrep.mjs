// OFREP helpers for the SDK tests: the schemas every OFREP response is checked against
// (crates/web/tests/ofrep/schemas.json, after open-feature/protocol's service/openapi.yaml),
// a fetch that reaches a console by its public host from Node, and flags-file fixtures.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { repoRoot } from "./harness.mjs";

const schemaDoc = JSON.parse(
  fs.readFileSync(path.join(repoRoot, "crates", "web", "tests", "ofrep", "schemas.json"), "utf8"),
);
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ $id: "ofrep", $defs: schemaDoc.$defs });

/** The OFREP operation of a request path (`METHOD /route`), or null. */
export function ofrepOperation(method, pathname) {
  if (pathname === "/ofrep/v1/evaluate/flags") return `${method} /ofrep/v1/evaluate/flags`;
  if (pathname.startsWith("/ofrep/v1/evaluate/flags/")) return `${method} /ofrep/v1/evaluate/flags/{key}`;
  if (pathname === "/ofrep/v1/configuration") return `${method} /ofrep/v1/configuration`;
  return null;
}

/** Throws unless `status` is one the definition lists for the operation and `body` fits its schema. */
export function checkOfrepResponse(method, pathname, status, body) {
  const op = ofrepOperation(method, pathname);
  if (!op) return;
  const statuses = schemaDoc.statuses[op];
  if (!statuses) throw new Error(`${op} is not an OFREP operation`);
  const key = String(status);
  let schema;
  if (key in statuses) schema = statuses[key];
  else if (key in schemaDoc.extensions) schema = schemaDoc.extensions[key];
  else throw new Error(`${op} answered ${status}, which the OFREP definition does not list`);
  if (!schema) return;
  const validate = ajv.getSchema(`ofrep#/$defs/${schema}`);
  if (!validate(body)) {
    throw new Error(
      `${op} ${status}: body does not match OFREP ${schema}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
    );
  }
}

/** The OFREP responses a test saw, each checked as it arrives. */
export class OfrepLog {
  constructor() {
    this.seen = [];
  }
  record(method, pathname, status, body) {
    checkOfrepResponse(method, pathname, status, body);
    this.seen.push({ method, pathname, status, body });
  }
}

/**
 * A fetch for the OFREP providers that connects to 127.0.0.1:port but names the console's
 * public host (Node's resolver does not know `*.localhost`), and checks every response.
 */
export function consoleFetch(con, log) {
  const host = new URL(con.origin).host;
  return async (input, init) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.text();
    const headers = Object.fromEntries(req.headers.entries());
    headers.host = host;
    const { status, resHeaders, text } = await new Promise((resolve, reject) => {
      const r = http.request(
        { host: "127.0.0.1", port: con.port, method: req.method, path: url.pathname + url.search, headers },
        (res) => {
          let chunks = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (chunks += c));
          res.on("end", () => resolve({ status: res.statusCode, resHeaders: res.headers, text: chunks }));
        },
      );
      r.on("error", reject);
      if (body) r.write(body);
      r.end();
    });
    const parsed = text && /json/.test(resHeaders["content-type"] || "") ? JSON.parse(text) : undefined;
    log.record(req.method, url.pathname, status, parsed);
    const h = new Headers();
    for (const [k, v] of Object.entries(resHeaders)) h.set(k, Array.isArray(v) ? v.join(", ") : v);
    return new Response(status === 304 || status === 204 ? null : text, { status, headers: h });
  };
}

export const APP = "raxx-web-staging";

/** A flags file of every type; `theme` serves `themeDefault`, `sample-rate` a float written `1`. */
export function flagsFile(themeDefault = "light") {
  return `app = "${APP}"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[flags.theme]
type = "string"
variants = { light = "light", dark = "dark" }
default = "${themeDefault}"

[flags.upload-limit]
type = "integer"
variants = { small = 10, large = 100 }
default = "large"

[flags.sample-rate]
type = "float"
variants = { all = 1, some = 0.25 }
default = "all"

[flags.banner]
type = "object"
variants = { plain = { text = "Welcome", size = 3 } }
default = "plain"

[flags.legacy-search]
type = "boolean"
variants = { on = true, off = false }
default = "on"
enabled = false
`;
}

/** Apply `text` as the app's flags through the CLI (`raxx-console flags apply`). */
export function applyFlags(con, text) {
  const file = path.join(con.dir, `flags-${Date.now()}-${Math.random().toString(16).slice(2)}.toml`);
  fs.writeFileSync(file, text);
  return con.cli("flags", "apply", file);
}

/** A new client key of the app (the secret is the CLI's last line). */
export function clientKey(con) {
  return con.cli("keys", "create", "--app", APP, "--kind", "client").trim().split("\n").pop();
}
