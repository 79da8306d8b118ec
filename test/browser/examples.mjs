// An example backend (examples/node, examples/python) in a real browser: Debian's Chromium driven
// by playwright-core. TestExamples (cmd/herald/examples_test.go) starts Herald with auth on and
// the example, then runs this script.
//
//   APP_URL          the example app, e.g. http://127.0.0.1:3000 (in Herald's --cors-origins)
//   HERALD_URL       Herald, e.g. http://127.0.0.1:8080: another port of the same host
//   EXAMPLE          the example's name, for screenshots
//   TOKEN_TTL        the example's token lifetime in seconds (short, so the test sees a refresh)
//   JWT_ISSUER, JWT_AUDIENCE   what the tokens' iss and aud must be (Herald checks them too)
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default ./screenshots)
//
// Each step prints one line; the first failure prints why, saves a screenshot of every page and
// exits 1.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const app = process.env.APP_URL;
const herald = process.env.HERALD_URL;
const name = process.env.EXAMPLE || "example";
const ttl = Number(process.env.TOKEN_TTL);
const shots = process.env.SCREENSHOT_DIR || "screenshots";
if (!app || !herald || !ttl) {
  console.error("APP_URL, HERALD_URL and TOKEN_TTL must be set");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

function log(msg) { console.log(`step: ${msg}`); }

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const errors = [];
const pages = [];

// newPage opens a page whose errors, and any request <herald-inbox> saw refused, fail the test.
async function newPage(context, who) {
  const page = await context.newPage();
  page.on("pageerror", (err) => errors.push(`${who}: ${err.message}`));
  page.on("console", (msg) => { if (msg.type() === "error") console.log(`${who} console: ${msg.text()}`); });
  await page.addInitScript(() => {
    document.addEventListener("herald-state", (e) => {
      if (e.detail.error) window.heraldErrors = [...(window.heraldErrors || []), `${e.detail.error.status} ${e.detail.error.message}`];
    });
  });
  page.requests = []; // [path, seconds since the epoch] of the refreshes and streams opened
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path === "/session/refresh" || path === "/v1/stream") page.requests.push([path, Date.now() / 1000]);
  });
  pages.push({ page, who });
  return page;
}

async function signIn(page, user) {
  await page.goto(app + "/");
  await page.fill("#login input[name=user]", user);
  await page.click("#login button");
  await page.waitForSelector("#who", { timeout: 5000 });
  await waitConnection(page, "live", 10000);
}

async function waitConnection(page, want, timeout) {
  await page.waitForFunction((want) => document.querySelector("herald-inbox")?.connection === want, want, { timeout });
}

async function waitBadge(page, want, timeout) {
  await page.waitForFunction((want) => {
    const b = document.querySelector("herald-inbox")?.shadowRoot.querySelector(".badge");
    return !!b && (b.hidden ? 0 : Number(b.textContent)) === want;
  }, want, { timeout });
}

// comment has page's user comment on author's post through the example's form (its publish).
async function comment(page, author, text) {
  await page.fill("#comment input[name=to]", author);
  await page.fill("#comment input[name=text]", text);
  await page.click("#comment button");
  await page.waitForSelector(`#notice:text("Notified ${author}.")`, { timeout: 5000 });
}

async function heraldCookie(context, url) {
  return (await context.cookies(url)).find((c) => c.name === "herald_token");
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url"));

const aliceContext = await browser.newContext({ viewport: { width: 1000, height: 700 } });
const bobContext = await browser.newContext();

try {
  // alice signs in: the example sets the cookie, and <herald-inbox> goes live with it.
  const alice = await newPage(aliceContext, "alice");
  await signIn(alice, "alice");
  const c = await heraldCookie(aliceContext, app);
  if (!c) throw new Error("no herald_token cookie after signing in");
  const tok = claims(c.value);
  const problems = [];
  if (!c.httpOnly) problems.push("not HttpOnly");
  if (c.sameSite !== "Strict") problems.push(`SameSite=${c.sameSite}`);
  if (c.path !== "/") problems.push(`Path=${c.path}`);
  if (c.secure) problems.push("Secure on an http page");
  if (c.domain !== new URL(app).hostname) problems.push(`domain ${c.domain}`);
  if (tok.sub !== "alice") problems.push(`sub ${tok.sub}`);
  if (tok.exp - tok.iat !== ttl) problems.push(`the token lives ${tok.exp - tok.iat} s, not ${ttl}`);
  if (Math.abs(c.expires - tok.exp) > 2) problems.push(`the cookie expires at ${c.expires}, the token at ${tok.exp}`);
  if ((process.env.JWT_ISSUER || undefined) !== tok.iss) problems.push(`iss ${tok.iss}`);
  const aud = [].concat(tok.aud ?? []), wantAud = process.env.JWT_AUDIENCE ? [process.env.JWT_AUDIENCE] : [];
  if (JSON.stringify(aud) !== JSON.stringify(wantAud)) problems.push(`aud ${tok.aud}`);
  if (problems.length) throw new Error(`the cookie: ${problems.join(", ")}`);
  if (!(await heraldCookie(aliceContext, herald))) throw new Error("the cookie is not sent to Herald's port");
  if ((await alice.evaluate(() => document.cookie)).includes("herald_token")) throw new Error("the page's script can read the cookie");
  log(`alice signed in, live; cookie HttpOnly, SameSite=Strict, Path=/, expires with the token (${ttl} s), sent to Herald's port too`);

  // bob comments on alice's post: the example publishes with its key, alice's bell shows it.
  const bob = await newPage(bobContext, "bob");
  await signIn(bob, "bob");
  const sent = Date.now();
  await comment(bob, "alice", "Nice post");
  await waitBadge(alice, 1, 5000);
  log(`bob commented through the example; alice's badge shows 1 ${Date.now() - sent} ms after his click`);
  await alice.click("herald-inbox .bell");
  // The title and the body, as the example publishes them (data.text stays for apps that read data).
  const item = alice.locator("herald-inbox li.item", { hasText: "bob commented on your post" }).filter({ hasText: "Nice post" });
  await item.waitFor({ timeout: 5000 });
  await waitBadge(alice, 0, 5000); // opening the panel marks it seen: a cookie-authenticated POST across origins
  await alice.screenshot({ path: join(shots, `example-${name}.png`) });
  log("alice's panel shows it; opening it reset the badge (a cross-origin POST with the cookie)");

  // The token's life runs out: the page renewed the cookie on its timer, Herald ended the stream
  // the first token opened (herald.expired), and the element called the refresh hook before it
  // opened the next one.
  await alice.waitForFunction((exp) => Date.now() / 1000 > exp + 1, tok.exp, { timeout: (ttl + 5) * 1000 });
  await waitConnection(alice, "live", 10000);
  const renewed = await heraldCookie(aliceContext, app);
  if (!renewed || renewed.value === c.value || claims(renewed.value).exp <= tok.exp) throw new Error("the cookie was not renewed");
  const timed = alice.requests.filter(([p, at]) => p === "/session/refresh" && at < tok.exp);
  const reopened = alice.requests.findIndex(([p, at]) => p === "/v1/stream" && at >= tok.exp);
  const hooked = alice.requests.slice(0, Math.max(reopened, 0)).some(([p, at]) => p === "/session/refresh" && at >= tok.exp);
  if (!timed.length || reopened < 0 || !hooked) {
    throw new Error(`want a timed refresh before the expiry, then a refresh and a new stream after it: ${JSON.stringify(alice.requests.map(([p, at]) => [p, +(at - tok.exp).toFixed(1)]))}`);
  }
  await comment(bob, "alice", "After the refresh");
  await alice.locator("herald-inbox li.item", { hasText: "After the refresh" }).waitFor({ timeout: 5000 });
  log("past the first token's expiry: renewed on the page's timer before it, by the refresh hook after herald.expired; live again, the next comment arrives");

  // SameSite=Strict does not get in the way when alice arrives from another site (a link in an
  // email, say): the navigation does not carry the cookie, but Herald never needs it on one; the
  // page's own requests to Herald are same-site.
  const elsewhere = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><title>mail</title><a id="go" href="${app}/">open the app</a>`);
  });
  await new Promise((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
  try {
    const mail = await newPage(aliceContext, "alice-from-mail");
    await mail.goto(`http://localhost:${elsewhere.address().port}/`);
    await mail.click("#go");
    await mail.waitForSelector("#who", { timeout: 5000 });
    await waitConnection(mail, "live", 10000);
    await comment(bob, "alice", "Seen from the mail link");
    await mail.locator("herald-inbox").evaluate((el) => el.open());
    await mail.locator("herald-inbox li.item", { hasText: "Seen from the mail link" }).waitFor({ timeout: 5000 });
    await mail.close();
  } finally {
    elsewhere.close();
  }
  log("arriving from another site (localhost → 127.0.0.1): signed in, live, notified");

  // bob signs out: both cookies go.
  await bob.click("#sign-out");
  await bob.waitForSelector("#login", { timeout: 5000 });
  const left = (await bobContext.cookies()).map((k) => k.name);
  if (left.length) throw new Error(`cookies left after signing out: ${left.join(", ")}`);
  log("bob signed out: no cookies left");

  for (const { page, who } of pages) {
    if (page.isClosed()) continue;
    const refused = await page.evaluate(() => window.heraldErrors || []);
    if (refused.length) throw new Error(`${who}'s <herald-inbox> saw refusals: ${refused.join("; ")}`);
  }
  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  console.log("ok");
} catch (err) {
  console.log(`FAIL: ${err.message}`);
  for (const { page, who } of pages) {
    if (!page.isClosed()) await page.screenshot({ path: join(shots, `failure-example-${name}-${who}.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
