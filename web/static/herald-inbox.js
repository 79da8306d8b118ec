/**
 * herald-inbox.js — <herald-inbox>, a notification bell and inbox any page can drop in, built on
 * herald.js. No framework, no build step; styles and markup live in an open shadow root.
 *
 *   <script type="module" src="https://herald.example.com/herald-inbox.js"></script>
 *   <herald-inbox server="https://herald.example.com" title-count></herald-inbox>
 *
 * Attributes: server (Herald's URL; default the page's origin), user (dev mode, or a guard with
 * auth on), auth ("cookie", the default, or "token": the stream also takes the token in its URL),
 * types (comma-separated), target ("_self" or "_blank": where an item's url opens), theme
 * ("light" or "dark"; default: the system's), locale (default: the page's lang), title-count
 * (the tab's title shows the unseen count), align ("end" or "start": which edge of the bell the
 * panel lines up with), page-size (default 20), push (offer a Web Push switch in the panel; the
 * server must have push on, docs/push.md).
 * Properties: token, refresh (as in herald.js), strings (texts, merged with the defaults),
 * renderItem ((item) => Node), and read-only herald, unseen, unread, connection.
 * Methods: open(), close(), toggle(), reload(), settings() (opens the panel on the settings view:
 * what the user muted, see "preferences" below).
 * Events (bubbling, composed): herald-notification {notification} (cancel: no toast),
 * herald-click {notification, action, url} (cancel: no navigation, the app routes),
 * herald-state {connection, unseen, unread, open, view, error}.
 *
 * Every text is set as text (textContent), never parsed as HTML, and only http(s) URLs or paths
 * are ever followed or loaded (safeUrl), whatever the server sent.
 */
import { Herald } from "./herald.js";

const DEFAULT_STRINGS = {
  heading: "Notifications",
  bell: (n) => (n ? `Notifications, ${n} unseen` : "Notifications"),
  close: "Close",
  markAllRead: "Mark all read",
  filters: "Show",
  all: "All",
  unread: "Unread",
  archived: "Archived",
  emptyAll: "You're all caught up.",
  emptyUnread: "No unread notifications.",
  emptyArchived: "Nothing archived.",
  loading: "Loading…",
  error: "Could not load notifications.",
  retry: "Try again",
  reconnecting: "Reconnecting…",
  unreadLabel: "Unread",
  more: "More actions",
  markRead: "Mark as read",
  markUnread: "Mark as unread",
  archive: "Archive",
  unarchive: "Move to inbox",
  others: (n) => `and ${n} more`,
  fewer: "Show fewer",
  open: "Open",
  dismiss: "Dismiss",
  moreNew: (n) => (n === 1 ? "1 more new notification" : `${n} more new notifications`),
  show: "Show",
  failed: "Could not update the notification.",
  // The settings view (preferences).
  settings: "Settings",
  settingsHeading: "Notification settings",
  settingsHint: "Muted notifications are not shown here. Critical ones always are.",
  muteBy: "Mute",
  muteType: "Type",
  mutePrefix: "Types starting with",
  muteTopic: "Topic",
  muteValue: "Name",
  muteAdd: "Mute",
  mutedHeading: "Muted",
  mutedNone: "Nothing muted.",
  mutedRule: (kind, value) => `${kind}: ${value}`,
  unmute: "Unmute",
  unmuteLabel: (kind, value) => `Unmute ${kind.toLowerCase()} ${value}`,
  backToList: "Back to notifications",
  saved: "Saved.",
  prefsFailed: "Could not save the settings.",
  prefsLoadFailed: "Could not load the settings.",
};

// fmt renders a string that may be a function of n, or hold "{n}".
const fmt = (s, n) => (typeof s === "function" ? s(n) : String(s).replace("{n}", n));
// fmt2 renders a string that may be a function of a and b, or hold "{a}" and "{b}".
const fmt2 = (s, a, b) => (typeof s === "function" ? s(a, b) : String(s).replace("{a}", a).replace("{b}", b));

/**
 * safeUrl returns url resolved against the page if it may be followed or loaded: an http(s) URL
 * or a path (which resolves to the page's origin). Anything else (javascript:, data:, vbscript:,
 * a malformed URL) gives null. The result, not the input, is what gets used.
 */
export function safeUrl(url, base = location.href) {
  if (typeof url !== "string" || !url) return null;
  let u;
  try {
    u = new URL(url, base);
  } catch {
    return null;
  }
  return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
}

// titleOf is what an item is called: its title, else data.text, else string data, else its type.
// Never JSON: data is the publisher's, not text for people.
export function titleOf(n) {
  if (typeof n.title === "string" && n.title) return n.title;
  const d = n.data;
  if (d && typeof d === "object" && typeof d.text === "string" && d.text) return d.text;
  if (typeof d === "string" && d) return d;
  return String(n.type || "");
}

// h makes an element with properties and children (strings become text nodes).
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "part" || k === "role" || k.startsWith("aria-")) el.setAttribute(k, v);
    else el[k] = v;
  }
  el.append(...children);
  return el;
}

const ICON = (d) => `<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="${d}"/></svg>`;
const BELL = "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z";
const CLOSE = "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z";
const GEAR = "M19.4 13a7.6 7.6 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7.4 7.4 0 0 0-1.7-1L15 3.3h-4l-.4 2.6a7.4 7.4 0 0 0-1.7 1l-2.5-1-2 3.5L6.6 11a7.6 7.6 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1a7.4 7.4 0 0 0 1.7 1l.4 2.6h4l.4-2.6a7.4 7.4 0 0 0 1.7-1l2.5 1 2-3.5zM12 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7z";
const DOTS = "M12 8a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 6a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 6a2 2 0 1 0 0-4 2 2 0 0 0 0 4z";

// Web Push's texts (the switch at the foot of the panel); strings may override them too.
const PUSH_STRINGS = {
  push: "Push notifications",
  pushHelp: "Get notifications on this device when Notifications isn't open.",
  pushDenied: "Notifications are blocked for this site. To get them, allow notifications in your browser's site settings, then switch this on again.",
  pushDismissed: "Your browser did not allow notifications. Switch this on again to be asked once more.",
  pushFailed: "Could not change push notifications. Try again later.",
};
const PUSH_CSS = `.push{display:grid;gap:4px;padding:8px 16px;border-top:1px solid var(--_border)}
.push .push-switch{justify-self:start;display:flex;gap:8px;align-items:center}
.push .push-switch::before{content:"";width:28px;height:16px;border-radius:8px;background:var(--_border);box-shadow:inset 0 0 0 2px var(--_bg)}
.push .push-switch[aria-checked=true]::before{background:var(--_accent)}
.push .push-note{padding:0;text-align:start;font-size:.85em}`;
let pushSheet = null; // PUSH_CSS as one constructed sheet, shared by every element

// The skeleton: static markup, no content. Texts are set with textContent afterwards.
const TEMPLATE = `<button part="bell" class="bell" type="button" aria-haspopup="dialog" aria-expanded="false" aria-controls="panel">${ICON(BELL)}<span part="badge" class="badge" aria-hidden="true" hidden></span></button>
<div part="panel" id="panel" class="panel" role="dialog" aria-labelledby="heading" tabindex="-1" hidden>
<div part="header" class="head"><h2 part="heading" id="heading"></h2><span part="status" class="status" role="status"></span>
<button part="mark-all-read" class="link mark-all" type="button"></button><button part="settings-button" class="icon settings-button" type="button" aria-expanded="false" aria-controls="settings">${ICON(GEAR)}</button><button part="close" class="icon close" type="button">${ICON(CLOSE)}</button></div>
<div part="filters" class="filters" role="group"><button part="filter" type="button" data-view="all"></button><button part="filter" type="button" data-view="unread"></button><button part="filter" type="button" data-view="archived"></button></div>
<div part="scroller" class="scroller"><ul part="list" class="list"></ul><p part="loading" class="note loading"></p><p part="empty" class="note empty" hidden></p>
<p part="error" class="note error" role="alert" hidden><span></span> <button class="link retry" type="button"></button></p><div class="sentinel"></div></div>
<section part="settings" id="settings" class="settings" aria-labelledby="settings-heading" hidden></section></div>
<div part="toasts" class="toasts" aria-live="polite"></div>`;

// Colours: --herald-* custom properties set by the page win; these are the defaults.
const LIGHT = "--_fg:var(--herald-fg,#1f2328);--_muted:var(--herald-muted,#59636e);--_bg:var(--herald-bg,#fff);--_hover:var(--herald-hover,#eff2f5);--_border:var(--herald-border,#d1d9e0);--_accent:var(--herald-accent,#0969da);--_unread:var(--herald-unread-bg,#ddf4ff);--_badge:var(--herald-badge-bg,#cf222e);--_badge-fg:var(--herald-badge-fg,#fff);--_toast:var(--herald-toast-bg,#25292e);--_toast-fg:var(--herald-toast-fg,#fff);--_error:var(--herald-error,#d1242f);--_shadow:var(--herald-shadow,0 8px 24px rgba(66,74,83,.25));color-scheme:light;";
const DARK = "--_fg:var(--herald-fg,#f0f6fc);--_muted:var(--herald-muted,#9aa3ad);--_bg:var(--herald-bg,#151b23);--_hover:var(--herald-hover,#262c36);--_border:var(--herald-border,#3d444d);--_accent:var(--herald-accent,#4493f8);--_unread:var(--herald-unread-bg,#172b45);--_badge:var(--herald-badge-bg,#cf222e);--_badge-fg:var(--herald-badge-fg,#fff);--_toast:var(--herald-toast-bg,#f0f6fc);--_toast-fg:var(--herald-toast-fg,#1f2328);--_error:var(--herald-error,#ff7b72);--_shadow:var(--herald-shadow,0 8px 24px rgba(1,4,9,.75));color-scheme:dark;";

const CSS = `:host{display:inline-block;position:relative;vertical-align:middle;${LIGHT}}
@media (prefers-color-scheme:dark){:host(:not([theme=light])){${DARK}}}
:host([theme=dark]){${DARK}}
*{box-sizing:border-box}[hidden]{display:none!important}
button{font:inherit;color:inherit;cursor:pointer}
:focus-visible{outline:2px solid var(--herald-focus,var(--_accent));outline-offset:-2px}
.bell{position:relative;display:grid;place-items:center;width:var(--herald-bell-size,40px);height:var(--herald-bell-size,40px);padding:0;border:0;border-radius:50%;background:none;color:var(--herald-bell-color,currentColor)}
.bell:focus-visible{outline-offset:1px}
.bell:hover{background:color-mix(in srgb,currentColor 12%,transparent)}
.bell svg{width:60%;height:60%}
.badge{position:absolute;top:1px;right:0;min-width:18px;height:18px;padding:0 5px;border-radius:9px;background:var(--_badge);color:var(--_badge-fg);font:700 11px/18px system-ui,sans-serif;text-align:center}
.panel{position:fixed;z-index:var(--herald-z,1000);top:var(--_top,56px);right:var(--_right,8px);left:var(--_left,auto);width:min(var(--herald-panel-width,380px),calc(100vw - 16px));max-height:min(var(--herald-panel-max-height,560px),var(--_maxh,80vh));display:flex;flex-direction:column;overflow:hidden;background:var(--_bg);color:var(--_fg);border:1px solid var(--_border);border-radius:var(--herald-radius,10px);box-shadow:var(--_shadow);font:var(--herald-font,14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif);text-align:start;outline:0}
.head{display:flex;align-items:center;gap:8px;padding:8px 8px 4px 14px}
h2{margin:0;flex:1;font-size:1.07em}
.status{font-size:.85em;color:var(--_muted)}.status:empty{display:none}
.link{background:none;border:0;padding:4px 6px;border-radius:6px;color:var(--_accent)}
.link:hover{text-decoration:underline}
.icon{display:grid;place-items:center;width:32px;height:32px;padding:0;border:0;border-radius:6px;background:none;color:var(--_muted)}
.icon:hover{background:var(--_hover);color:var(--_fg)}
.filters{display:flex;gap:4px;padding:2px 10px 8px;border-bottom:1px solid var(--_border)}
.filters button{border:1px solid transparent;background:none;border-radius:999px;padding:2px 10px;color:var(--_muted)}
.filters button:hover{color:var(--_fg)}
.filters [aria-pressed=true]{background:var(--_hover);border-color:var(--_border);color:var(--_fg);font-weight:600}
.scroller{flex:1;overflow:auto;overscroll-behavior:contain}
.list{list-style:none;margin:0;padding:0}
.item{position:relative;display:grid;grid-template-columns:minmax(0,1fr) auto;border-bottom:1px solid var(--_border)}
.unread{background:var(--_unread)}
.main{grid-column:1;display:flex;gap:10px;align-items:flex-start;min-width:0;padding:10px 4px 10px 14px;border:0;background:none;color:inherit;text-align:start;text-decoration:none;font:inherit}
.main:hover .title{text-decoration:underline}
.member .main{padding-left:36px}
.avatar{flex:none;display:grid;place-items:center;width:36px;height:36px;border-radius:50%;overflow:hidden;background:var(--_hover);color:var(--_muted);font-weight:600}
.member .avatar{width:28px;height:28px}
.avatar img{width:100%;height:100%;object-fit:cover}
.text{display:grid;gap:1px;min-width:0;flex:1}
.title,.body{overflow-wrap:anywhere;white-space:pre-line}
.unread .title{font-weight:600}
.body{color:var(--_muted)}
.list .body{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:var(--herald-body-lines,3);overflow:hidden}
time{font-size:.85em;color:var(--_muted)}
.unread .main::after{content:"";flex:none;width:8px;height:8px;margin-top:6px;border-radius:50%;background:var(--_accent)}
.dots{grid-column:2;margin:6px 6px 0 0}
.actions{grid-column:1/-1;display:flex;flex-wrap:wrap;gap:6px;padding:0 14px 10px 60px}
.member .actions{padding-left:74px}
.actions a,.toast a{padding:2px 10px;border:1px solid var(--_border);border-radius:6px;background:var(--_bg);color:var(--_accent);text-decoration:none;font-size:.93em}
.actions a:hover,.toast a:hover{text-decoration:underline}
.group{grid-column:1/-1;justify-self:start;margin:-6px 0 8px 56px;font-size:.93em}
.menu{position:absolute;z-index:2;right:8px;top:40px;display:grid;min-width:170px;padding:4px;background:var(--_bg);border:1px solid var(--_border);border-radius:8px;box-shadow:var(--_shadow)}
.menu.up{top:auto;bottom:calc(100% - 36px)}
.menu button{padding:6px 10px;border:0;border-radius:4px;background:none;text-align:start}
.menu button:hover,.menu button:focus{background:var(--_hover)}
.note{margin:0;padding:24px 16px;text-align:center;color:var(--_muted)}
.error{color:var(--_error)}
.sentinel{height:1px}
.toasts{position:fixed;z-index:var(--herald-z,1000);right:16px;bottom:16px;display:grid;gap:8px;width:min(360px,calc(100vw - 32px));font:var(--herald-font,14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif)}
.toast{display:grid;grid-template-columns:auto minmax(0,1fr) auto;gap:10px;align-items:start;padding:10px 8px 10px 12px;border-radius:var(--herald-radius,10px);background:var(--_toast);color:var(--_toast-fg);box-shadow:var(--_shadow)}
.toast .body{color:inherit;opacity:.85}
.toast .actions{padding:4px 0 0;grid-column:auto}
.toast a{border-color:currentColor;background:none;color:inherit}
.toast .icon{width:28px;height:28px;color:inherit}.toast .icon:hover{background:rgba(128,128,128,.25)}
.toast .avatar{width:32px;height:32px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.settings{flex:1;overflow:auto;padding:4px 14px 14px;border-top:1px solid var(--_border)}
.settings h3{margin:8px 0 2px;font-size:1em}.settings h4{margin:14px 0 4px;font-size:.93em;color:var(--_muted)}
.settings .hint{margin:0 0 10px;color:var(--_muted);font-size:.93em}
.mute-form{display:flex;flex-wrap:wrap;gap:6px;align-items:end}
.mute-form label{display:grid;gap:2px;font-size:.85em;color:var(--_muted)}
.mute-form select,.mute-form input{font:inherit;color:var(--_fg);background:var(--_bg);border:1px solid var(--_border);border-radius:6px;padding:4px 6px}
.mute-form .grow{flex:1 1 8em}.mute-form input{width:100%}
.settings-button[aria-expanded=true]{background:var(--_hover);color:var(--_fg)}
.mute-form button,.mutes button{padding:4px 10px;border:1px solid var(--_border);border-radius:6px;background:var(--_bg);color:var(--_accent)}
.mutes{list-style:none;margin:0;padding:0}
.mutes li{display:flex;gap:8px;align-items:center;justify-content:space-between;padding:6px 0;border-bottom:1px solid var(--_border);overflow-wrap:anywhere}
.settings .note{padding:8px 0;text-align:start}
.prefs-status{min-height:1.4em;margin:8px 0 0;font-size:.93em;color:var(--_muted)}.prefs-status.bad{color:var(--_error)}
@media (max-width:480px){.panel{inset:0;width:auto;max-height:none;border:0;border-radius:0}.toasts{right:12px;left:12px;bottom:12px;width:auto}}
@media (prefers-reduced-motion:no-preference){.toast{animation:in .18s ease-out}@keyframes in{from{transform:translateY(8px);opacity:0}}}`;

let shared;
function adopt(root) {
  if ("adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
    // A constructed sheet is CSSOM, which a Content-Security-Policy without 'unsafe-inline'
    // allows; a <style> element would be refused there.
    if (!shared) (shared = new CSSStyleSheet()).replaceSync(CSS);
    root.adoptedStyleSheets = [shared];
  } else {
    root.prepend(h("style", { textContent: CSS }));
  }
}

const SHEET = "(max-width: 480px)";
const VIEWS = { all: "emptyAll", unread: "emptyUnread", archived: "emptyArchived" };
const byIdDesc = (a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : BigInt(b.id) < BigInt(a.id) ? -1 : 0);

/** HeraldInbox is the <herald-inbox> element. */
export class HeraldInbox extends HTMLElement {
  static observedAttributes = ["server", "user", "auth", "types", "locale", "title-count", "target", "page-size"];

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = TEMPLATE; // constant markup: no notification content is ever parsed as HTML
    adopt(root);
    const $ = (s) => root.querySelector(s);
    this.$ = {
      bell: $(".bell"), badge: $(".badge"), panel: $(".panel"), heading: $("h2"), status: $(".status"),
      markAll: $(".mark-all"), close: $(".close"), filters: $(".filters"), scroller: $(".scroller"),
      list: $(".list"), loading: $(".loading"), empty: $(".empty"), error: $(".error"),
      retry: $(".retry"), sentinel: $(".sentinel"), toasts: $(".toasts"),
      settingsButton: $(".settings-button"), settings: $(".settings"),
    };
    this._strings = { ...DEFAULT_STRINGS };
    this._renderItem = null;
    this._token = "";
    // refresh (a plain property, not set here so that one set before the upgrade stays): renews
    // credentials before the stream reopens (see herald.js); may return a token.
    this._reset();
    this._counts = { unseen: 0, unread: 0 };
    this._connection = "closed";
    this._changes = 0; // notifications and state events so far: tells a count request it raced one
    this._burst = { start: 0, shown: 0, held: 0, timer: null };
    this._wire();
    this._applyStrings();
  }

  // _reset forgets the list: a new view or a new connection starts from the server's.
  _reset() {
    this._items = new Map(); // id → item of the current view
    this._nodes = new Map(); // id → its <li>
    this._expanded = new Set(); // groups shown in full
    this._nextBefore = null;
    this._loaded = false;
    this._error = null;
    this._gen = (this._gen || 0) + 1;
    this.view ??= "all";
  }

  // --- public API -------------------------------------------------------------------------

  /** herald is the Herald client the element uses (null while disconnected). */
  get herald() { return this._herald || null; }
  /** unseen is the badge's count; unread, the notifications not read. */
  get unseen() { return this._counts.unseen; }
  get unread() { return this._counts.unread; }
  /** connection is "connecting", "live", "reconnecting" or "closed". */
  get connection() { return this._connection; }

  /** token is a subscriber token: sent as a header on inbox calls, and in the stream's URL with auth="token". */
  get token() { return this._token; }
  set token(t) {
    if ((t || "") === this._token) return;
    this._token = t || "";
    this._restartSoon();
  }

  /** strings are the texts shown; setting merges with the defaults (values: strings, or functions of a count). */
  get strings() { return { ...this._strings }; }
  set strings(s) {
    this._strings = { ...DEFAULT_STRINGS, ...s };
    this._applyStrings();
  }

  /** renderItem renders an item's content (inside its link or button: no links or buttons of its own). */
  get renderItem() { return this._renderItem; }
  set renderItem(fn) {
    this._renderItem = typeof fn === "function" ? fn : null;
    this._rebuild();
  }

  /** open shows the panel and marks what it shows seen. */
  open() {
    if (this._open) return;
    this._open = true;
    const { panel, bell } = this.$;
    panel.hidden = false;
    bell.setAttribute("aria-expanded", "true");
    this._place();
    if (matchMedia(SHEET).matches) panel.setAttribute("aria-modal", "true");
    else panel.removeAttribute("aria-modal");
    this._focusItem(this._current(), true) || panel.focus({ preventScroll: true });
    this.$.toasts.replaceChildren(); // what they said is in the list now
    this._tick();
    this._markSeen();
    this._observe();
    this._emitState();
  }

  /** close hides the panel; by default focus returns to the bell. */
  close({ focus = true } = {}) {
    if (!this._open) return;
    this._open = false;
    this._closeMenus();
    this.$.panel.hidden = true;
    this.$.bell.setAttribute("aria-expanded", "false");
    if (focus) this.$.bell.focus({ preventScroll: true });
    this._emitState();
  }

  /** toggle opens or closes the panel. */
  toggle() { if (this._open) this.close(); else this.open(); }

  /** reload replaces the list and the counts with the server's. */
  reload() { return this._reload(true); }

  /** settings opens the panel on the settings view (what the user muted). */
  settings() {
    this.open();
    this._prefsShow(true);
  }

  // --- lifecycle ----------------------------------------------------------------------------

  connectedCallback() {
    // A framework may have set properties before this module defined the element: those are
    // plain own properties hiding the setters. Set them again through the setters.
    for (const p of ["token", "strings", "renderItem"]) {
      if (!Object.prototype.hasOwnProperty.call(this, p)) continue;
      const v = this[p];
      delete this[p];
      this[p] = v;
    }
    if (!this._herald) this._restartSoon(); // else it was moved, not removed: it carries on
    document.addEventListener("pointerdown", this._outside, true);
    document.addEventListener("visibilitychange", this._visible);
    addEventListener("resize", this._reposition);
    addEventListener("scroll", this._reposition, true);
    this._ticker = setInterval(() => this._tick(), 30000);
  }

  disconnectedCallback() {
    document.removeEventListener("pointerdown", this._outside, true);
    document.removeEventListener("visibilitychange", this._visible);
    removeEventListener("resize", this._reposition);
    removeEventListener("scroll", this._reposition, true);
    clearInterval(this._ticker);
    queueMicrotask(() => { // moved, not removed: keep going
      if (this.isConnected) return;
      this._stop();
      this._title(true);
    });
  }

  attributeChangedCallback(name, old, value) {
    if (old === value) return;
    if (name === "locale" || name === "target") this._rebuild();
    else if (name === "title-count") this._title();
    else this._restartSoon();
  }

  _restartSoon() {
    if (this._restartPending) return;
    this._restartPending = true;
    queueMicrotask(() => {
      this._restartPending = false;
      if (this.isConnected) this._start();
    });
  }

  _start() {
    this._stop();
    const auth = this.getAttribute("auth") || "cookie";
    const types = (this.getAttribute("types") || "").split(",").map((s) => s.trim()).filter(Boolean);
    const herald = new Herald({
      url: this.getAttribute("server") || "",
      user: this.getAttribute("user") || "",
      token: this._token,
      tokenInQuery: auth === "token",
      types,
      refresh: async () => {
        const t = this.refresh ? await this.refresh() : undefined;
        if (typeof t === "string" && t) this._token = t;
        return t;
      },
    });
    this._herald = herald;
    this._types = types;
    this._reset();
    this._render();
    herald.onState((s) => {
      if (herald !== this._herald) return;
      this._connection = s;
      this.$.status.textContent = s === "reconnecting" ? this._strings.reconnecting : "";
      // State events sent while the stream was down are not replayed: reload on every (re)connect.
      if (s === "live") this._reload(true);
      // Not live yet and nothing shown: load anyway, so that the panel says what is wrong.
      else if (s === "reconnecting" && !this._loaded && !this._reloading) this._reload(true);
      this._emitState();
    });
    herald.on("*", (n) => herald === this._herald && this._arrived(n));
    herald.onRead((c) => {
      if (herald !== this._herald) return;
      this._changes++;
      for (const it of this._items.values()) if (c.all || (c.ids || []).includes(it.id)) it.read = c.all ? true : c.read;
      this._render();
      this._setCounts(c);
    });
    herald.onSeen((c) => {
      if (herald !== this._herald) return;
      this._changes++;
      this._setCounts(c);
    });
    herald.onArchived((c) => {
      if (herald !== this._herald) return;
      this._changes++;
      // Now belonging to this view: the server knows where. Else: off the list.
      if ((this.view === "archived") === !!c.archived) this._reload(false);
      else this._drop(c.all ? [...this._items.values()].filter((it) => it.read).map((it) => it.id) : c.ids || []);
      this._setCounts(c);
    });
    herald.onMissed(() => herald === this._herald && this._reload(true));
    herald.onPreferences((c) => herald === this._herald && this._prefsChanged(c));
    herald.connect();
  }

  _stop() {
    if (this._herald) this._herald.close();
    this._herald = null;
    clearTimeout(this._countTimer);
    clearTimeout(this._seenTimer);
    if (this._io) this._io.disconnect();
    this._io = null;
  }

  // --- events from the page -------------------------------------------------------------------

  _wire() {
    const { bell, panel, close, markAll, filters, list, retry } = this.$;
    bell.addEventListener("click", () => this.toggle());
    bell.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" && !this._open) { e.preventDefault(); this.open(); }
    });
    close.addEventListener("click", () => this.close());
    this.$.settingsButton.addEventListener("click", () => this._prefsShow(!this._prefsShown));
    retry.addEventListener("click", () => this._reload(true));
    markAll.addEventListener("click", () => this._markAllRead());
    this._wirePush();
    filters.addEventListener("click", (e) => {
      const v = e.target.closest("[data-view]")?.dataset.view;
      if (v && v !== this.view) this._setView(v);
    });
    list.addEventListener("keydown", (e) => this._listKey(e));
    panel.addEventListener("keydown", (e) => this._panelKey(e));
    panel.addEventListener("focusout", (e) => {
      const to = e.relatedTarget;
      // Tabbed out of the popover: close it, leaving focus where it went.
      if (this._open && to && to !== this && !this.shadowRoot.contains(to) && !matchMedia(SHEET).matches) this.close({ focus: false });
    });
    this.shadowRoot.addEventListener("keydown", (e) => {
      if (e.key !== "Escape" || e.defaultPrevented) return;
      if (this._closeMenus(true)) return e.preventDefault();
      if (this._prefsShown) { e.preventDefault(); return this._prefsShow(false); }
      if (this._open) { e.preventDefault(); this.close(); }
    });
    this.shadowRoot.addEventListener("pointerdown", (e) => {
      if (!e.target.closest?.(".menu,.dots")) this._closeMenus();
    });
    this._outside = (e) => {
      if (!this._open || e.composedPath().includes(this)) return;
      const inside = this.shadowRoot.activeElement !== null;
      this.close({ focus: false });
      // Focus was in the panel and the click did not put it anywhere: back to the bell.
      if (inside) setTimeout(() => { if (document.activeElement === document.body || !document.activeElement) this.$.bell.focus({ preventScroll: true }); });
    };
    this._visible = () => { if (this._open && document.visibilityState === "visible") this._markSeen(); };
    this._reposition = () => { if (this._open) this._place(); };
  }

  _panelKey(e) {
    if (e.key === "ArrowDown" && !e.target.closest(".list,.settings") && !this._prefsShown && this._items.size) {
      e.preventDefault();
      this._focusItem(this._current());
    }
    if (e.key !== "Tab" || !matchMedia(SHEET).matches) return;
    // The sheet is modal: Tab cycles inside it.
    const all = [...this.$.panel.querySelectorAll("button,a[href],input,select,[tabindex='0']")].filter((el) => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length);
    if (!all.length) return;
    const at = this.shadowRoot.activeElement;
    if (e.shiftKey && (at === all[0] || at === this.$.panel)) { e.preventDefault(); all.at(-1).focus(); }
    else if (!e.shiftKey && at === all.at(-1)) { e.preventDefault(); all[0].focus(); }
  }

  _listKey(e) {
    if (e.target.closest(".menu")) return this._menuKey(e);
    const li = e.target.closest(".item");
    if (!li) return;
    const lis = [...this.$.list.children];
    const i = lis.indexOf(li);
    const to = { ArrowDown: lis[i + 1], ArrowUp: lis[i - 1], Home: lis[0], End: lis.at(-1) };
    if (!(e.key in to)) return;
    e.preventDefault();
    if (to[e.key]) this._focusItem(to[e.key]);
    else if (e.key === "ArrowDown") this._loadMore();
  }

  _menuKey(e) {
    const items = [...e.target.closest(".menu").querySelectorAll("button")];
    const i = items.indexOf(e.target);
    const to = { ArrowDown: items[(i + 1) % items.length], ArrowUp: items.at(i - 1), Home: items[0], End: items.at(-1) };
    if (e.key in to) {
      e.preventDefault();
      to[e.key].focus();
    } else if (e.key === "Tab") {
      this._closeMenus();
    }
  }

  // --- state from the server ----------------------------------------------------------------

  _query(before) {
    return {
      limit: Number(this.getAttribute("page-size")) || 20, before,
      unread: this.view === "unread", archived: this.view === "archived",
      types: this._types.length ? this._types : undefined,
    };
  }

  // _reload replaces the list, and with counts the badge, with the server's. One runs at a time;
  // asked again meanwhile, it runs once more after.
  _reload(counts) {
    this._wantCounts ||= counts;
    if (this._reloading) {
      this._again = true;
      return this._reloading;
    }
    this._reloading = (async () => {
      try {
        do {
          this._again = false;
          const c = this._wantCounts;
          this._wantCounts = false;
          await this._reloadOnce(c);
        } while (this._again);
      } catch (err) {
        this._failed(err);
      } finally {
        this._reloading = null;
      }
    })();
    return this._reloading;
  }

  // _reloadOnce fetches the list, then the counts, so that the counts include all the list has.
  // What arrives live meanwhile is held back and shown after the list is replaced.
  async _reloadOnce(withCounts) {
    const herald = this._herald, gen = this._gen;
    if (!herald) return;
    const held = (this._held = []);
    let page, counts;
    try {
      page = await herald.list(this._query());
      if (withCounts) counts = await this._countNow();
    } catch (err) {
      if (this._held === held) this._held = null;
      for (const n of held) this._showLive(n);
      throw err;
    }
    if (this._held === held) this._held = null;
    if (herald !== this._herald || gen !== this._gen) return this._again = true;
    this._items = new Map(page.notifications.map((n) => [n.id, n]));
    this._nextBefore = page.next_before;
    for (const n of held) this._showLive(n);
    this._loaded = true;
    this._error = null;
    this._render();
    if (counts) this._setCounts(counts);
    if (this._open) this._markSeen();
    this._observe();
  }

  async _loadMore() {
    const herald = this._herald, gen = this._gen, before = this._nextBefore;
    if (!herald || !before || this._loadingMore) return;
    this._loadingMore = true;
    this._render();
    try {
      const page = await herald.list(this._query(before));
      if (gen !== this._gen || this._nextBefore !== before) return;
      for (const n of page.notifications) if (!this._items.has(n.id)) this._items.set(n.id, n);
      this._nextBefore = page.next_before;
    } catch (err) {
      this._failed(err);
    } finally {
      this._loadingMore = false;
      this._render();
      this._observe(); // still in view after a short page: the observer reports it again
    }
  }

  // _observe loads more when the end of the list scrolls into view.
  _observe() {
    if (!this._open) return;
    this._io ??= new IntersectionObserver((es) => {
      if (es.some((e) => e.isIntersecting) && this._loaded) this._loadMore();
    }, { root: this.$.scroller, rootMargin: "0px 0px 240px 0px" });
    this._io.unobserve(this.$.sentinel);
    this._io.observe(this.$.sentinel);
  }

  // _countNow returns the counts. If a notification or state event came in while the request
  // was out, the answer may or may not include it: ask again (a few times at most).
  async _countNow() {
    for (let tries = 1; ; tries++) {
      const seen = this._changes;
      const c = await this._herald.counts();
      if (this._changes === seen || tries === 3) return c;
    }
  }

  _countSoon() {
    clearTimeout(this._countTimer);
    const herald = this._herald;
    this._countTimer = setTimeout(() => {
      if (herald === this._herald) this._countNow().then((c) => herald === this._herald && this._setCounts(c), () => {});
    }, 250);
  }

  _setCounts(c) {
    if (typeof c.unseen === "number") this._counts.unseen = Math.max(0, c.unseen);
    if (typeof c.unread === "number") this._counts.unread = Math.max(0, c.unread);
    const n = this._counts.unseen;
    this.$.badge.textContent = n > 99 ? "99+" : String(n);
    this.$.badge.hidden = n === 0;
    this.$.bell.setAttribute("aria-label", fmt(this._strings.bell, n));
    this._title();
    this._emitState();
  }

  // _title puts the unseen count in the tab's title (off: takes it out).
  _title(off) {
    const on = !off && this.hasAttribute("title-count");
    if (!on && !this._titled) return;
    const base = document.title.replace(/^\(\d+\+?\) /, "");
    const n = this._counts.unseen;
    document.title = on && n > 0 ? `(${n > 99 ? "99+" : n}) ${base}` : base;
    this._titled = on;
  }

  // _markSeen tells the server the panel shows everything up to its newest item.
  async _markSeen() {
    const newest = this.view !== "archived" && this._order()[0];
    const herald = this._herald;
    if (!newest || !herald || document.visibilityState === "hidden") return;
    const seen = this._changes;
    try {
      const c = await herald.markSeen(newest.id);
      if (herald === this._herald) this._setCounts(this._changes === seen ? c : await this._countNow());
    } catch (err) {
      this._failed(err, true);
    }
  }

  _arrived(n) {
    this._changes++;
    const fresh = this._held ? (this._held.push(n), false) : this._showLive(n);
    if (fresh) this._setCounts({ unseen: this._counts.unseen + 1, unread: this._counts.unread + 1 });
    this._countSoon(); // the server's count, which has n: it was committed before it was sent
    const ev = this._emit("herald-notification", { notification: n }, true);
    if (!ev.defaultPrevented && !this._open) this._toast(n);
    if (this._open && fresh) {
      clearTimeout(this._seenTimer);
      this._seenTimer = setTimeout(() => this._markSeen(), 300);
    }
  }

  // _showLive puts a live notification in the list, and says whether it was new there. One older
  // than the pages loaded comes from a replay after a reconnect: the reload counted it, and
  // scrolling shows it in its place.
  _showLive(n) {
    if (this.view === "archived" || this._items.has(n.id)) return false;
    if (this._nextBefore && BigInt(n.id) < BigInt(this._nextBefore)) return false;
    this._items.set(n.id, { ...n, read: false, seen: false, archived: false });
    this._render();
    return true;
  }

  _failed(err, quiet) {
    if (!quiet) {
      this._error = err;
      this._render();
    }
    this._emitState(err);
  }

  _setView(v) {
    this.view = v;
    this._reset();
    this._render();
    this._reload(false);
    this._emitState();
  }

  // --- changes made here --------------------------------------------------------------------

  // _targets: an item that stands for a collapsed group acts for the whole group.
  _targets(item) {
    if (!item.group || this._expanded.has(item.group) || !this._items.has(item.id)) return [item];
    const order = this._order();
    let i = order.findIndex((it) => it.id === item.id);
    const out = [item];
    while (++i < order.length && order[i].group === item.group) out.push(order[i]);
    return out;
  }

  async _setRead(items, read) {
    const changed = items.map((it) => this._items.get(it.id) || it).filter((it) => !!it.read !== read);
    for (const it of changed) it.read = read;
    this._render();
    try {
      await Promise.all(changed.map((it) => (read ? this._herald.markRead(it.id) : this._herald.markUnread(it.id))));
    } catch (err) {
      for (const it of changed) it.read = !read;
      this._render();
      this._notice(err);
    }
  }

  async _setArchived(items, archived) {
    this._drop(items.map((it) => it.id));
    try {
      await Promise.all(items.map((it) => (archived ? this._herald.archive(it.id) : this._herald.unarchive(it.id))));
    } catch (err) {
      this._reload(false);
      this._notice(err);
    }
  }

  async _markAllRead() {
    const shown = [...this._items.values()];
    try {
      await this._herald.markAllRead();
      for (const it of shown) it.read = true; // only what was shown: a newer one may not be marked
      this._render();
    } catch (err) {
      this._notice(err);
    }
  }

  // _drop takes items off the list, moving focus to the next one if it was on them.
  _drop(ids) {
    const gone = new Set(ids.filter((id) => this._items.has(id)));
    if (!gone.size) return;
    const lis = [...this.$.list.children];
    const focused = lis.find((li) => li.contains(this.shadowRoot.activeElement));
    let next = null;
    if (focused && gone.has(focused.dataset.id)) {
      const i = lis.indexOf(focused);
      next = lis.slice(i + 1).concat(lis.slice(0, i).reverse()).find((li) => !gone.has(li.dataset.id));
    }
    for (const id of gone) this._items.delete(id);
    this._render();
    if (focused && gone.has(focused.dataset.id)) {
      if (next && next.isConnected) this._focusItem(next);
      else this.$.panel.focus();
    }
  }

  // _open follows an item's (or one of its actions') url after marking it read. The app may
  // cancel herald-click to route it itself.
  _openItem(e, item, url, action) {
    const ev = this._emit("herald-click", { notification: item, action, url }, true);
    const read = this._setRead(this._items.has(item.id) ? this._targets(item) : [item], true);
    if (ev.defaultPrevented) return e.preventDefault();
    if (!url || e.ctrlKey || e.metaKey || e.shiftKey || e.button > 0 || this.getAttribute("target") === "_blank") return; // the browser's
    e.preventDefault();
    // Leaving the page would cancel the read request: give it a moment first.
    Promise.race([read, new Promise((r) => setTimeout(r, 800))]).then(() => location.assign(url));
  }

  _notice(err) {
    this._emitState(err);
    const t = h("div", { className: "toast", part: "toast toast-error", role: "alert" }, h("span"), h("span", { className: "title" }, this._strings.failed));
    this._addToast(t, 5000);
  }

  // --- rendering ------------------------------------------------------------------------------

  _applyStrings() {
    const S = this._strings, $ = this.$;
    $.heading.textContent = S.heading;
    $.markAll.textContent = S.markAllRead;
    $.close.setAttribute("aria-label", S.close);
    $.filters.setAttribute("aria-label", S.filters);
    for (const b of $.filters.children) b.textContent = S[b.dataset.view];
    $.loading.textContent = S.loading;
    $.retry.textContent = S.retry;
    $.error.firstChild.textContent = S.error;
    $.settingsButton.setAttribute("aria-label", S.settings);
    if (this._prefsBuilt) this._prefsBuild();
    $.status.textContent = this._connection === "reconnecting" ? S.reconnecting : "";
    this._setCounts({});
    this._rebuild();
  }

  _rebuild() {
    this._nodes = new Map();
    this.$.list.replaceChildren();
    this._render();
  }

  _order() {
    return [...this._items.values()].sort(byIdDesc);
  }

  _locale() {
    return this.getAttribute("locale") || this.closest("[lang]")?.lang || navigator.language;
  }

  // _render brings the list in line with _items. Nodes are kept per id and never moved relative
  // to each other (the order is by id), so focus stays where it is while items come and go.
  _render() {
    const { list, loading, empty, error, markAll, filters } = this.$;
    const order = this._order();
    const want = [];
    for (let i = 0; i < order.length; ) {
      const head = order[i];
      let j = i + 1;
      if (head.group) while (j < order.length && order[j].group === head.group) j++;
      const open = this._expanded.has(head.group);
      want.push(this._node(head, open ? 0 : j - i - 1, false, open && j - i > 1));
      if (open) for (const m of order.slice(i + 1, j)) want.push(this._node(m, 0, true, false));
      i = j;
    }
    const keep = new Set(want);
    for (const li of [...list.children]) if (!keep.has(li)) li.remove();
    for (const [id, li] of this._nodes) if (!keep.has(li) && !this._items.has(id)) this._nodes.delete(id);
    want.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null); });
    const cur = this._current();
    for (const li of want) for (const el of li.querySelectorAll("[data-nav]")) el.tabIndex = li === cur ? 0 : -1;
    loading.hidden = !(this._loadingMore || (!this._loaded && !this._error));
    empty.hidden = !this._loaded || order.length > 0 || !!this._error;
    empty.textContent = this._strings[VIEWS[this.view]];
    error.hidden = !this._error;
    markAll.hidden = this.view === "archived" || !!this._prefsShown;
    for (const b of filters.children) b.setAttribute("aria-pressed", String(b.dataset.view === this.view));
  }

  // _current is the item Tab lands on: the focused one, else the first.
  _current() {
    const lis = [...this.$.list.children];
    return lis.find((li) => li.contains(this.shadowRoot.activeElement)) || lis.find((li) => li === this._last) || lis[0] || null;
  }

  _focusItem(li, quiet) {
    if (!li) return false;
    this._last = li;
    for (const other of this.$.list.children) for (const el of other.querySelectorAll("[data-nav]")) el.tabIndex = other === li ? 0 : -1;
    li.querySelector(".main").focus({ preventScroll: !!quiet });
    if (!quiet) li.scrollIntoView({ block: "nearest" });
    return true;
  }

  _node(item, more, member, expanded) {
    let li = this._nodes.get(item.id);
    if (!li) this._nodes.set(item.id, (li = this._build(item)));
    const S = this._strings, r = li._r, unread = !item.read;
    li.className = "item" + (unread ? " unread" : "") + (member ? " member" : "");
    li.setAttribute("part", unread ? "item item-unread" : "item");
    r.label.textContent = unread ? S.unreadLabel + ", " : "";
    r.read.textContent = unread ? S.markRead : S.markUnread;
    r.archive.textContent = this.view === "archived" ? S.unarchive : S.archive;
    r.group.hidden = !more && !expanded;
    r.group.textContent = expanded ? S.fewer : fmt(S.others, more);
    r.group.setAttribute("aria-expanded", String(expanded));
    return li;
  }

  _content(item) {
    const text = h("span", { className: "text" }, h("span", { className: "title", part: "item-title" }, titleOf(item)));
    if (typeof item.body === "string" && item.body) text.append(h("span", { className: "body", part: "item-body" }, item.body));
    text.append(this._time(item.created_at));
    return [this._avatar(item), text];
  }

  _avatar(item) {
    const box = h("span", { className: "avatar", part: "avatar" });
    const initial = () => box.replaceChildren(titleOf(item).trim().charAt(0).toUpperCase() || "•");
    const src = safeUrl(item.avatar) || safeUrl(item.icon);
    if (!src) {
      initial();
      return box;
    }
    const img = h("img", { alt: "", src, referrerPolicy: "no-referrer", decoding: "async" });
    img.addEventListener("error", initial);
    box.append(img);
    return box;
  }

  _time(iso) {
    const t = h("time", { part: "item-time", dateTime: iso || "" });
    t.dataset.t = iso || "";
    this._stamp(t);
    return t;
  }

  _stamp(t) {
    const when = Date.parse(t.dataset.t);
    if (Number.isNaN(when)) return;
    const locale = this._locale();
    const s = (when - Date.now()) / 1000, a = Math.abs(s);
    const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
    const rtf = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
    const u = units.find(([, secs]) => a >= secs);
    t.textContent = a < 45 || !u ? rtf.format(0, "second") : rtf.format(Math.round(s / u[1]), u[0]);
    t.title = new Date(when).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
  }

  // _tick keeps relative times current.
  _tick() {
    for (const t of this.shadowRoot.querySelectorAll("time[data-t]")) this._stamp(t);
  }

  _build(item) {
    const S = this._strings;
    const url = safeUrl(item.url);
    const main = h(url ? "a" : "button", { className: "main", part: "item-main" });
    if (url) {
      main.href = url;
      if (this.getAttribute("target") === "_blank") Object.assign(main, { target: "_blank", rel: "noopener noreferrer" });
    } else {
      main.type = "button";
    }
    main.dataset.nav = "";
    const label = h("span", { className: "sr" });
    let content;
    if (this._renderItem) {
      try {
        content = [this._renderItem(item)];
      } catch (err) {
        console.error("herald-inbox: renderItem threw:", err);
      }
    }
    main.append(label, ...(content || this._content(item)));
    main.addEventListener("click", (e) => this._openItem(e, item, url, null));
    const li = h("li", { className: "item" }, main);
    li.dataset.id = item.id;

    const dots = h("button", { type: "button", className: "icon dots", part: "item-menu-button", "aria-haspopup": "menu", "aria-expanded": "false", "aria-label": `${S.more}: ${titleOf(item)}` });
    dots.innerHTML = ICON(DOTS); // constant
    dots.dataset.nav = "";
    const read = h("button", { type: "button", role: "menuitem", part: "item-menu-item", tabIndex: -1 });
    const archive = h("button", { type: "button", role: "menuitem", part: "item-menu-item", tabIndex: -1 });
    const menu = h("div", { className: "menu", part: "item-menu", role: "menu", "aria-label": S.more, hidden: true }, read, archive);
    dots.addEventListener("click", () => {
      const open = menu.hidden;
      this._closeMenus();
      if (!open) return;
      menu.hidden = false;
      dots.setAttribute("aria-expanded", "true");
      const room = this.$.scroller.getBoundingClientRect().bottom - dots.getBoundingClientRect().bottom;
      menu.classList.toggle("up", room < menu.offsetHeight + 8);
      read.focus();
    });
    read.addEventListener("click", () => {
      this._closeMenus(true);
      this._setRead(this._targets(item), !item.read);
    });
    archive.addEventListener("click", () => {
      this._closeMenus(true);
      this._setArchived(this._targets(item), this.view !== "archived");
    });
    li.append(dots, menu);

    const actions = (Array.isArray(item.actions) ? item.actions : [])
      .map((a) => this._action(item, a))
      .filter(Boolean);
    if (actions.length) li.append(h("div", { className: "actions", part: "item-actions" }, ...actions));

    const group = h("button", { type: "button", className: "link group", part: "group-toggle" });
    group.dataset.nav = "";
    group.addEventListener("click", () => {
      if (this._expanded.has(item.group)) this._expanded.delete(item.group);
      else this._expanded.add(item.group);
      this._render();
    });
    li.append(group);
    li._r = { label, read, archive, group, menu, dots };
    return li;
  }

  // _action is an action's link, or nothing when its label or url is unusable.
  _action(item, a, part = "item-action") {
    const url = a && safeUrl(a.url);
    if (!url || typeof a.label !== "string" || !a.label) return null;
    const link = h("a", { href: url, part }, a.label);
    if (this.getAttribute("target") === "_blank") Object.assign(link, { target: "_blank", rel: "noopener noreferrer" });
    link.dataset.nav = "";
    link.addEventListener("click", (e) => this._openItem(e, item, url, a));
    return link;
  }

  // _closeMenus closes the open item menu; refocus puts focus back on its button.
  _closeMenus(refocus) {
    let closed = false;
    for (const li of this.$.list.children) {
      const { menu, dots } = li._r;
      if (menu.hidden) continue;
      menu.hidden = true;
      dots.setAttribute("aria-expanded", "false");
      if (refocus) dots.focus();
      closed = true;
    }
    return closed;
  }

  // _place puts the panel under the bell, inside the viewport (the sheet ignores this).
  _place() {
    const r = this.$.bell.getBoundingClientRect(), s = this.$.panel.style;
    const width = this.$.panel.offsetWidth;
    const left = this.getAttribute("align") === "start" ? r.left : r.right - width;
    s.setProperty("--_top", `${Math.round(r.bottom + 6)}px`);
    s.setProperty("--_left", `${Math.round(Math.min(Math.max(8, left), innerWidth - width - 8))}px`);
    s.setProperty("--_right", "auto");
    s.setProperty("--_maxh", `${Math.max(240, Math.round(innerHeight - r.bottom - 16))}px`);
  }

  _toast(n) {
    // A replay after a long absence can bring hundreds at once: the first few of each second
    // get a toast, the rest one summary a second later.
    const b = this._burst, now = Date.now();
    if (now - b.start >= 1000 && !b.held) Object.assign(b, { start: now, shown: 0 });
    if (b.shown >= 3) {
      b.held++;
      b.timer ??= setTimeout(() => {
        const show = h("button", { type: "button", className: "link" }, this._strings.show);
        show.style.color = "inherit";
        show.addEventListener("click", () => { t.remove(); this.open(); });
        const t = h("div", { className: "toast", part: "toast" }, h("span"), h("span", { className: "title" }, fmt(this._strings.moreNew, b.held)), show);
        this._addToast(t, 6000);
        Object.assign(b, { held: 0, timer: null });
      }, 1000);
      return;
    }
    b.shown++;
    const S = this._strings, url = safeUrl(n.url);
    const text = h("div", { className: "text" }, h("span", { className: "title", part: "toast-title" }, titleOf(n)));
    if (typeof n.body === "string" && n.body) text.append(h("span", { className: "body", part: "toast-body" }, n.body));
    const first = (Array.isArray(n.actions) ? n.actions : []).map((a) => this._action(n, a, "toast-action")).find(Boolean)
      || (url && this._action(n, { label: S.open, url }, "toast-action"));
    if (first) text.append(h("div", { className: "actions" }, first));
    const t = h("div", { className: "toast", part: "toast" }, this._avatar(n), text);
    this._addToast(t, 6000);
  }

  _addToast(t, ms) {
    const x = h("button", { type: "button", className: "icon", part: "toast-close", "aria-label": this._strings.dismiss });
    x.innerHTML = ICON(CLOSE); // constant
    x.addEventListener("click", () => t.remove());
    t.append(x);
    const box = this.$.toasts;
    box.append(t);
    while (box.children.length > 4) box.firstElementChild.remove();
    // It stays while pointed at or focused, so that there is time to read it or use its link.
    let timer;
    const later = () => { clearTimeout(timer); timer = setTimeout(() => t.remove(), ms); };
    t.addEventListener("pointerenter", () => clearTimeout(timer));
    t.addEventListener("focusin", () => clearTimeout(timer));
    t.addEventListener("pointerleave", later);
    t.addEventListener("focusout", later);
    later();
  }

  _emit(type, detail, cancelable = false) {
    const ev = new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable });
    this.dispatchEvent(ev);
    return ev;
  }

  // --- preferences (issue 17): the settings view ----------------------------------------------
  //
  // What the user muted in the app: types, type prefixes and topics. The view reads the rules
  // with the user's credential (GET /v1/preferences) and writes them back whole (PUT), keeping
  // the channels it does not show (push) as they were read. Everything here is in these
  // functions; the Web Push toggle goes in the section's settings-extra part.

  // _prefsShow shows the settings view in the panel instead of the list (or the list again).
  _prefsShow(on) {
    const { settings, settingsButton, filters, scroller, markAll } = this.$;
    if (on && !this._open) this.open();
    this._prefsShown = on;
    if (on) this._prefsBuild();
    settings.hidden = !on;
    filters.hidden = on;
    scroller.hidden = on;
    markAll.hidden = on || this.view === "archived";
    settingsButton.setAttribute("aria-expanded", String(on));
    if (on) {
      this._prefsLoad();
      this._p.kind.focus({ preventScroll: true });
    } else {
      settingsButton.focus({ preventScroll: true });
    }
  }

  // _prefsBuild makes the view's controls (again, with the current strings).
  _prefsBuild() {
    const S = this._strings;
    const kind = h("select", { id: "mute-kind", name: "kind" },
      h("option", { value: "types" }, S.muteType), h("option", { value: "prefixes" }, S.mutePrefix), h("option", { value: "topics" }, S.muteTopic));
    const value = h("input", { id: "mute-value", name: "value", required: true, autocomplete: "off", maxLength: 255, spellcheck: false });
    const form = h("form", { className: "mute-form", part: "mute-form" },
      h("label", { htmlFor: "mute-kind" }, S.muteBy, kind), h("label", { htmlFor: "mute-value", className: "grow" }, S.muteValue, value),
      h("button", { type: "submit" }, S.muteAdd));
    form.addEventListener("submit", (e) => { e.preventDefault(); this._prefsAdd(); });
    kind.addEventListener("change", () => this._prefsPattern());
    const list = h("ul", { className: "mutes", part: "mutes", "aria-labelledby": "muted-heading" });
    list.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-kind]");
      if (b) this._prefsRemove(b.dataset.kind, b.dataset.value);
    });
    const none = h("p", { className: "note" }, S.mutedNone);
    const status = h("p", { className: "prefs-status", role: "status" });
    const back = h("button", { type: "button", className: "link" }, S.backToList);
    back.addEventListener("click", () => this._prefsShow(false));
    this.$.settings.replaceChildren(
      h("h3", { id: "settings-heading" }, S.settingsHeading), h("p", { className: "hint" }, S.settingsHint), form,
      h("h4", { id: "muted-heading" }, S.mutedHeading), list, none, status,
      h("div", { className: "settings-extra", part: "settings-extra" }), back);
    this._p = { kind, value, list, none, status };
    this._prefsBuilt = true;
    this._prefsPattern();
    this._prefsRender();
  }

  // _prefsPattern lets the browser check the name as the server will: a type's alphabet, and
  // "/" in topics.
  _prefsPattern() {
    const topic = this._p.kind.value === "topics";
    this._p.value.pattern = topic ? "[A-Za-z0-9_.:\\/\\-]{1,255}" : "[A-Za-z0-9_.:\\-]{1,64}";
  }

  async _prefsLoad() {
    const herald = this._herald;
    if (!herald) return;
    try {
      const p = await herald.preferences();
      if (herald !== this._herald) return;
      this._prefs = p;
      this._prefsRender();
    } catch (err) {
      this._prefsStatus(this._strings.prefsLoadFailed, true);
      this._emitState(err);
    }
  }

  // _prefsRender lists the in-app rules.
  _prefsRender() {
    if (!this._p) return;
    const S = this._strings, { list, none } = this._p;
    const mutes = this._prefs?.mutes?.in_app || {};
    const names = { types: S.muteType, prefixes: S.mutePrefix, topics: S.muteTopic };
    const rows = [];
    for (const kind of ["types", "prefixes", "topics"]) {
      for (const v of mutes[kind] || []) {
        const b = h("button", { type: "button", "aria-label": fmt2(S.unmuteLabel, names[kind], v) }, S.unmute);
        b.dataset.kind = kind;
        b.dataset.value = v;
        rows.push(h("li", {}, h("span", {}, fmt2(S.mutedRule, names[kind], v)), b));
      }
    }
    list.replaceChildren(...rows);
    list.hidden = !rows.length;
    none.hidden = !!rows.length;
  }

  _prefsStatus(text, bad) {
    const { status } = this._p;
    status.textContent = text;
    status.classList.toggle("bad", !!bad);
  }

  async _prefsAdd() {
    const { kind, value } = this._p;
    const v = value.value.trim();
    if (!v) return;
    const ok = await this._prefsSave((m) => { m[kind.value] = [...new Set([...(m[kind.value] || []), v])]; });
    if (ok) value.value = "";
  }

  async _prefsRemove(kind, v) {
    const ok = await this._prefsSave((m) => { m[kind] = (m[kind] || []).filter((x) => x !== v); });
    if (ok) (this._p.list.querySelector("button") || this._p.value).focus({ preventScroll: true });
  }

  // _prefsSave applies change to a copy of the in-app rules and writes all the rules back; the
  // other channels go back as they were read.
  async _prefsSave(change) {
    const herald = this._herald;
    if (!herald) return false;
    const mutes = structuredClone(this._prefs?.mutes || {});
    mutes.in_app = { types: [], prefixes: [], topics: [], ...mutes.in_app };
    change(mutes.in_app);
    try {
      const p = await herald.setPreferences({ mutes });
      if (herald !== this._herald) return false;
      this._prefs = p;
      this._prefsRender();
      this._prefsStatus(this._strings.saved);
      return true;
    } catch (err) {
      // The server's message says what it refused (a name, the number of rules); it is text.
      this._prefsStatus(`${this._strings.prefsFailed} ${err.message || ""}`.trim(), true);
      this._emitState(err);
      return false;
    }
  }

  // _prefsChanged: the rules changed (here or anywhere). Broadcasts now muted, or no longer, leave
  // or join the list and the counts: reload both, and the view if it is shown.
  _prefsChanged(c) {
    this._changes++;
    this._setCounts(c);
    this._reload(false);
    if (this._prefsShown) this._prefsLoad();
  }

  _emitState(error = null) {
    if (!this.isConnected) return;
    const d = { connection: this._connection, unseen: this._counts.unseen, unread: this._counts.unread, open: !!this._open, view: this.view, error };
    const key = JSON.stringify({ ...d, error: error && String(error.message) });
    if (key === this._stateKey && !error) return;
    this._stateKey = key;
    this._emit("herald-state", d);
  }

  // --- Web Push: a switch at the foot of the panel (docs/push.md) ------------------------------
  // Shown with the push attribute, when the server has push and the browser can receive it. Permission is asked only
  // when the switch is clicked (browsers ignore, or punish, a request without a gesture), and a
  // refusal is explained rather than silently ignored.

  _wirePush() {
    const sw = h("button", { type: "button", role: "switch", className: "link push-switch", part: "push-toggle", "aria-checked": "false" });
    const note = h("p", { className: "note push-note", part: "push-note", "aria-live": "polite" });
    const foot = h("div", { className: "push", part: "push", hidden: true }, sw, note);
    const root = this.shadowRoot;
    if ("adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
      // A constructed sheet, as adopt() does: a <style> element would break a strict CSP.
      if (!pushSheet) (pushSheet = new CSSStyleSheet()).replaceSync(PUSH_CSS);
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, pushSheet];
    } else {
      root.prepend(h("style", { textContent: PUSH_CSS }));
    }
    this.$.panel.append(foot);
    this.$.push = { foot, sw, note };
    sw.addEventListener("click", () => this._togglePush());
    this.$.bell.addEventListener("click", () => this._refreshPush());
  }

  _pushStrings() { return { ...PUSH_STRINGS, ...this._strings }; }

  // _refreshPush shows the switch as the browser and the server stand now.
  async _refreshPush(note) {
    const { foot, sw } = this.$.push;
    const herald = this._herald;
    const S = this._pushStrings();
    sw.textContent = S.push;
    if (!herald || !this.hasAttribute("push") || !Herald.pushSupported()) return;
    if (this._pushKey === undefined) {
      this._pushKey = await herald.request("GET", "/v1/push/key").then((r) => r.public_key, () => null);
    }
    if (!this._pushKey) return; // push is off on this server
    const state = await herald.pushState().catch(() => "disabled");
    sw.setAttribute("aria-checked", String(state === "enabled"));
    this.$.push.note.textContent = note || (state === "denied" ? S.pushDenied : state === "enabled" ? "" : S.pushHelp);
    foot.hidden = false;
  }

  async _togglePush() {
    const { sw } = this.$.push;
    const S = this._pushStrings();
    const on = sw.getAttribute("aria-checked") !== "true";
    sw.disabled = true;
    let note = "";
    try {
      if (on) await this._herald.enablePush();
      else await this._herald.disablePush();
    } catch (err) {
      note = err.code === "denied" ? S.pushDenied : err.code === "dismissed" ? S.pushDismissed : S.pushFailed;
    } finally {
      sw.disabled = false;
    }
    await this._refreshPush(note);
  }
}

if (!customElements.get("herald-inbox")) customElements.define("herald-inbox", HeraldInbox);
