// The demo inbox in a real browser: Debian's Chromium driven by playwright-core (never a
// downloaded browser). TestBrowser (cmd/herald/browser_test.go) starts Herald and runs this
// script; it asks the test to restart the server by printing "restart" and waits for
// "restarted" on stdin.
//
//   HERALD_URL       the server, e.g. http://127.0.0.1:8080
//   MODE             dev (the server runs without auth; the default) or token
//   HERALD_TOKEN     token mode: alice's subscriber token, pasted into the page
//   HERALD_KEY       token mode: a publisher API key
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default ./screenshots)
//
// Each step prints one line; the first failure prints why, saves a screenshot of every tab and
// exits 1.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
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

async function publish(body) {
  const headers = { "Content-Type": "application/json" };
  if (process.env.HERALD_KEY) headers.Authorization = "Bearer " + process.env.HERALD_KEY;
  const resp = await fetch(base + "/v1/notifications", {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  if (resp.status !== 201) throw new Error(`publish: HTTP ${resp.status} ${await resp.text()}`);
  return (await resp.json()).notifications;
}

// badge returns what a tab's badge shows: its number, or 0 when hidden.
async function badge(page) {
  return page.evaluate(() => {
    const b = document.getElementById("badge");
    return b.hidden ? 0 : Number(b.textContent);
  });
}

async function waitBadge(page, want, timeout) {
  await page.waitForFunction((want) => {
    const b = document.getElementById("badge");
    return (b.hidden ? 0 : Number(b.textContent)) === want;
  }, want, { timeout });
}

async function waitState(page, want, timeout) {
  await page.waitForFunction((want) => document.getElementById("state").dataset.state === want, want, { timeout });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
const tabs = [await context.newPage(), await context.newPage()];
const errors = [];
for (const [i, page] of tabs.entries()) {
  page.on("pageerror", (err) => errors.push(`tab ${i + 1}: ${err.message}`));
  page.on("console", (msg) => { if (msg.type() === "error") console.log(`tab ${i + 1} console: ${msg.text()}`); });
}

// tokenMode: a server with auth. The page asks for a token (no user picker, no send form);
// with alice's pasted, the stream authenticates by cookie and the inbox calls by header.
async function tokenMode() {
  const page = tabs[0];
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
  await page.waitForSelector(`li.item.unread[data-id="${n.id}"]`, { state: "attached", timeout: 2000 });
  await waitBadge(page, 1, 2000);
  await page.click("#bell");
  await page.click(`li.item[data-id="${n.id}"]`);
  await waitBadge(page, 0, 5000);
  const read = await page.evaluate(async () => (await fetch("/v1/notifications/unread-count", {
    headers: { Authorization: "Bearer " + sessionStorage.getItem("herald-token") },
  })).json());
  if (read.unread !== 0) throw new Error(`unread ${read.unread} after marking read`);
  log(`notification ${n.id} arrived over the cookie-authenticated stream and was marked read`);
  // A reload keeps the session (the token is in this tab's sessionStorage).
  await page.reload();
  await waitState(page, "live", 10000);
  log("reload: still signed in, live");
}

try {
  if (mode === "token") {
    await tokenMode();
    if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
    console.log("ok");
  } else {
    await devMode();
  }
} catch (err) {
  console.log(`FAIL: ${err.message}`);
  for (const [i, page] of tabs.entries()) {
    await page.screenshot({ path: join(shots, `failure-${mode}-tab${i + 1}.png`) }).catch(() => {});
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
  await Promise.all(tabs.map((page) => page.waitForSelector(`li.item.unread[data-id="${first.id}"]`, { state: "attached", timeout: 1000 })));
  const elapsed = performance.now() - t0;
  for (const page of tabs) await waitBadge(page, 1, 1000);
  await tabs[0].waitForSelector(".toast", { timeout: 1000 });
  log(`notification ${first.id} in both tabs ${elapsed.toFixed(0)} ms after its 201; badges 1`);

  // 3. Marking it read in one tab clears it in the other.
  await tabs[0].click("#bell");
  await tabs[0].click(`li.item[data-id="${first.id}"]`);
  await waitBadge(tabs[1], 0, 5000);
  await tabs[1].waitForSelector(`li.item[data-id="${first.id}"]:not(.unread)`, { state: "attached", timeout: 5000 });
  log("read in tab 1; tab 2's badge cleared and its item shows read");

  // 4. More arrive, of several kinds; "mark all read" in tab 2 clears tab 1.
  await publish({ to: ["alice"], type: "like", data: { text: "Carol liked your photo" } });
  await publish({ to: ["alice", "bob"], type: "mention", data: { text: "Dave mentioned you in #general" } });
  for (const page of tabs) await waitBadge(page, 2, 5000);
  await tabs[1].click("#bell");
  await tabs[1].click("#read-all");
  await waitBadge(tabs[0], 0, 5000);
  log("mark all read in tab 2; tab 1's badge cleared");

  // 5. The server restarts; a notification published before the tabs reconnect appears after.
  console.log("restart");
  const reply = await lines.next();
  if (reply.value !== "restarted") throw new Error(`expected "restarted" on stdin, got ${JSON.stringify(reply.value)}`);
  const states = await Promise.all(tabs.map((page) => page.evaluate(() => document.getElementById("state").dataset.state)));
  const [missed] = await publish({ to: ["alice"], type: "deploy", data: { text: "Published while you were away" } });
  if (states.includes("live")) {
    throw new Error(`a tab was already live again when the missed notification was published (states ${states}); the test did not exercise resumption`);
  }
  log(`server restarted; published ${missed.id} while the tabs were ${states.join(", ")}`);
  await Promise.all(tabs.map((page) => page.waitForSelector(`li.item.unread[data-id="${missed.id}"]`, { state: "attached", timeout: 15000 })));
  for (const page of tabs) {
    await waitState(page, "live", 5000);
    await waitBadge(page, 1, 5000);
  }
  log("after reconnecting, both tabs show it, unread, badge 1");

  // 6. A screenshot for people: a fuller inbox, the dropdown open, a toast.
  await publish({ broadcast: true, type: "maintenance", data: { text: "Maintenance tonight at 02:00 UTC" } });
  await publish({ to: ["alice"], type: "comment", data: { text: "Erin replied to your comment" } });
  for (const page of tabs) await waitBadge(page, 3, 5000);
  if (await tabs[0].isHidden("#panel")) await tabs[0].click("#bell");
  await tabs[0].waitForSelector(".toast", { timeout: 2000 });
  await tabs[0].waitForTimeout(300); // the toasts' slide-in animation
  await tabs[0].screenshot({ path: join(shots, "inbox.png") });
  log(`screenshot ${join(shots, "inbox.png")}`);

  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  if ((await badge(tabs[1])) !== 3) throw new Error("tab 2's badge drifted");
  console.log("ok");
}
