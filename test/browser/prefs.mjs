// The settings view of <herald-inbox> (preferences, issue 17) in a real browser: Debian's
// Chromium driven by playwright-core, against a dev-mode Herald that TestBrowserPreferences
// (cmd/herald/prefs_browser_test.go) starts.
//
//   HERALD_URL       the server, e.g. http://127.0.0.1:8080
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   where screenshots go (default ./screenshots)
//
// It checks, each step printing one line:
//  - keyboard only: the settings button opens the view with focus on its first control; a
//    prefix is muted with the keyboard, and saved (the server has it); Escape goes back to the
//    list and focus to the settings button; Tab reaches the rule's Unmute button;
//  - what a mute does, live: the muted broadcast leaves the list and the badge, a new one never
//    shows (no toast, not listed) while others do, a critical one does; a second tab of the same
//    user follows a change made in the first (herald.preferences); unmuting brings them back;
//  - the server's refusal (a reserved prefix) is said in the view, and the rules stay;
//  - the rules of the push channel, which the view does not show, survive its saves;
//  - an axe audit of the view (light, dark, the 390 px sheet): no serious or critical
//    violation; screenshots of the view at 1280 and 390 px, light and dark.
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

async function publish(n) {
  return (await api("POST", "/v1/notifications", n)).notifications.map((r) => r.id);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const errors = [];
const pages = [];

async function newPage({ width = 1280, height = 800, scheme = "light", name }) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme: scheme, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.on("pageerror", (err) => errors.push(`${name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/status of (400|404|503)/.test(msg.text())) errors.push(`${name} console: ${msg.text()}`);
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

// focused describes where focus is inside the element.
function focused(page) {
  return page.evaluate(() => {
    const el = document.querySelector("herald-inbox");
    if (document.activeElement !== el) return `page:${document.activeElement?.tagName.toLowerCase()}`;
    const a = el.shadowRoot.activeElement;
    if (!a) return "host";
    if (a.classList.contains("bell")) return "bell";
    if (a.classList.contains("settings-button")) return "settings-button";
    if (a.id) return `#${a.id}`;
    if (a.dataset.kind) return `unmute:${a.dataset.kind}:${a.dataset.value}`;
    return `${a.tagName.toLowerCase()}:${a.textContent}`;
  });
}

async function press(page, key, want) {
  await page.keyboard.press(key);
  await page.waitForFunction(async (want) => {
    const el = document.querySelector("herald-inbox");
    const a = el.shadowRoot.activeElement;
    const got = !a ? "host" : a.classList.contains("bell") ? "bell" : a.classList.contains("settings-button") ? "settings-button"
      : a.id ? `#${a.id}` : a.dataset.kind ? `unmute:${a.dataset.kind}:${a.dataset.value}` : `${a.tagName.toLowerCase()}:${a.textContent}`;
    return got === want;
  }, want, { timeout: 2000 }).catch(async () => { throw new Error(`after ${key}: focus on ${await focused(page)}, want ${want}`); });
}

// listed returns the ids the list shows.
function listed(page) {
  return page.evaluate(() => [...document.querySelector("herald-inbox").shadowRoot.querySelectorAll("li.item")].map((li) => li.dataset.id));
}

async function waitListed(page, want, what) {
  await page.waitForFunction((want) => JSON.stringify([...document.querySelector("herald-inbox").shadowRoot.querySelectorAll("li.item")].map((li) => li.dataset.id)) === JSON.stringify(want),
    want, { timeout: 5000 }).catch(async () => { throw new Error(`${what}: the list shows ${JSON.stringify(await listed(page))}, want ${JSON.stringify(want)}`); });
}

async function waitStatus(page, re, what) {
  await page.waitForFunction((src) => new RegExp(src).test(document.querySelector("herald-inbox").shadowRoot.querySelector(".prefs-status")?.textContent || ""),
    re.source, { timeout: 5000 }).catch(async () => {
    const got = await page.evaluate(() => document.querySelector("herald-inbox").shadowRoot.querySelector(".prefs-status")?.textContent);
    throw new Error(`${what}: the status says ${JSON.stringify(got)}, want ${re}`);
  });
}

function rules(page) {
  return page.evaluate(() => [...document.querySelector("herald-inbox").shadowRoot.querySelectorAll(".mutes li span")].map((s) => s.textContent));
}

async function muteAndUnmute() {
  const user = "pat";
  // The push rules are not shown; the view must keep them.
  await api("PUT", `/v1/preferences?user=${user}`, { mutes: { push: { types: ["digest"] } } });
  const [promo] = await publish({ broadcast: true, type: "promo.spring", data: { text: "Spring sale: 20% off" } });
  const [own] = await publish({ to: [user], type: "comment", data: { text: "Bob commented on your post" } });
  const page = await newPage({ name: user });
  const other = await newPage({ name: `${user}-second-tab` });
  await openDemo(page, user);
  await openDemo(other, user);
  await waitListed(page, [own, promo], "at first");

  // Keyboard only: focus the bell, open, Tab to the settings button, Enter.
  await page.evaluate(() => document.querySelector("herald-inbox").shadowRoot.querySelector(".bell").focus());
  await page.keyboard.press("Enter");
  await page.waitForSelector("herald-inbox .panel", { state: "visible" });
  await page.evaluate(() => document.querySelector("herald-inbox").shadowRoot.querySelector(".mark-all").focus());
  await press(page, "Tab", "settings-button");
  await press(page, "Enter", "#mute-kind");
  if (!(await page.isVisible("herald-inbox .settings")) || (await page.isVisible("herald-inbox .scroller"))) throw new Error("the settings view did not replace the list");
  const expanded = await page.evaluate(() => document.querySelector("herald-inbox").shadowRoot.querySelector(".settings-button").getAttribute("aria-expanded"));
  if (expanded !== "true") throw new Error(`the settings button says aria-expanded=${expanded}`);
  log("keyboard: the settings button opens the view, focus on its first control");

  await page.keyboard.press("ArrowDown"); // Types starting with
  await page.waitForFunction(() => document.querySelector("herald-inbox").shadowRoot.querySelector("#mute-kind").value === "prefixes", null, { timeout: 2000 });
  await press(page, "Tab", "#mute-value");
  await page.keyboard.type("promo.");
  await page.keyboard.press("Enter");
  await waitStatus(page, /Saved/, "mute promo.");
  const stored = await api("GET", `/v1/preferences?user=${user}`);
  if (JSON.stringify(stored.mutes.in_app.prefixes) !== '["promo."]' || JSON.stringify(stored.mutes.push.types) !== '["digest"]') {
    throw new Error(`stored preferences ${JSON.stringify(stored)}`);
  }
  if (JSON.stringify(await rules(page)) !== '["Types starting with: promo."]') throw new Error(`rules shown: ${await rules(page)}`);
  log("keyboard: a prefix muted and saved; the push rules kept");
  await audit(page, "settings, light");
  await page.screenshot({ path: join(shots, "settings-1280-light.png") });

  // Back to the list: the muted broadcast has left it, in both tabs.
  await press(page, "Escape", "settings-button");
  if (!(await page.isVisible("herald-inbox .scroller"))) throw new Error("Escape did not bring the list back");
  await waitListed(page, [own], "after the mute");
  await waitListed(other, [own], "the second tab, after the mute");
  log("the muted broadcast left the list, in this tab and the other");

  // Live: a muted broadcast never shows, a critical one and others do.
  await publish({ broadcast: true, type: "promo.summer", data: { text: "Summer sale" } });
  const [urgent] = await publish({ broadcast: true, type: "promo.recall", critical: true, data: { text: "Product recall: please read" } });
  const [release] = await publish({ broadcast: true, type: "release", data: { text: "Herald 1.5 is out" } });
  await waitListed(page, [release, urgent, own], "live, after the mute");
  await waitListed(other, [release, urgent, own], "live, the second tab");
  const toasts = await other.evaluate(() => [...document.querySelector("herald-inbox").shadowRoot.querySelectorAll(".toast .title")].map((t) => t.textContent));
  if (toasts.some((t) => /Summer/.test(t))) throw new Error(`a muted broadcast was toasted: ${toasts}`);
  log("live: the muted broadcast did not show, the critical one and the release did");

  // A refusal is said, and changes nothing.
  await page.click("herald-inbox .settings-button");
  await page.waitForSelector("herald-inbox .settings", { state: "visible" });
  await page.selectOption("herald-inbox #mute-kind", "types");
  await page.fill("herald-inbox #mute-value", "herald.connected");
  await page.press("herald-inbox #mute-value", "Enter");
  await waitStatus(page, /Could not save.*reserved/, "a reserved type");
  if (JSON.stringify(await rules(page)) !== '["Types starting with: promo."]') throw new Error(`after a refusal, rules shown: ${await rules(page)}`);
  log("a refused rule is said in the view, and the rules stay");

  // Unmute with the keyboard: Tab from the name field reaches the rule's button.
  await page.fill("herald-inbox #mute-value", "");
  await page.focus("herald-inbox #mute-value");
  await press(page, "Tab", "button:Mute");
  await press(page, "Tab", "unmute:prefixes:promo.");
  await page.keyboard.press("Enter");
  await waitStatus(page, /Saved/, "unmute");
  await page.waitForFunction(() => !document.querySelector("herald-inbox").shadowRoot.querySelector(".mutes li"), null, { timeout: 5000 });
  const after = await api("GET", `/v1/preferences?user=${user}`);
  if (after.mutes.in_app.prefixes.length || JSON.stringify(after.mutes.push.types) !== '["digest"]') throw new Error(`after unmuting: ${JSON.stringify(after)}`);
  await press(page, "Escape", "settings-button");
  const all = (await api("GET", `/v1/notifications?user=${user}&limit=10`)).notifications.map((n) => n.id);
  await waitListed(page, all, "after unmuting");
  await waitListed(other, all, "the second tab, after unmuting");
  if (!all.includes(promo)) throw new Error(`the inbox after unmuting lacks the first promo: ${all}`);
  log("keyboard: unmuted; the promos are back in both tabs");
  await press(page, "Escape", "bell");
}

async function looks() {
  for (const [width, scheme] of [[1280, "dark"], [390, "light"], [390, "dark"]]) {
    const user = `sam-${width}-${scheme}`;
    await api("PUT", `/v1/preferences?user=${user}`, { mutes: { in_app: { types: ["digest.weekly"], prefixes: ["marketing."], topics: ["org/acme/billing", "issue:42"] } } });
    const page = await newPage({ width, height: width > 480 ? 800 : 844, scheme, name: user });
    await openDemo(page, user);
    await page.evaluate(() => document.querySelector("herald-inbox").settings());
    await page.waitForFunction(() => document.querySelectorAll("herald-inbox").length && document.querySelector("herald-inbox").shadowRoot.querySelectorAll(".mutes li").length === 4, null, { timeout: 5000 });
    const overflow = await page.evaluate(() => {
      const s = document.querySelector("herald-inbox").shadowRoot.querySelector(".settings");
      return s.scrollWidth - s.clientWidth;
    });
    if (overflow > 0) throw new Error(`the settings view scrolls sideways by ${overflow} px at ${width}`);
    const shot = join(shots, `settings-${width}-${scheme}.png`);
    await page.screenshot({ path: shot });
    log(`screenshot ${shot}`);
    // axe takes seconds a run on a busy machine: the light view is audited above, dark here,
    // and the sheet in light (its colours are the dark view's).
    if (!(width === 390 && scheme === "dark")) await audit(page, `settings, ${width} px, ${scheme}`);
  }
}

try {
  await muteAndUnmute();
  await looks();
  if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
  log(`axe audited: ${audited.join(", ")}`);
  console.log("ok");
} catch (err) {
  console.log(`FAIL: ${err.message}`);
  for (const { page, name } of pages) await page.screenshot({ path: join(shots, `failure-prefs-${name}.png`) }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
