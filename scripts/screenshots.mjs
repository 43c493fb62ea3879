// Screenshots of every page usher itself serves, taken by a real headless
// Chromium driven with playwright-core (no browser download: Debian's
// /usr/bin/chromium). Run through scripts/screenshots.sh, which starts the
// usher instances this visits; writes docs/pages/*.png.
//
//   node scripts/screenshots.mjs BASE DEAD_BASE OUT_DIR
//
// BASE: an usher in front of an app with /slow (longer than
// upstream.timeout) and a /closed/** rule nobody may pass; DEAD_BASE: an
// usher whose upstream is down.
import { createRequire } from "node:module";

// playwright-core lives under target/test-node (NODE_PATH), which ES
// modules do not search: load it as CommonJS from there.
const require = createRequire(`${process.env.NODE_PATH}/`);
const { chromium } = require("playwright-core");

const [base, dead, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
const shot = async (page, name) => {
  await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  console.log(`${name}: ${page.url()}`);
};
const fresh = async () => (await browser.newContext({ viewport: { width: 480, height: 720 } })).newPage();
const signIn = async (page, user, password) => {
  await page.goto(`${base}/.usher/login?rd=%2F`);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForLoadState(), page.click("button[type=submit]")]);
};

let page = await fresh();
await signIn(page, "bob", "builder");
await page.goto(`${base}/closed/x`);
await shot(page, "forbidden");
await page.goto(`${base}/.usher/login?rd=%2F`);
await shot(page, "already-signed-in");
await page.goto(`${base}/.usher/logout?rd=%2F`);
await shot(page, "sign-out");
// Not shot: the cross-site refusal. A real cross-site form post carries no
// SameSite=Lax cookie, so the guard (which acts only on requests that do)
// never shows its page in a browser with default settings; Chromium lets a
// script override neither Origin nor Sec-Fetch-Site. pages.rs tests it.
await page.goto(`${base}/slow`);
await shot(page, "gateway-timeout");

page = await fresh();
await page.goto(`${base}/.usher/login?rd=%2F`);
await shot(page, "sign-in");
await signIn(page, "alice", "wrong");
await shot(page, "wrong-password");
// The per-client limit is 3 failures a minute in the config the script
// uses (so this comes after bob's pages: they share one client address).
await signIn(page, "alice", "wrong");
await signIn(page, "alice", "wrong");
await signIn(page, "alice", "wrong");
await shot(page, "rate-limited");

page = await fresh();
await page.goto(`${dead}/x`);
await shot(page, "bad-gateway");

// Plain HTTP to a host that is not loopback, with Secure cookies: the
// sign-in page explains why signing in would fail. (Host resolved to the
// same loopback address by Chromium's resolver rules.)
await browser.close();
const insecure = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", `--host-resolver-rules=MAP myapp.test 127.0.0.1`],
});
const port = new URL(base).port;
page = await (await insecure.newContext({ viewport: { width: 480, height: 720 } })).newPage();
await page.goto(`http://myapp.test:${port}/.usher/login`);
await page.screenshot({ path: `${out}/plain-http-warning.png`, fullPage: true });
console.log(`plain-http-warning: ${page.url()}`);
await insecure.close();
