// The demo inbox: a bell, a badge, a dropdown, toasts, and (in dev mode) a form to send.
import { Herald } from "/herald.js";

const config = JSON.parse(document.getElementById("herald-config").textContent);
const $ = (id) => document.getElementById(id);

let herald = null;
let token = ""; // token mode: this tab's token (sessionStorage), which the stream's cookie carries
// The badge counts what is unseen: it resets when the panel opens (markSeen), while items stay
// unread until clicked. Every count comes from the server, which knows what each tab saw.
let unseen = 0;
let nextBefore = null;
const items = new Map(); // id → {n, el}
// While a reload fetches, live notifications wait here: the reload replaces the list.
let arrivedDuringReload = null;
let arrivals = 0; // live notifications so far: tells a count request that one raced it

function setBadge(n) {
  unseen = Math.max(0, n);
  $("badge").textContent = unseen > 99 ? "99+" : String(unseen);
  $("badge").hidden = unseen === 0;
}

function text(n) {
  const d = n.data;
  if (d && typeof d === "object" && typeof d.text === "string") return d.text;
  if (typeof d === "string") return d;
  return d === null ? "" : JSON.stringify(d);
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function render(n) {
  const li = document.createElement("li");
  li.className = "item" + (n.read ? "" : " unread");
  li.dataset.id = n.id;
  li.tabIndex = 0;
  const type = document.createElement("span");
  type.className = "type";
  type.textContent = n.broadcast ? `${n.type} · everyone` : n.type;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text(n);
  const when = document.createElement("time");
  when.dateTime = n.created_at;
  when.textContent = ago(n.created_at);
  li.append(type, body, when);
  li.addEventListener("click", () => toggleRead(n.id));
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") toggleRead(n.id); });
  return li;
}

// add shows n unless it is shown already, and reports whether it was new.
function add(n, { atTop }) {
  if (items.has(n.id)) return false;
  const el = render(n);
  items.set(n.id, { n, el });
  if (atTop) $("list").prepend(el); else $("list").append(el);
  $("empty").hidden = true;
  return true;
}

// showLive puts a notification from the stream at the top, and reports whether it was new.
// One older than the pages loaded comes from a long replay after a reconnect: the reload that
// followed counted it, and "Load older" shows it in its place.
function showLive(n) {
  if (nextBefore && BigInt(n.id) < BigInt(nextBefore)) return false;
  return add({ ...n, read: false }, { atTop: true });
}

function markLocal(ids, read) {
  for (const id of ids) {
    const it = items.get(id);
    if (!it) continue;
    it.n.read = read;
    it.el.classList.toggle("unread", !read);
  }
}

// toggleRead marks an item read or unread. The badge follows the herald.read event the change
// sends to every tab, this one included: only the server knows whether the item was unseen.
async function toggleRead(id) {
  const it = items.get(id);
  if (!it) return;
  const read = !it.n.read;
  markLocal([id], read);
  try {
    await (read ? herald.markRead(id) : herald.markUnread(id));
  } catch (err) {
    markLocal([id], !read);
    failed(err, "Could not update");
  }
}

// countNow returns the unseen count. The server cannot say which notifications it counted: if
// one arrived while the request was out, it may or may not be in, so ask again (a few times at
// most, so that a busy stream cannot stall a reload).
async function countNow() {
  for (let tries = 1; ; tries++) {
    const seen = arrivals;
    const { unseen: count } = await herald.counts();
    if (arrivals === seen || tries === 3) return count;
  }
}

// markSeen tells the server the panel shows everything up to its newest item: the badge goes
// to what arrived since (nothing, unless one raced the request).
async function markSeen() {
  const newest = $("list").firstElementChild;
  if (!newest) return;
  const before = arrivals;
  try {
    const { unseen: count } = await herald.markSeen(newest.dataset.id);
    setBadge(arrivals === before ? count : await countNow());
  } catch (err) {
    failed(err, "Could not mark seen");
  }
}

// dropLocal takes archived items off the list: the panel shows the inbox.
function dropLocal(ids) {
  for (const id of ids) {
    const it = items.get(id);
    if (!it) continue;
    it.el.remove();
    items.delete(id);
  }
  $("empty").hidden = items.size > 0;
}

async function loadPage() {
  const before = nextBefore;
  const page = await herald.list({ limit: 10, before: before || undefined });
  if (nextBefore !== before) return; // a reload replaced the list meanwhile
  for (const n of page.notifications) add(n, { atTop: false });
  nextBefore = page.next_before;
  $("more").hidden = !nextBefore;
  $("load-error").hidden = true;
}

// reloadOnce replaces the list and the badge with the server's. The list is fetched before the
// count, so the count has everything the list has; what arrives live meanwhile is held back
// and shown after the swap, uncounted: the count, asked after it arrived, has it too.
async function reloadOnce() {
  const arrived = (arrivedDuringReload = []);
  let page, count;
  try {
    page = await herald.list({ limit: 10 });
    count = await countNow();
  } catch (err) {
    arrivedDuringReload = null;
    for (const n of arrived) if (showLive(n)) setBadge(unseen + 1); // the old list stays
    throw err;
  }
  arrivedDuringReload = null;
  items.clear();
  $("list").replaceChildren();
  for (const n of page.notifications) add(n, { atTop: false });
  nextBefore = page.next_before;
  $("more").hidden = !nextBefore;
  for (const n of arrived) showLive(n);
  $("empty").hidden = items.size > 0;
  $("load-error").hidden = true;
  setBadge(count);
}

// reload runs reloadOnce, or if one is running, once more after it: two at once would each
// swap the list and hold back live notifications in their own buffer.
let reloading = null;
let reloadAgain = false;
function reload() {
  if (reloading) {
    reloadAgain = true;
    return reloading;
  }
  reloading = (async () => {
    try {
      do {
        reloadAgain = false;
        await reloadOnce();
      } while (reloadAgain);
    } finally {
      reloading = null;
    }
  })();
  return reloading;
}

function toast(message, kind = "info") {
  const t = document.createElement("div");
  t.className = "toast " + kind;
  t.textContent = message;
  $("toasts").append(t);
  setTimeout(() => t.remove(), 4000);
}

// announce toasts a notification. A replay after a long absence can bring hundreds at once:
// the first few of each second get a toast, the rest one summary a second later.
const burst = { start: 0, shown: 0, held: 0, timer: null };
function announce(n) {
  const now = Date.now();
  if (now - burst.start >= 1000 && !burst.held) Object.assign(burst, { start: now, shown: 0 });
  if (burst.shown < 3) {
    burst.shown++;
    toast(`${n.type}: ${text(n)}`);
    return;
  }
  burst.held++;
  burst.timer ??= setTimeout(() => {
    toast(burst.held === 1 ? "1 more new notification" : `${burst.held} more new notifications`);
    Object.assign(burst, { held: 0, timer: null });
  }, 1000);
}

// failed reports a failed call; a token the server refuses means signing in again.
function failed(err, what) {
  if (err.status === 401 && !config.dev) signOut("Your token expired or was refused: paste a new one.");
  else toast(`${what}: ${err.message}`, "error");
}

function loadFailed(err) {
  $("empty").hidden = true;
  $("load-error").textContent = `Could not load the inbox: ${err.message}`;
  $("load-error").hidden = false;
  failed(err, "Could not load the inbox");
}

// The stream authenticates with this cookie (EventSource cannot send a header), as a real app's
// backend would set it (there, HttpOnly). A cookie belongs to the origin, not the tab: signing in
// in another tab replaces it. Each tab therefore keeps its own token in sessionStorage, names
// its user in the stream's URL (the server refuses another user's cookie instead of serving
// that user's feed), and writes its cookie again before it opens a stream.
const secure = location.protocol === "https:" ? "; Secure" : "";
function setCookie(value, extra = "") {
  document.cookie = `${config.cookie}=${value}; Path=/; SameSite=Strict${secure}${extra}`;
}

// subject reads the user out of a token (without verifying it: the server does that).
function subject(jwt) {
  try {
    return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || "";
  } catch {
    return "";
  }
}

// refresh is what herald.js calls before reopening a stream that ended with herald.expired or
// was refused. The demo cannot renew a token, only check it with a call that sends it as a
// header: refused there too, it has expired. Anything else (a 403 because another tab's sign-in
// replaced the cookie, a 429, a restarting server) is fixed by writing the cookie again.
async function refresh() {
  try {
    await herald.unreadCount();
  } catch (err) {
    if (err.status === 401) return signOut("Your token has expired: paste a new one.");
  }
  setCookie(token);
}

// signOut forgets this tab's credentials and starts a fresh page, so that nothing of the
// session (a reload in flight, a pending toast) outlives it. notice is shown on the login form.
function signOut(notice) {
  if (herald) herald.close();
  if (token) {
    sessionStorage.removeItem("herald-token");
    // Clear the cookie only if it is this tab's: another tab may have signed in since.
    if (document.cookie.split("; ").includes(`${config.cookie}=${token}`)) setCookie("", "; Max-Age=0");
  }
  if (notice) sessionStorage.setItem("herald-notice", notice);
  location.replace(location.pathname);
}

const stateLabels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "offline" };

function start(opts) {
  $("login").hidden = true;
  $("bell").disabled = false;
  $("sign-out").hidden = false;
  $("who").textContent = `signed in as ${opts.user}`;
  herald = new Herald(opts);
  herald.onState((s) => {
    $("state").dataset.state = s;
    $("state").textContent = stateLabels[s] || s;
    // Each time the stream is (re)established, reload from the server: herald.read events
    // sent while this tab was away are not replayed. The stream is registered before the
    // browser sees it open, so nothing published from then on is missed.
    if (s === "live") reload().catch(loadFailed);
  });
  herald.on("*", (n) => {
    arrivals++;
    announce(n);
    if (arrivedDuringReload) arrivedDuringReload.push(n);
    else if (showLive(n)) setBadge(unseen + 1); // else: a replay of what the reload showed
  });
  herald.onRead((c) => {
    if (c.all) markLocal([...items.keys()], true);
    else markLocal(c.ids || [], c.read);
    if (typeof c.unseen === "number") setBadge(c.unseen);
  });
  herald.onSeen((c) => setBadge(c.unseen));
  herald.onArchived((c) => {
    // Archived elsewhere: off the list. Brought back: it belongs somewhere in the list, which a
    // reload puts it.
    if (!c.archived) reload().catch(loadFailed);
    else if (c.all) dropLocal([...items.values()].filter((it) => it.n.read).map((it) => it.n.id));
    else dropLocal(c.ids || []);
    setBadge(c.unseen);
  });
  herald.onMissed(() => reload().catch(loadFailed));
  herald.connect();
  if (config.dev) $("send").hidden = false;
}

// startWithToken signs in with t, or says why it cannot.
function startWithToken(t) {
  const user = subject(t);
  if (!user) {
    $("login-notice").textContent = "That is not a subscriber token (a JWT naming a user in sub).";
    $("login-notice").hidden = false;
    return;
  }
  token = t;
  sessionStorage.setItem("herald-token", t);
  setCookie(t);
  // Inbox calls send the token as a header, so another tab's cookie never matters to them.
  start({ user, token: t, refresh });
}

$("bell").addEventListener("click", () => {
  const open = $("panel").hidden;
  $("panel").hidden = !open;
  $("bell").setAttribute("aria-expanded", String(open));
  if (open) markSeen();
});
$("more").addEventListener("click", () => loadPage().catch(loadFailed));
$("read-all").addEventListener("click", async () => {
  // Only what was shown when the request left: a notification arriving meanwhile may be newer
  // than what the server marked. The badge is the server's count after the change.
  const shown = [...items.keys()];
  try {
    await herald.markAllRead();
    markLocal(shown, true);
    setBadge(await countNow());
  } catch (err) {
    failed(err, "Could not mark all read");
  }
});
$("sign-out").addEventListener("click", () => signOut());

$("dev-login").addEventListener("submit", (e) => {
  e.preventDefault();
  const user = $("user").value.trim();
  history.replaceState(null, "", "?user=" + encodeURIComponent(user));
  start({ user });
});
$("token-login").addEventListener("submit", (e) => {
  e.preventDefault();
  startWithToken($("token").value.trim());
});

$("send-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { type: $("type").value, data: { text: $("text").value } };
  if ($("broadcast").checked) body.broadcast = true;
  else body.to = $("to").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    await herald.publish(body);
    $("sent").textContent = "sent";
    setTimeout(() => { $("sent").textContent = ""; }, 1500);
  } catch (err) {
    $("sent").textContent = err.message;
  }
});

// Pick up where the page was: ?user= in dev mode, a token in this tab's session otherwise (its
// cookie rewritten: another tab may have replaced or cleared it).
const notice = sessionStorage.getItem("herald-notice");
if (notice) {
  sessionStorage.removeItem("herald-notice");
  $("login-notice").textContent = notice;
  $("login-notice").hidden = false;
}
const params = new URLSearchParams(location.search);
if (config.dev) {
  $("dev-login").hidden = false;
  $("to").value = params.get("user") || "alice";
  if (params.get("user")) start({ user: params.get("user") });
} else {
  $("token-login").hidden = false;
  const saved = sessionStorage.getItem("herald-token");
  if (saved) startWithToken(saved);
}
