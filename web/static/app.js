// The demo inbox: a bell, a badge, a dropdown, toasts, and (in dev mode) a form to send.
import { Herald } from "/herald.js";

const config = JSON.parse(document.getElementById("herald-config").textContent);
const $ = (id) => document.getElementById(id);

let herald = null;
let unread = 0;
let nextBefore = null;
const items = new Map(); // id → {n, el}

function setBadge(n) {
  unread = Math.max(0, n);
  $("badge").textContent = unread > 99 ? "99+" : String(unread);
  $("badge").hidden = unread === 0;
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

function markLocal(ids, read) {
  for (const id of ids) {
    const it = items.get(id);
    if (!it) continue;
    it.n.read = read;
    it.el.classList.toggle("unread", !read);
  }
}

async function toggleRead(id) {
  const it = items.get(id);
  if (!it) return;
  const read = !it.n.read;
  markLocal([id], read);
  setBadge(unread + (read ? -1 : 1));
  try {
    await (read ? herald.markRead(id) : herald.markUnread(id));
  } catch (err) {
    markLocal([id], !read);
    setBadge(unread + (read ? 1 : -1));
    toast(`Could not update: ${err.message}`, "error");
  }
}

async function loadPage() {
  const page = await herald.list({ limit: 10, before: nextBefore || undefined });
  for (const n of page.notifications) add(n, { atTop: false });
  nextBefore = page.next_before;
  $("more").hidden = !nextBefore;
}

// reload replaces the list and the badge with the server's. Both are fetched before anything is
// replaced, in one synchronous step after the last await: a notification that arrives live
// meanwhile is either in the fetched page and count, or arrives after them and is counted once.
async function reload() {
  const [page, count] = await Promise.all([herald.list({ limit: 10 }), herald.unreadCount()]);
  items.clear();
  $("list").replaceChildren();
  $("empty").hidden = true;
  for (const n of page.notifications) add(n, { atTop: false });
  $("empty").hidden = items.size > 0;
  nextBefore = page.next_before;
  $("more").hidden = !nextBefore;
  setBadge(count);
}

function toast(message, kind = "info") {
  const t = document.createElement("div");
  t.className = "toast " + kind;
  t.textContent = message;
  $("toasts").append(t);
  setTimeout(() => t.remove(), 4000);
}

const stateLabels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "offline" };

function start(opts) {
  $("login").hidden = true;
  $("bell").disabled = false;
  $("who").textContent = opts.user ? `signed in as ${opts.user}` : "signed in with a token";
  herald = new Herald(opts);
  herald.onState((s) => {
    $("state").dataset.state = s;
    $("state").textContent = stateLabels[s] || s;
    // Each time the stream is (re)established, reload from the server: herald.read events
    // sent while this tab was away are not replayed. The stream is registered before the
    // browser sees it open, so nothing published from then on is missed.
    if (s === "live") reload().catch((err) => toast(`Could not load the inbox: ${err.message}`, "error"));
  });
  herald.on("*", (n) => {
    // A replay after a reconnect may bring what the reloaded page already shows.
    if (!add({ ...n, read: false }, { atTop: true })) return;
    setBadge(unread + 1);
    toast(`${n.type}: ${text(n)}`);
  });
  herald.onRead((c) => {
    if (c.all) markLocal([...items.keys()], true);
    else markLocal(c.ids || [], c.read);
    if (typeof c.unread === "number") setBadge(c.unread);
  });
  herald.onMissed(() => reload());
  herald.connect();
  if (config.dev) $("send").hidden = false;
}

$("bell").addEventListener("click", () => {
  const open = $("panel").hidden;
  $("panel").hidden = !open;
  $("bell").setAttribute("aria-expanded", String(open));
});
$("more").addEventListener("click", () => loadPage());
$("read-all").addEventListener("click", async () => {
  try {
    await herald.markAllRead();
    markLocal([...items.keys()], true);
    setBadge(0);
  } catch (err) {
    toast(`Could not mark all read: ${err.message}`, "error");
  }
});

$("dev-login").addEventListener("submit", (e) => {
  e.preventDefault();
  const user = $("user").value.trim();
  history.replaceState(null, "", "?user=" + encodeURIComponent(user));
  start({ user });
});
$("token-login").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  // EventSource cannot send a header: the stream authenticates with the cookie, as a real app's
  // backend would set it (there, HttpOnly).
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${config.cookie}=${token}; Path=/; SameSite=Strict${secure}`;
  sessionStorage.setItem("herald-token", token);
  start({ token });
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

// Pick up where the page was: ?user= in dev mode, a token in this tab's session otherwise.
const params = new URLSearchParams(location.search);
if (config.dev) {
  $("dev-login").hidden = false;
  $("to").value = params.get("user") || "alice";
  if (params.get("user")) start({ user: params.get("user") });
} else {
  $("token-login").hidden = false;
  const token = sessionStorage.getItem("herald-token");
  if (token) start({ token });
}
