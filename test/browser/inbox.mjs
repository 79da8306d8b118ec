// The demo inbox, and herald.js on its own, in a real browser: Debian's Chromium driven by
// playwright-core (never a downloaded browser). TestBrowser (cmd/herald/browser_test.go) starts
// Herald and runs this script; it asks the test to restart the server by printing "restart" and
// waits for "restarted" on stdin.
//
//   HERALD_URL       the server, e.g. http://127.0.0.1:8080
//   MODE             dev (the server runs without auth and --max-connections-per-user 2; the
//                    default) or token
//   HERALD_TOKEN     token mode: alice's subscriber token, pasted into the page
//   HERALD_SECRET    token mode: the server's HS256 secret, to mint more tokens (short-lived, bob's)
//   HERALD_KEY       token mode: a publisher API key
//   PAGE_ADDR        token mode: host:port for another origin's page (in the server's --cors-origins)
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default ./screenshots)
//
// Each step prints one line; the first failure prints why, saves a screenshot of every page and
// exits 1.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.HERALD_URL;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
if (!base) {
  console.error("HERALD_URL is not set");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

function log(msg) { console.log(`step: ${msg}`); }

const mode = process.env.MODE || "dev";

// publish posts body to the API (path: /v1/notifications/batch for a batch) and returns the ids.
async function publish(body, path = "/v1/notifications") {
  const headers = { "Content-Type": "application/json" };
  if (process.env.HERALD_KEY) headers.Authorization = "Bearer " + process.env.HERALD_KEY;
  const resp = await fetch(base + path, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  if (resp.status !== 201) throw new Error(`publish: HTTP ${resp.status} ${await resp.text()}`);
  return (await resp.json()).notifications;
}

// mint makes an HS256 subscriber token for user, valid for ttl seconds (negative: expired).
function mint(user, ttl) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const signed = part({ alg: "HS256", typ: "JWT" }) + "." + part({ sub: user, iat: now, exp: now + ttl });
  return signed + "." + createHmac("sha256", process.env.HERALD_SECRET).update(signed).digest("base64url");
}

// restart has the test kill the server (kill -9) and start it again at the same address.
async function restart() {
  console.log("restart");
  const reply = await lines.next();
  if (reply.value !== "restarted") throw new Error(`expected "restarted" on stdin, got ${JSON.stringify(reply.value)}`);
}

// badge returns what a tab's badge shows: its number, or 0 when hidden. The page's bell is the
// <herald-inbox> element; its parts are in its (open) shadow root, which Playwright's CSS
// selectors pierce.
async function badge(page) {
  return page.evaluate(() => {
    const b = document.querySelector("herald-inbox").shadowRoot.querySelector(".badge");
    return b.hidden ? 0 : Number(b.textContent);
  });
}

async function waitBadge(page, want, timeout) {
  await page.waitForFunction((want) => {
    const b = document.querySelector("herald-inbox")?.shadowRoot.querySelector(".badge");
    return !!b && (b.hidden ? 0 : Number(b.textContent)) === want;
  }, want, { timeout });
}

const item = (id, more = "") => `herald-inbox li.item${more}[data-id="${id}"]`;

// waitRead returns the response to the page's POST .../read of notification id; call it before
// the click that sends it.
function waitRead(page, id) {
  return page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === `/v1/notifications/${id}/read`, { timeout: 5000 });
}

// holdStreams holds every request for a stream (GET /v1/stream) the pages of context make from
// now on, until release lets them through, and the next ones straight away.
async function holdStreams(context) {
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  let count = 0;
  const isStream = (url) => url.pathname === "/v1/stream";
  const handler = async (route) => {
    count++;
    await released;
    await route.continue().catch(() => {}); // the page may have given the request up meanwhile
  };
  await context.route(isStream, handler);
  return {
    count: () => count,
    release: async () => {
      release(); // first: the held handlers end, and one that comes meanwhile passes at once
      await context.unroute(isStream, handler);
    },
  };
}

async function waitState(page, want, timeout) {
  await page.waitForFunction((want) => document.getElementById("state").dataset.state === want, want, { timeout });
}

async function waitItem(page, id, timeout) {
  await page.waitForSelector(item(id), { state: "attached", timeout });
}

async function hasItem(page, id) {
  return (await page.$(item(id))) !== null;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const errors = [];
const pages = []; // every page opened, for the failure screenshots

// newPage opens a page in context whose errors fail the test and whose console errors are
// printed and kept (page.consoleErrors).
async function newPage(context, name) {
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on("pageerror", (err) => errors.push(`${name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    page.consoleErrors.push(msg.text());
    console.log(`${name} console: ${msg.text()}`);
  });
  pages.push({ page, name });
  return page;
}

const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
const tabs = [await newPage(context, "tab1"), await newPage(context, "tab2")];

try {
  if (mode === "token") {
    await tokenMode();
    await libraryQueryToken();
  } else {
    await devMode();
    await libraryReconnects();
  }
  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  console.log("ok");
} catch (err) {
  console.log(`FAIL: ${err.message}`);
  for (const { page, name } of pages) {
    await page.screenshot({ path: join(shots, `failure-${mode}-${name}.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  stdin.close();
  await browser.close();
}

async function devMode() {
  // 1. alice opens the page in two tabs: in the first she picks her name, the second has it in
  // the URL (as the first does now).
  await tabs[0].goto(base + "/");
  if (!(await tabs[0].isVisible("#dev-login")) || (await tabs[0].isVisible("#token-login"))) {
    throw new Error("in dev mode the page should offer the user picker, not the token form");
  }
  await tabs[0].fill("#user", "alice");
  await tabs[0].click("#dev-login button[type=submit]");
  if (!tabs[0].url().endsWith("?user=alice")) throw new Error(`after login the URL is ${tabs[0].url()}`);
  await tabs[1].goto(base + "/?user=alice");
  for (const page of tabs) await waitState(page, "live", 10000);
  log("two tabs live as alice");

  // 2. A notification published through the API appears in both within a second; the badge counts it.
  const [first] = await publish({ to: ["alice"], type: "comment", data: { text: "Bob commented on your post" } });
  const t0 = performance.now();
  await Promise.all(tabs.map((page) => page.waitForSelector(item(first.id, ".unread"), { state: "attached", timeout: 1000 })));
  const elapsed = performance.now() - t0;
  for (const page of tabs) await waitBadge(page, 1, 1000);
  await tabs[0].waitForSelector("herald-inbox .toast", { timeout: 1000 });
  if (!/^\(1\) /.test(await tabs[0].title())) throw new Error(`the tab's title has no count: ${await tabs[0].title()}`);
  log(`notification ${first.id} in both tabs ${elapsed.toFixed(0)} ms after its 201; badges 1, title "${await tabs[0].title()}"`);

  // 3. Opening the panel in one tab sees what it shows: both badges reset within a second, and
  // the item stays unread until it is clicked, which marks it read in the other tab too.
  await stateInBoth("seen", tabs[0], "/seen", () => tabs[0].click("herald-inbox .bell"), () => waitBadge(tabs[1], 0, 1000));
  if (!(await tabs[1].$(item(first.id, ".unread")))) throw new Error("opening the panel marked the item read");
  await stateInBoth("read", tabs[0], "/read", () => tabs[0].click(item(first.id) + " .main"),
    () => tabs[1].waitForSelector(item(first.id, ":not(.unread)"), { state: "attached", timeout: 1000 }));
  await tabs[0].keyboard.press("Escape");
  await closedWithFocusOnBell(tabs[0]);
  log("panel opened in tab 1: both badges cleared, the item still unread; read in tab 1, read in tab 2");

  // 4. More arrive, of several kinds; "mark all read" in tab 2 marks them read in tab 1, and an
  // item archived in tab 2 leaves tab 1's list.
  await publish({ to: ["alice"], type: "like", data: { text: "Carol liked your photo" } });
  const [mention] = await publish({ to: ["alice", "bob"], type: "mention", data: { text: "Dave mentioned you in #general" } });
  for (const page of tabs) await waitBadge(page, 2, 5000);
  await tabs[1].click("herald-inbox .bell");
  await stateInBoth("read all", tabs[1], "/read-all", () => tabs[1].click("herald-inbox .mark-all"), async () => {
    await waitBadge(tabs[0], 0, 1000);
    await tabs[0].waitForSelector("herald-inbox li.item.unread", { state: "detached", timeout: 1000 });
  });
  await stateInBoth("archive", tabs[1], "/archive", () => archive(tabs[1], mention.id),
    () => tabs[0].waitForSelector(item(mention.id), { state: "detached", timeout: 1000 }));
  await tabs[1].keyboard.press("Escape");
  await closedWithFocusOnBell(tabs[1]);
  log("mark all read and archive in tab 2: tab 1's badge cleared, its items read, the archived one gone");

  // 5. The server restarts; a notification published before the tabs reconnect appears after,
  // and nothing of the states set before is lost. The tabs' streams are held back until it is
  // published: the server's retry hint (5 s) is not the only thing that reconnects them (once a
  // tab was live again before the publish, and the step tested nothing).
  const held = await holdStreams(context);
  await restart();
  const [missed] = await publish({ to: ["alice"], type: "deploy", data: { text: "Published while you were away" } });
  // Read after the 201: a tab that is not live now was not live when the notification committed.
  // The page's state pill and the element's own status change in one task: read them together.
  const seen = await Promise.all(tabs.map((page) => page.evaluate(() => ({
    state: document.getElementById("state").dataset.state,
    status: document.querySelector("herald-inbox").shadowRoot.querySelector(".status").textContent,
  }))));
  const states = seen.map((s) => s.state);
  if (seen.some((s) => s.state === "reconnecting" && s.status !== "Reconnecting…")) throw new Error(`reconnecting, the panel says ${JSON.stringify(seen)}`);
  if (states.includes("live")) {
    throw new Error(`a tab was already live again when the missed notification was published (states ${states}); the test did not exercise resumption`);
  }
  log(`server restarted; published ${missed.id} while the tabs were ${states.join(", ")}; ${held.count()} stream requests held until now`);
  await held.release();
  await Promise.all(tabs.map((page) => page.waitForSelector(item(missed.id, ".unread"), { state: "attached", timeout: 15000 })));
  for (const page of tabs) {
    await waitState(page, "live", 5000);
    await waitBadge(page, 1, 5000);
    if (await hasItem(page, mention.id)) throw new Error("the item archived before the restart is back");
    if (await page.$(`herald-inbox li.item.unread:not([data-id="${missed.id}"])`)) throw new Error("an item read before the restart is unread");
  }
  log("after reconnecting, both tabs show it, unread, badge 1; read and archived states kept");

  // ... and the states still cross tabs after it: seen, read, archived.
  await stateInBoth("seen after the restart", tabs[1], "/seen", () => tabs[1].click("herald-inbox .bell"), () => waitBadge(tabs[0], 0, 1000));
  await stateInBoth("read after the restart", tabs[1], "/read", () => tabs[1].click(item(missed.id) + " .main"),
    () => tabs[0].waitForSelector(item(missed.id, ":not(.unread)"), { state: "attached", timeout: 1000 }));
  await stateInBoth("archive after the restart", tabs[1], "/archive", () => archive(tabs[1], missed.id),
    () => tabs[0].waitForSelector(item(missed.id), { state: "detached", timeout: 1000 }));
  await tabs[1].click("herald-inbox .filters [data-view=archived]");
  await tabs[1].waitForSelector(item(mention.id), { state: "attached", timeout: 5000 });
  await tabs[1].waitForSelector(item(missed.id), { state: "attached", timeout: 5000 });
  await tabs[1].click("herald-inbox .filters [data-view=all]");
  await tabs[1].keyboard.press("Escape");
  log("after the restart: seen, read and archive in tab 2 reach tab 1; both archived items in the archive");

  // 6. A burst (a long replay after a reconnect looks the same) gets a few toasts and a summary,
  // not a toast each; the badge counts them all.
  await tabs[1].evaluate(() => { for (const t of document.querySelector("herald-inbox").shadowRoot.querySelectorAll(".toast")) t.remove(); });
  const likes = Array.from({ length: 12 }, (_, i) => ({ to: ["alice"], type: "like", data: { text: `Like ${i + 1}` } }));
  await publish({ notifications: likes }, "/v1/notifications/batch");
  for (const page of tabs) await waitBadge(page, 12, 5000);
  await tabs[1].waitForSelector("herald-inbox .toast >> text=/more new notifications/", { timeout: 3000 });
  const toasts = await tabs[1].$$eval("herald-inbox .toast .title", (ts) => ts.map((t) => t.textContent));
  if (toasts.length > 4) throw new Error(`${toasts.length} toasts for a burst of 12: ${toasts.join(" | ")}`);
  log(`a burst of 12: ${toasts.length} toasts (${toasts.join(" | ")}), badges 12`);
  if ((await badge(tabs[0])) !== 12) throw new Error("tab 1's badge drifted");
}

// stateInBoth runs act in page, a change that sends a request to path (an API path's end), and
// then check in the other tab, which must see the change within a second of the server's answer
// (each wait in check has that timeout).
async function stateInBoth(what, page, path, act, check) {
  const answered = page.waitForResponse((r) => r.request().method() !== "GET" && new URL(r.url()).pathname.endsWith(path), { timeout: 5000 });
  await act();
  const status = (await answered).status();
  if (status >= 300) throw new Error(`${what}: HTTP ${status}`);
  const t0 = performance.now();
  await check();
  log(`${what}: in the other tab ${(performance.now() - t0).toFixed(0)} ms after the server's answer`);
}

// archive archives notification id through its menu in page.
async function archive(page, id) {
  await page.click(item(id) + " .dots");
  await page.click(item(id) + " .menu button:nth-child(2)");
}

// closedWithFocusOnBell waits for page's panel to be closed with focus back on the bell.
async function closedWithFocusOnBell(page) {
  await page.waitForFunction(() => {
    const el = document.querySelector("herald-inbox");
    return el.shadowRoot.querySelector(".panel").hidden && document.activeElement === el && el.shadowRoot.activeElement?.classList.contains("bell");
  }, null, { timeout: 2000 });
}

// libraryKit loads herald.js from url into page, as an app would import it, with a kit for the
// test: clients by name, the ids each received, and a refresh each that the test can hold
// (kit.hold[name]) and later let return (kit.release[name]) with kit.next[name] as the new token.
async function libraryKit(page, url) {
  await page.evaluate(async (url) => {
    const { Herald } = await import(url + "/herald.js");
    const kit = { clients: {}, got: {}, hold: {}, release: {}, next: {} };
    kit.make = (name, opts) => {
      kit.got[name] = [];
      const h = new Herald({
        url, ...opts,
        refresh: async () => {
          if (kit.hold[name]) await new Promise((resolve) => { kit.release[name] = resolve; });
          return kit.next[name];
        },
      });
      h.on("*", (n) => kit.got[name].push(n.id));
      kit.clients[name] = h;
      return h;
    };
    window.kit = kit;
    window.nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
  }, url);
}

async function waitClient(page, name, state, timeout) {
  await page.waitForFunction(([name, state]) => kit.clients[name].state === state, [name, state], { timeout });
}

async function waitGot(page, name, id, timeout) {
  await page.waitForFunction(([name, id]) => kit.got[name].includes(id), [name, id], { timeout });
}

// expectGot checks that client name received exactly ids, in order: no gap, no duplicate.
async function expectGot(page, name, ids) {
  const got = await page.evaluate((name) => kit.got[name], name);
  if (JSON.stringify(got) !== JSON.stringify(ids)) throw new Error(`${name} received ${JSON.stringify(got)}, want ${JSON.stringify(ids)}`);
}

// releaseRefresh lets client name's held refresh return, and holds no more. It returns once
// herald.js has acted on the refresh's result: that runs in microtasks, which all run before
// the next task (the setTimeout below), so whatever it was going to open is open by then.
async function releaseRefresh(page, name) {
  await page.evaluate(async (name) => {
    kit.hold[name] = false;
    const resolve = kit.release[name];
    delete kit.release[name];
    resolve();
    await nextTask();
  }, name);
}

// libraryReconnects drives herald.js itself as carol, whom the server allows two streams: a third
// is refused (429), and herald.js retries by itself, resuming with ?last_event_id=.
async function libraryReconnects() {
  const page = await newPage(await browser.newContext(), "herald-js");
  await page.goto(base + "/");
  await libraryKit(page, base);
  await page.evaluate(() => {
    kit.make("h1", { user: "carol" }).on("comment", () => { throw new Error("a broken handler"); });
    kit.make("h2", { user: "carol" });
    kit.clients.h1.connect();
    kit.clients.h2.connect();
  });
  for (const name of ["h1", "h2"]) await waitClient(page, name, "live", 10000);
  const [n1] = await publish({ to: ["carol"], type: "comment", data: { text: "one" } });
  for (const name of ["h1", "h2"]) await waitGot(page, name, n1.id, 2000);
  if (!page.consoleErrors.some((e) => e.includes("a handler threw"))) throw new Error("the broken handler was not reported");
  log("herald.js: a handler that throws is reported and the next one still runs");

  // A third stream is refused; before retrying herald.js calls refresh, held here. close() now
  // must win: when refresh returns, nothing reopens.
  await page.evaluate(() => {
    kit.hold.h3 = true;
    kit.make("h3", { user: "carol", lastEventId: kit.clients.h1.lastEventId }).connect();
  });
  await page.waitForFunction(() => !!kit.release.h3, null, { timeout: 5000 });
  const [n2] = await publish({ to: ["carol"], type: "comment", data: { text: "two" } });
  for (const name of ["h1", "h2"]) await waitGot(page, name, n2.id, 2000);
  await page.evaluate(() => kit.clients.h3.close());
  await releaseRefresh(page, "h3");
  const h3 = await page.evaluate(() => ({ state: kit.clients.h3.state, source: !!kit.clients.h3.source }));
  if (h3.state !== "closed" || h3.source) throw new Error(`after close() during a refresh: ${JSON.stringify(h3)}`);
  log("herald.js: close() while a refresh was in flight stayed closed");

  // Refused again, refresh held again; then a slot frees and connect() opens a stream at once.
  // The held retry, when it returns, must not replace that stream.
  await page.evaluate(() => { kit.hold.h3 = true; kit.clients.h3.connect(); });
  await page.waitForFunction(() => !!kit.release.h3, null, { timeout: 5000 });
  await page.evaluate(() => {
    kit.clients.h1.close();
    kit.held = kit.release.h3; // released below, once the new stream is live
    kit.hold.h3 = false;
    kit.clients.h3.connect(); // refused if the server has not yet seen h1 go: then it retries
  });
  await waitClient(page, "h3", "live", 10000);
  await page.evaluate(async () => { kit.source = kit.clients.h3.source; kit.held(); await nextTask(); });
  if (!(await page.evaluate(() => kit.clients.h3.source === kit.source && kit.clients.h3.state === "live"))) {
    throw new Error("a retry scheduled before connect() replaced the stream connect() opened");
  }
  await waitGot(page, "h3", n2.id, 2000);
  await expectGot(page, "h3", [n2.id]); // from h1's cursor: n2, which it was refused for, not n1
  log("herald.js: connect() during a refresh kept its stream; it resumed from ?last_event_id= without loss");

  // h1 comes back while both of carol's streams are taken: refused, it retries by itself, and
  // resumes where it left off once h2 goes.
  const [n3] = await publish({ to: ["carol"], type: "comment", data: { text: "three" } });
  for (const name of ["h2", "h3"]) await waitGot(page, name, n3.id, 2000);
  await page.evaluate(() => kit.clients.h1.connect());
  await waitClient(page, "h1", "reconnecting", 5000);
  await page.evaluate(() => kit.clients.h2.close());
  await waitClient(page, "h1", "live", 10000);
  await waitGot(page, "h1", n3.id, 2000);
  await expectGot(page, "h1", [n1.id, n2.id, n3.id]);
  await expectGot(page, "h2", [n1.id, n2.id, n3.id]);
  await expectGot(page, "h3", [n2.id, n3.id]);
  log("herald.js: refused, it retried by itself and resumed: every client got its notifications once, in order");
  await page.evaluate(() => { for (const h of Object.values(kit.clients)) h.close(); });
}

// tokenMode: a server with auth. The page asks for a token (no user picker, no send form);
// with alice's pasted, the stream authenticates by cookie and the inbox calls by header.
async function tokenMode() {
  const [page, other] = tabs;
  await page.goto(base + "/");
  if (!(await page.isVisible("#token-login")) || (await page.isVisible("#dev-login"))) {
    throw new Error("with auth on, the page should ask for a token and offer no user picker");
  }
  await page.fill("#token", process.env.HERALD_TOKEN);
  await page.click("#token-login button[type=submit]");
  await waitState(page, "live", 10000);
  if (await page.isVisible("#send")) throw new Error("the send form shows without dev mode");
  log("token accepted; live");
  const [n] = await publish({ to: ["alice"], type: "comment", data: { text: "Only alice sees this" } });
  await page.waitForSelector(item(n.id, ".unread"), { state: "attached", timeout: 2000 });
  await waitBadge(page, 1, 2000);
  // Opening the panel sees it (the badge resets: POST .../seen, with the token as a header);
  // clicking it reads it.
  await page.click("herald-inbox .bell");
  await waitBadge(page, 0, 5000);
  const marked = waitRead(page, n.id);
  await page.click(item(n.id) + " .main");
  const markedStatus = (await marked).status();
  if (markedStatus !== 204) throw new Error(`marking ${n.id} read: HTTP ${markedStatus}`);
  const read = await page.evaluate(async () => (await fetch("/v1/notifications/unread-count", {
    headers: { Authorization: "Bearer " + sessionStorage.getItem("herald-token") },
  })).json());
  if (read.unread !== 0) throw new Error(`unread ${read.unread} after marking read`);
  log(`notification ${n.id} arrived over the cookie-authenticated stream and was marked read`);

  // A reload keeps the session (the token is in this tab's sessionStorage) and writes the cookie
  // again, here after it was lost.
  await context.clearCookies();
  await page.reload();
  await waitState(page, "live", 10000);
  if (!(await context.cookies()).some((c) => c.name === "herald_token" && c.value === process.env.HERALD_TOKEN)) {
    throw new Error("the reload did not write the cookie again");
  }
  log("reload without the cookie: still signed in, cookie rewritten, live");

  // bob signs in in a second tab: the origin's one cookie is now his. After a server restart
  // both tabs' browsers reconnect with it; alice's tab must not get bob's feed.
  await other.goto(base + "/");
  await other.fill("#token", mint("bob", 600));
  await other.click("#token-login button[type=submit]");
  await waitState(other, "live", 10000);
  await restart();
  for (const p of tabs) await waitState(p, "live", 20000);
  const [forAlice] = await publish({ to: ["alice"], type: "comment", data: { text: "For alice" } });
  const [forBob] = await publish({ to: ["bob"], type: "comment", data: { text: "For bob" } });
  // Then one to each, as a fence: a stream delivers in order, so once a tab has its fence it has
  // everything published before that its stream was ever going to deliver.
  const fence = Object.fromEntries((await publish({ to: ["alice", "bob"], type: "comment", data: { text: "For both" } })).map((r) => [r.user, r.id]));
  await waitItem(page, forAlice.id, 5000);
  await waitItem(other, forBob.id, 5000);
  await waitItem(page, fence.alice, 5000);
  await waitItem(other, fence.bob, 5000);
  if ((await hasItem(page, forBob.id)) || (await hasItem(other, forAlice.id))) throw new Error("a tab shows another user's notification");
  const who = await Promise.all(tabs.map((p) => p.textContent("#who")));
  log(`alice and bob in two tabs, after a restart: each tab sees only its user's feed (${who.join(", ")})`);

  // Sign out in bob's tab: the login form again, nothing of bob's left; alice's tab carries on.
  await other.click("#sign-out");
  await other.waitForSelector("#token-login", { state: "visible", timeout: 5000 });
  const left = await other.evaluate(() => ({ token: sessionStorage.getItem("herald-token"), who: document.getElementById("who").textContent }));
  if (left.token || left.who) throw new Error(`after signing out: ${JSON.stringify(left)}`);
  if ((await context.cookies()).some((c) => c.value.length > 0 && c.name === "herald_token" && c.value !== process.env.HERALD_TOKEN)) {
    throw new Error("bob's cookie is still there after he signed out");
  }
  const [after] = await publish({ to: ["alice"], type: "comment", data: { text: "Still here" } });
  await waitItem(page, after.id, 5000);
  log("sign out: login form back, token and cookie gone; the other tab still live");

  // A token that expires while the page is open: the stream ends (herald.expired), the page
  // finds the token refused and asks for a new one.
  await other.fill("#token", mint("alice", 5));
  await other.click("#token-login button[type=submit]");
  await waitState(other, "live", 4000);
  await other.waitForSelector("#login-notice", { state: "visible", timeout: 15000 });
  const notice = await other.textContent("#login-notice");
  if (!notice.includes("expired")) throw new Error(`after expiry the login form says ${JSON.stringify(notice)}`);
  if (await other.evaluate(() => sessionStorage.getItem("herald-token"))) throw new Error("the expired token was kept");
  log(`expired token: back to the login form ("${notice}")`);
}

// libraryQueryToken drives herald.js from another origin's page with tokenInQuery: the stream
// must use the URL's token even though a stale cookie for Herald's host exists (cookies ignore
// ports), and after the token expires (herald.expired) reopen with refresh's new token, resuming
// without loss.
async function libraryQueryToken() {
  const [host, port] = process.env.PAGE_ADDR.split(":");
  const server = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>another app</title>");
  });
  await new Promise((resolve) => server.listen(Number(port), host, resolve));
  try {
    const page = await newPage(await browser.newContext(), "herald-js");
    await page.goto(`http://${process.env.PAGE_ADDR}/`);
    await page.evaluate((cookie) => { document.cookie = cookie; }, `herald_token=${mint("alice", -60)}; Path=/`);
    await libraryKit(page, base);
    await page.evaluate(([short, long]) => {
      kit.hold.a = true;
      kit.next.a = long;
      kit.make("a", { token: short, tokenInQuery: true }).connect();
    }, [mint("alice", 5), mint("alice", 600)]);
    await waitClient(page, "a", "live", 5000);
    await page.evaluate(() => kit.clients.a.unreadCount()); // inbox calls: the header, over CORS
    const [n1] = await publish({ to: ["alice"], type: "comment", data: { text: "before expiry" } });
    await waitGot(page, "a", n1.id, 2000);
    log("herald.js from another origin: tokenInQuery stream live despite a stale cookie");

    await page.waitForFunction(() => !!kit.release.a, null, { timeout: 15000 }); // expired; refreshing
    const [n2] = await publish({ to: ["alice"], type: "comment", data: { text: "while refreshing" } });
    await releaseRefresh(page, "a");
    await waitClient(page, "a", "live", 5000);
    await waitGot(page, "a", n2.id, 2000);
    await expectGot(page, "a", [n1.id, n2.id]);
    await page.evaluate(() => kit.clients.a.close());
    log("herald.js: token expired, refreshed, reopened with ?last_event_id= and the new token, nothing lost");
  } finally {
    server.close();
  }
}
