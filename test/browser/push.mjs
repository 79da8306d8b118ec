// Web Push in a real browser: Debian's Chromium driven by playwright-core. TestBrowserPush
// (cmd/herald/browser_push_test.go) starts Herald with a VAPID key and runs this script.
//
// A page of Herald's origin registers /herald-sw.js; a push is delivered to the worker through
// the DevTools protocol (ServiceWorker.deliverPushMessage: the browser's push service is not
// reachable from a test), with the payload Herald sends for a notification published here. The
// worker must show it (title, body, tag; a second push of the same tag replaces it), and a
// click must open its url and mark it read through the API. Headless Chromium has no way to
// click a system notification, so the click is a NotificationEvent dispatched in the worker:
// the worker's own handler runs, but without the click's permission to open a window, so it
// takes the open tab to the url (its fallback). Last, <herald-inbox>'s menu shows the push
// switch, on when the browser is subscribed.
//
//   HERALD_URL   the server, e.g. http://127.0.0.1:8080
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//
// Each step prints one line; the first failure prints why and exits 1.
import { chromium } from "playwright-core";

const base = process.env.HERALD_URL;
if (!base) {
  console.error("HERALD_URL is not set");
  process.exit(2);
}
function log(msg) { console.log(`step: ${msg}`); }

async function api(method, path, body) {
  const resp = await fetch(base + path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path}: HTTP ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function waitFor(what, cond, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const errors = [];
try {
  const context = await browser.newContext();
  await context.grantPermissions(["notifications"], { origin: base });
  const page = await context.newPage();
  page.on("pageerror", (err) => errors.push(err.message));

  await page.goto(base + "/");
  const scope = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.register("/herald-sw.js?user=alice");
    await navigator.serviceWorker.ready;
    return reg.scope;
  });
  log(`herald-sw.js registered, scope ${scope}`);

  // The registration's id, as DevTools knows it.
  const cdp = await context.newCDPSession(page);
  const registrations = new Map();
  cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations: rs }) => {
    for (const r of rs) registrations.set(r.scopeURL, r.registrationId);
  });
  await cdp.send("ServiceWorker.enable");
  const registrationId = await waitFor("the worker's registration id", () => registrations.get(scope));

  // A notification for alice, and the payload Herald pushes for it (internal/push.Payload).
  const target = base + "/?user=alice&opened=1";
  const [n] = (await api("POST", "/v1/notifications", {
    to: ["alice"], type: "comment", title: "Bob commented", body: "Nice work", url: target, group: "post-42",
  })).notifications;
  const payload = (title) => JSON.stringify({ id: Number(n.id), type: "comment", title, body: "Nice work", url: target, tag: "post-42", created_at: new Date().toISOString() });
  const shown = () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications())
    .map((x) => ({ title: x.title, body: x.body, tag: x.tag, data: x.data })));

  await cdp.send("ServiceWorker.deliverPushMessage", { origin: new URL(base).origin, registrationId, data: payload("Bob commented (1)") });
  let ns = await waitFor("the notification to show", async () => { const s = await shown(); return s.length ? s : null; });
  if (ns.length !== 1 || ns[0].title !== "Bob commented (1)" || ns[0].body !== "Nice work" || ns[0].tag !== "post-42" || ns[0].data.url !== target) {
    throw new Error("shown: " + JSON.stringify(ns));
  }
  log("a push shows its notification: title, body, tag");

  await cdp.send("ServiceWorker.deliverPushMessage", { origin: new URL(base).origin, registrationId, data: payload("Bob commented (2)") });
  ns = await waitFor("the second notification to replace the first", async () => {
    const s = await shown();
    return s.length === 1 && s[0].title === "Bob commented (2)" ? s : null;
  });
  log("a second push of the same tag replaces it");

  const worker = context.serviceWorkers().find((w) => w.url().includes("/herald-sw.js")) ||
    await context.waitForEvent("serviceworker");
  await worker.evaluate(async () => {
    const [x] = await self.registration.getNotifications();
    self.dispatchEvent(new NotificationEvent("notificationclick", { notification: x }));
  });
  await waitFor("a tab at the notification's url", () => context.pages().some((p) => p.url() === target));
  log("a click opens the url");
  await waitFor("the notification to be read", async () => (await api("GET", `/v1/notifications/${n.id}?user=alice`)).read_at !== null);
  if ((await shown()).length !== 0) throw new Error("the clicked notification is still shown");
  log("a click marks it read through the API, and closes it");

  // <herald-inbox>: the switch in its panel, on while this browser is subscribed. Headless
  // Chromium has no push service to subscribe with, so the switch is checked as the element
  // shows a subscription state, not turned on.
  const inboxPage = context.pages().find((p) => p.url() === target);
  await inboxPage.waitForSelector("herald-inbox");
  await inboxPage.evaluate(() => customElements.whenDefined("herald-inbox"));
  await waitFor("the inbox to connect", () => inboxPage.evaluate(() => document.querySelector("herald-inbox")?.herald?.state === "live"));
  await inboxPage.click("herald-inbox .bell");
  const sw = await waitFor("the push switch", () => inboxPage.evaluate(() => {
    const root = document.querySelector("herald-inbox").shadowRoot;
    const foot = root.querySelector(".push");
    return foot && !foot.hidden ? { label: root.querySelector(".push-switch").textContent, checked: root.querySelector(".push-switch").getAttribute("aria-checked"), note: root.querySelector(".push-note").textContent } : null;
  }));
  if (sw.label !== "Push notifications" || sw.checked !== "false" || !sw.note) throw new Error("switch: " + JSON.stringify(sw));
  log(`<herald-inbox> shows the push switch (off: ${sw.note})`);

  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  console.log("ok");
} catch (err) {
  console.log(`FAIL: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
