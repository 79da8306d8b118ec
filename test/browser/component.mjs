// <herald-inbox> in a real browser: Debian's Chromium driven by playwright-core, against a
// dev-mode Herald that TestBrowser (cmd/herald/browser_test.go) starts.
//
//   HERALD_URL       the server, e.g. http://127.0.0.1:8080
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default ./screenshots)
//
// It checks, each step printing one line:
//  - an axe audit of the demo page in every state of the element (closed, open, an item's
//    menu, toasts, empty, the mobile sheet at 390 px, dark): no serious or critical violation;
//  - a keyboard-only run: Tab to the bell, Enter opens, arrows move, the menu, Escape closes and
//    returns focus to the bell, Enter on an item opens its url;
//  - hostile content is inert: markup in titles, bodies, labels and data.text shows as text, and
//    javascript:/data: URLs are never followed or loaded (safeUrl, and clicks, on a page with no
//    CSP to stop them);
//  - infinite scroll, the host page never moving, and the properties apps use (strings, locale,
//    renderItem, events);
//  - screenshots at 1280 and 390 px, light and dark, with long text, actions and avatars.
//
// Herald does not store title, body, url, avatar, actions or group yet: the script adds them to
// the inbox API's answers (page.route) for notifications it published with data.demo naming
// them, as the server will send them; live notifications show data.text.
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.HERALD_URL;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
if (!base) {
  console.error("HERALD_URL is not set");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

function log(msg) { console.log(`step: ${msg}`); }

async function api(method, path, body) {
  const resp = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok) throw new Error(`${method} ${path}: HTTP ${resp.status} ${await resp.text()}`);
  return resp.status === 204 ? null : resp.json();
}

// publish sends notifications (a list of {to, type, data}) in one batch and returns their ids.
async function publish(list) {
  return (await api("POST", "/v1/notifications/batch", { notifications: list })).notifications.map((r) => r.id);
}

const LONG = "Rework the retention pruner so that it deletes in batches of 500 and never holds the writer lock for longer than 50 ms, even on a store with millions of rows per user; the benchmark in BENCHMARKS.md shows p99 publish latency going from 180 ms to 9 ms during a prune.";

// CONTENT is what the server would send for a notification published with data.demo = key.
// ago: seconds before now, for created_at.
const CONTENT = {
  long: { title: "Supercalifragilisticexpialidocious_identifiers_like_this_one_must_wrap_instead_of_overflowing_the_panel", body: LONG, ago: 2 * 86400 },
  deploy: { title: "Deploy of herald v1.4.0 to production finished", body: "All 6 nodes healthy.", url: "/deploys/8812", icon: "/avatars/ok.svg", ago: 3 * 3600 },
  like3: { title: "Frank liked your photo", group: "likes-photo-7", avatar: "/avatars/fr.svg", url: "/photos/7", ago: 2400 },
  like2: { title: "Erin liked your photo", group: "likes-photo-7", avatar: "/avatars/er.svg", url: "/photos/7", ago: 1800 },
  like1: { title: "Carol liked your photo", group: "likes-photo-7", avatar: "/avatars/cl.svg", url: "/photos/7", ago: 900 },
  review: {
    title: "Bob Martin requested your review on #1287", body: LONG, url: "/pulls/1287", avatar: "/avatars/bm.svg", ago: 120,
    actions: [{ label: "Review changes", url: "/pulls/1287/files" }, { label: "Snooze", url: "/pulls/1287/snooze" }],
  },
  kim: { title: "Your export is ready", body: "herald-export-2026-12.csv (2.4 MB)", url: "/__opened/export", ago: 600 },
  evil: {
    title: "<img src=x onerror=window.__pwned='title'>", body: "<script>window.__pwned='body'</script><b>bold</b>",
    url: "javascript:window.__pwned='url'", avatar: "javascript:window.__pwned='avatar'", icon: "data:image/svg+xml,<svg onload=alert(1)>",
    actions: [{ label: "<img src=x onerror=window.__pwned='label'>", url: "javascript:window.__pwned='action'" }, { label: "Safe", url: "/ok" }],
  },
};

const COLORS = { bm: "#8250df", cl: "#bf3989", er: "#1a7f37", fr: "#bc4c00", ok: "#0969da" };
const avatar = (name) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" fill="${COLORS[name] || "#57606a"}"/>` +
  `<text x="32" y="41" font-family="sans-serif" font-size="24" font-weight="700" fill="#fff" text-anchor="middle">${name === "ok" ? "✓" : name.toUpperCase()}</text></svg>`;

// enrich has context's pages get CONTENT in inbox answers, the avatars, and two plain pages of
// Herald's origin that Herald does not serve: /__harness (the element on a page with no CSP, so
// that anything hostile would run if let through) and /__opened/* (where an item's url leads).
async function enrich(context) {
  await context.route((url) => url.pathname === "/v1/notifications", async (route) => {
    if (route.request().method() !== "GET") return route.fallback();
    const resp = await route.fetch();
    const body = await resp.json();
    for (const n of body.notifications || []) {
      const c = n.data && CONTENT[n.data.demo];
      if (!c) continue;
      for (const [k, v] of Object.entries(c)) {
        if (k === "ago") n.created_at = new Date(Date.now() - v * 1000).toISOString();
        else if (!(k in n)) n[k] = v;
      }
    }
    await route.fulfill({ response: resp, json: body });
  });
  await context.route((url) => url.pathname.startsWith("/avatars/"), (route) =>
    route.fulfill({ contentType: "image/svg+xml", body: avatar(new URL(route.request().url()).pathname.slice(9, -4)) }));
  await context.route((url) => url.pathname === "/__harness", (route) => route.fulfill({
    contentType: "text/html",
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Harness</title>
<script type="module" src="/herald-inbox.js"></script></head>
<body><header style="display:flex;justify-content:flex-end;padding:8px"><herald-inbox id="inbox" user="${new URL(route.request().url()).searchParams.get("user")}"></herald-inbox></header></body></html>`,
  }));
  await context.route((url) => url.pathname.startsWith("/__opened/"), (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>opened</title><p>opened</p>" }));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const errors = [];
const pages = [];

async function newPage({ width = 1280, height = 800, scheme = "light", name }) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme, reducedMotion: "reduce" });
  await enrich(context);
  await context.addInitScript(`window.__focused = ${whereFocus.toString()};`);
  const page = await context.newPage();
  page.on("pageerror", (err) => errors.push(`${name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/status of (404|503)/.test(msg.text())) errors.push(`${name} console: ${msg.text()}`);
  });
  pages.push({ page, name });
  return page;
}

// open loads the demo page as user and waits until the element shows its list.
async function openDemo(page, user) {
  await page.goto(`${base}/?user=${user}`);
  await page.waitForFunction(() => {
    const el = document.querySelector("herald-inbox");
    return el && el.connection === "live" && el.shadowRoot.querySelector(".loading").hidden;
  }, null, { timeout: 10000 });
}

async function openPanel(page) {
  await page.click("herald-inbox .bell");
  await page.waitForSelector("herald-inbox .panel", { state: "visible", timeout: 2000 });
}

// audit runs axe on the whole page and fails on any serious or critical violation.
const audited = [];
async function audit(page, state) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const minor = violations.filter((v) => !bad.includes(v)).map((v) => `${v.id} (${v.impact})`);
  if (bad.length) {
    throw new Error(`axe, ${state}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
  }
  audited.push(state);
  log(`axe, ${state}: no serious or critical violation${minor.length ? `; minor: ${minor.join(", ")}` : ""}`);
}

// whereFocus describes where focus is, through the element's shadow root; installed in every
// page as window.__focused.
function whereFocus() {
    const el = document.querySelector("herald-inbox");
    if (document.activeElement !== el) return `page:${document.activeElement?.tagName.toLowerCase()}`;
    const a = el.shadowRoot.activeElement;
    if (!a) return "host";
    const li = a.closest("li.item");
    if (a.classList.contains("main")) return `item:${li.dataset.id}`;
    if (a.classList.contains("dots")) return `dots:${li.dataset.id}`;
    if (a.getAttribute("role") === "menuitem") return `menuitem:${[...a.parentNode.children].indexOf(a)}`;
    return a.classList.contains("bell") ? "bell" : `${a.tagName.toLowerCase()}.${a.className}`;
}

function focused(page) {
  return page.evaluate(() => window.__focused());
}

async function expectFocus(page, want) {
  const got = await focused(page);
  if (got !== want) throw new Error(`focus on ${got}, want ${want}`);
}

// press presses key and waits for focus to land on want.
async function press(page, key, want) {
  await page.keyboard.press(key);
  await page.waitForFunction((want) => window.__focused() === want, want, { timeout: 2000 })
    .catch(async () => { throw new Error(`after ${key}: focus on ${await focused(page)}, want ${want}`); });
}

try {
  await screenshotsAndAudits();
  await keyboard();
  await hostile();
  await scrolling();
  await appFacing();
  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  log(`axe audited: ${audited.join(", ")}`);
  console.log("ok");
} catch (err) {
  console.log(`FAIL: ${err.message}`);
  for (const { page, name } of pages) await page.screenshot({ path: join(shots, `failure-component-${name}.png`) }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}

// seed publishes the screenshot inbox for user: oldest first, so that ids and created_at agree.
async function seed(user) {
  const keys = ["long", "deploy", "like3", "like2", "like1", "review"];
  const ids = await publish(keys.map((demo) => ({ to: [user], type: demo.startsWith("like") ? "like" : "comment", data: { demo, text: CONTENT[demo].title } })));
  await api("POST", `/v1/notifications/${ids[0]}/read?user=${user}`);
  await api("POST", `/v1/notifications/${ids[1]}/read?user=${user}`);
  const [plain] = await publish([{ to: [user], type: "maintenance", data: { text: "Maintenance tonight at 02:00 UTC: Herald will be read-only for about five minutes." } }]);
  return [...ids, plain];
}

async function screenshotsAndAudits() {
  for (const [width, scheme] of [[1280, "light"], [1280, "dark"], [390, "light"], [390, "dark"]]) {
    const user = width === 1280 && scheme === "light" ? "alice" : `dave-${width}-${scheme}`; // alice: the README's
    await seed(user);
    const page = await newPage({ width, height: width > 480 ? 800 : 844, scheme, name: user });
    await openDemo(page, user);
    const layout = () => page.evaluate(() => ["h1", "#who", "#state", "main"].map((s) => JSON.stringify(document.querySelector(s).getBoundingClientRect())));
    const before = await layout();
    if (width === 1280 && scheme === "light") await audit(page, "closed");

    // Toasts, as a live notification with content would show.
    await page.evaluate(() => document.querySelector("herald-inbox")._toast({
      id: "0", type: "comment", title: "Dana replied to your comment", body: "Looks good to me — ship it!", avatar: "/avatars/cl.svg",
      actions: [{ label: "Reply", url: "/pulls/1287#reply" }], created_at: new Date().toISOString(),
    }));
    await page.waitForSelector("herald-inbox .toast img", { state: "visible" });
    await page.waitForFunction(() => [...document.querySelector("herald-inbox").shadowRoot.querySelectorAll("img")].every((i) => i.complete));
    await page.screenshot({ path: join(shots, `toast-${width}-${scheme}.png`) });
    if (scheme === "light") await audit(page, `toast at ${width} px`);

    await openPanel(page);
    await page.waitForFunction(() => [...document.querySelector("herald-inbox").shadowRoot.querySelectorAll("img")].every((i) => i.complete));
    const overflow = await page.evaluate(() => {
      const s = document.querySelector("herald-inbox").shadowRoot.querySelector(".scroller");
      return s.scrollWidth - s.clientWidth;
    });
    if (overflow > 0) throw new Error(`the panel scrolls sideways by ${overflow} px: long text does not wrap`);
    if (JSON.stringify(await layout()) !== JSON.stringify(before)) throw new Error(`the host page moved: ${before} → ${await layout()}`);
    const shot = join(shots, `inbox-${width}-${scheme}.png`);
    await page.screenshot({ path: shot });
    if (width === 1280 && scheme === "light") await page.screenshot({ path: join(shots, "inbox.png") });
    log(`screenshot ${shot}; long text wraps, the host page did not move`);

    if (width === 390) {
      const box = await page.evaluate(() => JSON.stringify(document.querySelector("herald-inbox").shadowRoot.querySelector(".panel").getBoundingClientRect()));
      const r = JSON.parse(box);
      if (r.x !== 0 || r.y !== 0 || r.width !== 390 || r.height !== 844) throw new Error(`at 390 px the panel is not a full-screen sheet: ${box}`);
      await audit(page, `mobile sheet, ${scheme}`);
      await trapped(page);
    } else {
      await audit(page, `open, ${scheme}`);
      if (scheme === "light") {
        await page.click("herald-inbox li.item .dots");
        await page.waitForSelector("herald-inbox .menu", { state: "visible" });
        await audit(page, "item menu open");
        await page.keyboard.press("Escape");
        await page.click("herald-inbox [data-view=archived]");
        await page.waitForSelector("herald-inbox .empty", { state: "visible", timeout: 5000 });
        await audit(page, "empty (archived view)");
      }
    }
    await page.context().close();
  }

  // A user with nothing at all.
  const page = await newPage({ name: "nobody" });
  await openDemo(page, "nobody");
  await openPanel(page);
  await page.waitForSelector("herald-inbox .empty", { state: "visible" });
  await audit(page, "empty inbox");
  await page.context().close();

  // A server that fails the list: the panel says so, and "Try again" recovers.
  const [id] = await publish([{ to: ["oscar"], type: "comment", data: { text: "Back again" } }]);
  const failing = await newPage({ name: "error" });
  let fail = true;
  await failing.route((url) => url.pathname === "/v1/notifications", (route) => (fail
    ? route.fulfill({ status: 503, contentType: "application/json", body: '{"error":{"code":"unavailable","message":"try later"}}' })
    : route.fallback()));
  await failing.goto(`${base}/?user=oscar`);
  await failing.waitForFunction(() => document.querySelector("herald-inbox")?.connection === "live", null, { timeout: 10000 });
  await openPanel(failing);
  await failing.waitForSelector("herald-inbox .error", { state: "visible" });
  await audit(failing, "error");
  fail = false;
  await failing.click("herald-inbox .retry");
  await failing.waitForSelector(`herald-inbox li.item[data-id="${id}"]`, { timeout: 5000 });
  if (await failing.isVisible("herald-inbox .error")) throw new Error("the error stayed after a successful retry");
  log("error state: a failed load says so; Try again loads the list");
  await failing.context().close();
}

// trapped: in the sheet, Tab and Shift+Tab never leave the panel.
async function trapped(page) {
  const inside = () => page.evaluate(() => {
    const el = document.querySelector("herald-inbox");
    return document.activeElement === el && el.shadowRoot.querySelector(".panel").contains(el.shadowRoot.activeElement);
  });
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Tab");
    if (!(await inside())) throw new Error(`Tab ${i + 1} left the mobile sheet: focus on ${await focused(page)}`);
  }
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Shift+Tab");
    if (!(await inside())) throw new Error(`Shift+Tab ${i + 1} left the mobile sheet: focus on ${await focused(page)}`);
  }
  log("mobile sheet: 30 Tabs and 30 Shift+Tabs stay inside it");
}

// keyboard: everything without a mouse.
async function keyboard() {
  const [opens, a, b] = await publish([
    { to: ["kim"], type: "export", data: { demo: "kim", text: "Your export is ready" } },
    { to: ["kim"], type: "comment", data: { text: "Lee commented on your post" } },
    { to: ["kim"], type: "comment", data: { text: "Max mentioned you" } },
  ]);
  const page = await newPage({ name: "keyboard" });
  await openDemo(page, "kim");
  for (let i = 0; i < 20 && (await focused(page)) !== "bell"; i++) await page.keyboard.press("Tab");
  await expectFocus(page, "bell");
  const label = await page.$eval("herald-inbox .bell", (el) => el.getAttribute("aria-label"));
  if (label !== "Notifications, 3 unseen") throw new Error(`the bell's label is ${JSON.stringify(label)}`);
  await press(page, "Enter", `item:${b}`);
  await press(page, "ArrowDown", `item:${a}`);
  await press(page, "ArrowDown", `item:${opens}`);
  await press(page, "ArrowUp", `item:${a}`);
  await press(page, "Tab", `dots:${a}`);
  await press(page, "Enter", "menuitem:0");
  await press(page, "ArrowDown", "menuitem:1");
  await press(page, "Escape", `dots:${a}`);
  await press(page, "Escape", "bell");
  if (!(await page.$eval("herald-inbox .panel", (p) => p.hidden))) throw new Error("Escape did not close the panel");
  await page.waitForFunction(() => document.querySelector("herald-inbox").shadowRoot.querySelector(".bell").getAttribute("aria-label") === "Notifications");
  log("keyboard: Tab to the bell (\"Notifications, 3 unseen\"), Enter opens, arrows move, the menu opens and closes, Escape returns to the bell");

  await press(page, "Enter", `item:${a}`);
  await press(page, "End", `item:${opens}`);
  await Promise.all([page.waitForURL(/\/__opened\/export$/, { timeout: 5000 }), page.keyboard.press("Enter")]);
  const n = await api("GET", `/v1/notifications/${opens}?user=kim`);
  if (!n.read) throw new Error("the item opened with Enter was not marked read");
  log("keyboard: End, then Enter opened the item's url in the tab and marked it read");
  await page.context().close();
}

// hostile: markup is text, and javascript:/data: are never followed, on a page with no CSP.
async function hostile() {
  const live = "<img src=x onerror=window.__pwned='live'>";
  await publish([{ to: ["mallory"], type: "comment", data: { demo: "evil", text: "evil" } }]);
  const page = await newPage({ name: "hostile" });
  await page.goto(`${base}/__harness?user=mallory`);
  await page.waitForFunction(() => document.querySelector("herald-inbox")?.shadowRoot.querySelector("li.item"), null, { timeout: 10000 });
  const [liveId] = await publish([{ to: ["mallory"], type: "comment", data: { text: live } }]);
  await page.waitForSelector(`herald-inbox .toast`, { timeout: 2000 });
  await page.waitForSelector(`herald-inbox li.item[data-id="${liveId}"]`, { state: "attached", timeout: 2000 });
  // A control image that fails like x: once its error handler ran, so would have any other's.
  await page.evaluate(() => new Promise((resolve) => {
    const img = document.createElement("img");
    img.onerror = resolve;
    img.src = "/x?control";
    document.body.append(img);
  }));
  const seen = await page.evaluate(() => {
    const root = document.querySelector("herald-inbox").shadowRoot;
    return {
      pwned: window.__pwned,
      titles: [...root.querySelectorAll(".title")].map((t) => t.textContent),
      bodies: [...root.querySelectorAll(".body")].map((t) => t.textContent),
      injected: root.querySelectorAll(".list img, .list script, .list b, .toast img, .toast b").length,
      links: [...root.querySelectorAll("a")].map((a) => a.href),
      evilMain: root.querySelector("li.item:last-child .main").tagName,
    };
  });
  if (seen.pwned !== undefined) throw new Error(`hostile content ran: __pwned = ${seen.pwned}`);
  for (const want of [CONTENT.evil.title, live]) if (!seen.titles.includes(want)) throw new Error(`${want} is not shown as text: ${JSON.stringify(seen.titles)}`);
  if (!seen.bodies.includes(CONTENT.evil.body)) throw new Error(`the body is not shown as text: ${JSON.stringify(seen.bodies)}`);
  if (seen.injected) throw new Error(`${seen.injected} elements made from content`);
  if (seen.links.some((h) => !/^https?:/.test(h)) || !seen.links.includes(`${base}/ok`)) throw new Error(`links: ${JSON.stringify(seen.links)}`);
  if (seen.evilMain !== "BUTTON") throw new Error(`an item whose url is javascript: is a ${seen.evilMain}, not a button`);

  // Clicking it: marked read, nothing followed.
  await openPanel(page);
  const clicked = page.evaluate(() => new Promise((resolve) => document.addEventListener("herald-click", (e) => resolve(e.detail.url), { once: true })));
  const url = page.url();
  await page.click("herald-inbox li.item:last-child .main");
  if ((await clicked) !== null) throw new Error("herald-click carried the javascript: url");
  await page.waitForSelector("herald-inbox li.item:last-child:not(.unread)", { state: "attached", timeout: 2000 });
  // A toast with javascript: urls gets no link either.
  const toastLinks = await page.evaluate(() => {
    const el = document.querySelector("herald-inbox");
    el._toast({ id: "1", type: "t", title: "t", url: "javascript:window.__pwned='toast'", actions: [{ label: "Go", url: "JaVaScRiPt:window.__pwned='toast-action'" }] });
    return el.shadowRoot.querySelector(".toast:last-child").querySelectorAll("a").length;
  });
  if (toastLinks || page.url() !== url || (await page.evaluate(() => window.__pwned)) !== undefined) throw new Error("a javascript: url was followed");

  // The guard itself.
  const verdicts = await page.evaluate(async (base) => {
    const { safeUrl } = await import("/herald-inbox.js");
    const cases = ["javascript:alert(1)", " javascript:alert(1)", "JAVASCRIPT:alert(1)", "java\tscript:alert(1)", "\x01javascript:alert(1)",
      "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "blob:" + base + "/x", "file:///etc/passwd", "mailto:a@b.c", "",
      "/inbox?x=1", "inbox", "https://example.com/a", "http://example.com", "//example.com/a"];
    return Object.fromEntries(cases.map((c) => [c, safeUrl(c)]));
  }, base);
  const want = (c) => (["/inbox?x=1", "inbox", "https://example.com/a", "http://example.com", "//example.com/a"].includes(c));
  for (const [c, v] of Object.entries(verdicts)) {
    if (want(c) !== (v !== null) || (v && !/^https?:\/\//.test(v))) throw new Error(`safeUrl(${JSON.stringify(c)}) = ${JSON.stringify(v)}`);
  }
  log(`hostile content: markup shown as text, nothing ran (__pwned undefined), javascript:/data: never followed; safeUrl refuses ${Object.values(verdicts).filter((v) => v === null).length} of ${Object.keys(verdicts).length} cases`);
  await page.context().close();
}

// scrolling: the inbox API's pages load as the list scrolls.
async function scrolling() {
  await publish(Array.from({ length: 45 }, (_, i) => ({ to: ["paige"], type: "like", data: { text: `Like ${i + 1}` } })));
  const page = await newPage({ name: "scroll" });
  await openDemo(page, "paige");
  await openPanel(page);
  const count = () => page.$$eval("herald-inbox li.item", (l) => l.length);
  if ((await count()) !== 20) throw new Error(`first page: ${await count()} items`);
  for (const want of [40, 45]) {
    await page.$eval("herald-inbox .scroller", (s) => { s.scrollTop = s.scrollHeight; });
    await page.waitForFunction((want) => document.querySelector("herald-inbox").shadowRoot.querySelectorAll("li.item").length === want, want, { timeout: 5000 });
  }
  log("infinite scroll: 20, then 40, then all 45 as the list scrolled");
  await page.context().close();
}

// appFacing: strings, locale, renderItem and the events an app listens to.
async function appFacing() {
  await publish([{ to: ["nina"], type: "comment", data: { text: "Hallo" } }]);
  const page = await newPage({ name: "app" });
  await page.goto(`${base}/__harness?user=nina`);
  await page.evaluate(() => {
    window.events = [];
    for (const t of ["herald-notification", "herald-click", "herald-state"]) document.addEventListener(t, (e) => window.events.push(t));
    const el = document.getElementById("inbox");
    el.setAttribute("locale", "de");
    el.strings = { heading: "Benachrichtigungen", bell: (n) => `Benachrichtigungen, ${n} ungesehen` };
  });
  await page.waitForFunction(() => document.getElementById("inbox").shadowRoot.querySelector("li.item time"), null, { timeout: 10000 });
  const [id] = await publish([{ to: ["nina"], type: "comment", data: { text: "Neu" } }]);
  await page.waitForFunction(() => window.events.includes("herald-notification"), null, { timeout: 2000 });
  await page.waitForFunction(() => document.getElementById("inbox").shadowRoot.querySelector(".bell").getAttribute("aria-label") === "Benachrichtigungen, 2 ungesehen", null, { timeout: 2000 });
  const got = await page.evaluate(() => {
    const el = document.getElementById("inbox");
    const got = { heading: el.shadowRoot.querySelector("h2").textContent, time: el.shadowRoot.querySelector("time").textContent };
    el.renderItem = (n) => Object.assign(document.createElement("em"), { className: "mine", textContent: `custom ${n.id}` });
    return { ...got, custom: el.shadowRoot.querySelectorAll("em.mine").length };
  });
  if (got.heading !== "Benachrichtigungen" || got.time !== "jetzt" || got.custom !== 2) throw new Error(`strings, locale, renderItem: ${JSON.stringify(got)}`);
  await page.click("herald-inbox .bell");
  await page.click(`herald-inbox li.item[data-id="${id}"] .main`);
  await page.waitForFunction(() => window.events.includes("herald-click") && window.events.includes("herald-state"), null, { timeout: 2000 });
  log("app-facing: strings and locale (\"jetzt\"), renderItem, herald-notification, herald-click and herald-state");
  await page.context().close();
}
