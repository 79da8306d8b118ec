/**
 * herald.js — a small browser client for Herald: the live notification stream and the inbox.
 *
 *   import { Herald } from "https://herald.example.com/herald.js";
 *
 *   const herald = new Herald({ url: "https://herald.example.com" }); // auth: the herald_token cookie
 *   herald.on("comment.created", (n) => show(n));  // n: {id, type, data, created_at, broadcast}
 *   herald.on("*", (n) => bump());                 // every notification
 *   herald.onRead(({ ids, all, read, unread, unseen }) => setBadge(unseen)); // read anywhere
 *   herald.onSeen(({ up_to, unseen }) => setBadge(unseen));   // the list was opened anywhere
 *   herald.onArchived(({ ids, all, archived }) => drop(ids));  // archived (or back) anywhere
 *   herald.onState((state) => showState(state));   // "connecting", "live", "reconnecting", "closed"
 *   herald.onMissed(() => reloadInbox());          // history was pruned past the cursor
 *   herald.connect();
 *
 *   const page = await herald.list({ limit: 20 });             // newest first
 *   const older = await herald.list({ before: page.next_before });
 *   const archived = await herald.list({ archived: true });    // what archive() put away
 *   await herald.markSeen(page.notifications[0]?.id);          // the panel opened: badge to 0
 *   await herald.markRead(id); await herald.markUnread(id); await herald.markAllRead();
 *   await herald.archive(id); await herald.unarchive(id); await herald.archiveRead();
 *   const { unread, unseen } = await herald.counts();          // archived ones count in neither
 *   const prefs = await herald.preferences();                  // {mutes: {in_app: {types, prefixes, topics}, push}}
 *   await herald.setPreferences({ mutes: { ...prefs.mutes, in_app: { prefixes: ["marketing."] } } });
 *   herald.onPreferences(({ unread, unseen }) => reloadInbox()); // changed anywhere: muted broadcasts go
 *
 *   button.onclick = () => herald.enablePush();   // Web Push, from a click (docs/push.md)
 *   await herald.disablePush(); await herald.pushState(); // "enabled", "disabled", "denied", "unsupported"
 *
 * Resuming is exact: every event id is a cursor. The browser's EventSource sends the last one
 * (Last-Event-ID) whenever it reconnects by itself; when herald.js has to open a new stream
 * (after a refusal, herald.expired, or close() then connect()), it passes the last id in the URL.
 * Either way nothing is missed and nothing arrives twice.
 *
 * Authentication, in order of preference:
 *  - a cookie (default): your backend sets an HttpOnly herald_token cookie; requests are sent
 *    with credentials. Cross-origin, your origin must be in Herald's --cors-origins.
 *  - token: sent as Authorization: Bearer on inbox calls; the stream (which cannot send headers)
 *    takes it in the URL only if you also set tokenInQuery (the server needs --allow-query-token).
 *    That stream is then opened without credentials (withCredentials: false), so that a stale
 *    cookie, which the server prefers, cannot override the token. Browsers send cookies to the
 *    page's own origin regardless: there, use the cookie or the query token, not both.
 *  - user: dev mode (?user=). With auth on it is a guard: the server refuses (403) a token or
 *    cookie for anyone else, rather than serve another user's feed.
 *  Give `refresh`, an async function that renews the cookie (or returns a new token), and it is
 *  called when the stream's credentials expire or are refused, before reconnecting. It may call
 *  close() to give up. Handlers that throw are reported on the console and do not stop others.
 */
export class Herald {
  /**
   * @param {object} [options]
   * @param {string} [options.url] Herald's base URL; "" for the page's own origin.
   * @param {string} [options.token] a subscriber token (see above).
   * @param {boolean} [options.tokenInQuery] also send the token in the stream's URL.
   * @param {string} [options.user] dev mode: the user; with auth on, the only user to accept.
   * @param {string[]} [options.types] only these notification types.
   * @param {string} [options.lastEventId] resume from this cursor (else: from now).
   * @param {() => Promise<string|void>} [options.refresh] renews credentials; may return a token.
   */
  constructor(options = {}) {
    this.url = (options.url || "").replace(/\/$/, "");
    this.token = options.token || "";
    this.tokenInQuery = !!options.tokenInQuery;
    this.user = options.user || "";
    this.types = options.types || [];
    this.lastEventId = options.lastEventId || "";
    this.refresh = options.refresh;
    this.handlers = new Map();
    this.stateHandlers = [];
    this.readHandlers = [];
    this.seenHandlers = [];
    this.archivedHandlers = [];
    this.missedHandlers = [];
    this.preferencesHandlers = [];
    this.state = "closed";
    this.source = null;
    this.retryTimer = null;
    this.backoff = 1000;
    // generation changes on every connect() and close(): a reopen that was scheduled, or is
    // waiting for refresh, before either one belongs to a past generation and must not happen.
    this.generation = 0;
  }

  /** on registers a handler for notifications of a type, or "*" for all. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
    return this;
  }

  /** onState registers a handler of the connection state. */
  onState(fn) { this.stateHandlers.push(fn); return this; }

  /** onRead registers a handler of read-state changes made anywhere (another tab, device). */
  onRead(fn) { this.readHandlers.push(fn); return this; }

  /** onSeen registers a handler of the seen mark moving, from anywhere (the list was opened). */
  onSeen(fn) { this.seenHandlers.push(fn); return this; }

  /** onArchived registers a handler of notifications archived or brought back, from anywhere. */
  onArchived(fn) { this.archivedHandlers.push(fn); return this; }

  /** onMissed registers a handler called when notifications after the cursor were pruned. */
  onMissed(fn) { this.missedHandlers.push(fn); return this; }

  /** connect opens the stream, resuming after the last event received, if any. */
  connect() {
    this.closed = false;
    this.generation++;
    clearTimeout(this.retryTimer); // else a pending reopen would replace the stream opened here
    this.backoff = 1000;
    this.open();
    return this;
  }

  /** close ends the stream until the next connect(). */
  close() {
    this.closed = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    this.setState("closed");
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit(this.stateHandlers, state);
  }

  // emit calls each handler with arg: one that throws is the app's bug, and must not keep the
  // others (or herald.js itself) from seeing the event.
  emit(handlers, arg) {
    for (const fn of handlers) {
      try {
        fn(arg);
      } catch (err) {
        console.error("herald.js: a handler threw:", err);
      }
    }
  }

  query(extra = {}) {
    const q = new URLSearchParams();
    if (this.user) q.set("user", this.user);
    for (const [k, v] of Object.entries(extra)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }

  open() {
    if (this.source) this.source.close();
    const params = { named: "false" };
    if (this.types.length) params.types = this.types.join(",");
    // A stream opened by us (not the browser's own reconnect) carries the cursor in the URL.
    if (this.lastEventId) params.last_event_id = this.lastEventId;
    // The server takes a cookie before the query's token: send none when the token is in the URL.
    const queryToken = !!(this.token && this.tokenInQuery);
    if (queryToken) params.access_token = this.token;
    this.setState(this.state === "closed" ? "connecting" : "reconnecting");
    const es = new EventSource(this.url + "/v1/stream" + this.query(params), { withCredentials: !queryToken });
    this.source = es;
    es.onopen = () => { this.backoff = 1000; this.setState("live"); };
    es.onmessage = (e) => {
      this.lastEventId = e.lastEventId || this.lastEventId;
      let n;
      try { n = JSON.parse(e.data); } catch { return; }
      this.emit([...(this.handlers.get(n.type) || []), ...(this.handlers.get("*") || [])], n);
    };
    es.addEventListener("herald.connected", (e) => { this.lastEventId = e.lastEventId || this.lastEventId; });
    es.addEventListener("herald.missed", (e) => {
      this.lastEventId = e.lastEventId || this.lastEventId;
      this.emit(this.missedHandlers, JSON.parse(e.data));
    });
    es.addEventListener("herald.read", (e) => this.emit(this.readHandlers, JSON.parse(e.data)));
    es.addEventListener("herald.seen", (e) => this.emit(this.seenHandlers, JSON.parse(e.data)));
    es.addEventListener("herald.archived", (e) => this.emit(this.archivedHandlers, JSON.parse(e.data)));
    es.addEventListener("herald.preferences", (e) => this.emit(this.preferencesHandlers, JSON.parse(e.data)));
    es.addEventListener("herald.expired", () => {
      // The server ends the stream after this; renew before opening the next one.
      es.close();
      this.renewAndReopen(0);
    });
    es.onerror = () => {
      if (this.closed || es !== this.source) return;
      if (es.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself, sending Last-Event-ID: nothing to do.
        this.setState("reconnecting");
        return;
      }
      // Refused (401, 403, 429, 503, …): the browser gives up for good, herald.js does not.
      es.close();
      this.renewAndReopen(this.backoff);
      this.backoff = Math.min(this.backoff * 2, 30000);
    };
  }

  renewAndReopen(delay) {
    this.setState("reconnecting");
    clearTimeout(this.retryTimer);
    const generation = this.generation;
    this.retryTimer = setTimeout(async () => {
      if (this.refresh) {
        try {
          const token = await this.refresh();
          if (typeof token === "string" && token) this.token = token;
        } catch (err) {
          console.error("herald.js: refresh failed; reconnecting with the credentials at hand:", err);
        }
      }
      // close(), or close() and connect(), while refresh ran: that call decides, not this one.
      if (generation !== this.generation) return;
      this.open();
    }, delay);
  }

  async request(method, path, params, body) {
    const headers = {};
    if (this.token) headers["Authorization"] = "Bearer " + this.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(this.url + path + this.query(params), {
      method, headers, credentials: "include",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.status === 204) return null;
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const err = new Error((data && data.error && data.error.message) || `HTTP ${resp.status}`);
      err.status = resp.status;
      err.code = data && data.error && data.error.code;
      throw err;
    }
    return data;
  }

  /**
   * list returns a page of the inbox, newest first: {notifications, next_before}. With
   * archived: true, a page of the archived notifications instead.
   */
  list({ limit, before, unread, archived, types } = {}) {
    return this.request("GET", "/v1/notifications", {
      limit, before, unread: unread ? "true" : undefined, archived: archived ? "true" : undefined,
      types: types && types.join(","),
    });
  }

  /** get returns one notification. */
  get(id) { return this.request("GET", "/v1/notifications/" + encodeURIComponent(id)); }

  /** markRead marks a notification read. */
  markRead(id) { return this.request("POST", `/v1/notifications/${encodeURIComponent(id)}/read`); }

  /** markUnread marks a notification unread. */
  markUnread(id) { return this.request("DELETE", `/v1/notifications/${encodeURIComponent(id)}/read`); }

  /** markAllRead marks everything read and returns how many changed. */
  async markAllRead() { return (await this.request("POST", "/v1/notifications/read-all")).updated; }

  /** unreadCount returns the number of unread notifications. */
  async unreadCount() { return (await this.request("GET", "/v1/notifications/unread-count")).unread; }

  /** counts returns {unread, unseen}: not read; neither seen nor read (the badge). */
  counts() { return this.request("GET", "/v1/notifications/unread-count"); }

  /**
   * markSeen marks everything up to the notification upTo seen (without it: up to now), as when
   * the panel opens; returns {seen_up_to, unread, unseen}.
   */
  markSeen(upTo) {
    return this.request("POST", "/v1/notifications/seen", undefined, upTo ? { up_to: String(upTo) } : undefined);
  }

  /** archive moves a notification out of the inbox into the archive. */
  archive(id) { return this.request("POST", `/v1/notifications/${encodeURIComponent(id)}/archive`); }

  /** unarchive brings an archived notification back to the inbox. */
  unarchive(id) { return this.request("DELETE", `/v1/notifications/${encodeURIComponent(id)}/archive`); }

  /** archiveRead archives every read notification and returns how many it archived. */
  async archiveRead() { return (await this.request("POST", "/v1/notifications/archive-read")).updated; }

  /** publish sends a notification (dev mode, or a token with the publish scope). */
  publish(notification) { return this.request("POST", "/v1/notifications", undefined, notification); }

  // --- preferences (issue 17) ---------------------------------------------------------------

  /**
   * preferences returns what the user muted, per channel:
   * {mutes: {in_app: {types, prefixes, topics}, push: {types, prefixes, topics}}}.
   */
  preferences() { return this.request("GET", "/v1/preferences"); }

  /**
   * setPreferences replaces all the user's rules (a channel or list left out has none) and
   * returns them as stored. Send back the channels you do not change too.
   */
  setPreferences(prefs) { return this.request("PUT", "/v1/preferences", undefined, prefs); }

  /** onPreferences registers a handler of preference changes made anywhere: {unread, unseen}. */
  onPreferences(fn) { this.preferencesHandlers.push(fn); return this; }

  // Topics, the subscriber's side (docs/api.md, "Topics: notify followers"). The user is always
  // the credential's: these calls never name one.

  /** myTopics returns the topics the user is subscribed to, in byte order. */
  async myTopics() { return (await this.request("GET", "/v1/topics")).topics; }

  /**
   * joinTopic subscribes the user to topic. The server allows it only for topics the operator
   * opened to self-service (--topic-self-subscribe); others are refused with status 403.
   */
  joinTopic(topic) { return this.request("PUT", "/v1/me/topics/" + encodeURIComponent(topic)); }

  /** leaveTopic unsubscribes the user from topic, whoever subscribed it (no error if not). */
  leaveTopic(topic) { return this.request("DELETE", "/v1/me/topics/" + encodeURIComponent(topic)); }

  /** listTopic is list() with only the notifications published to topic. */
  listTopic(topic, { limit, before, unread, archived, types } = {}) {
    return this.request("GET", "/v1/notifications", {
      limit, before, unread: unread ? "true" : undefined, archived: archived ? "true" : undefined,
      types: types && types.join(","), topic,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Web Push (docs/push.md). Kept apart from the stream and the inbox above.

  /** pushSupported reports whether this browser can receive Web Push here (a secure origin). */
  static pushSupported() {
    return typeof window !== "undefined" && window.isSecureContext && "serviceWorker" in navigator &&
      "PushManager" in window && "Notification" in window;
  }

  /** pushWorkerURL is where the service worker is registered from, with the dev-mode user. */
  pushWorkerURL(serviceWorker) {
    const url = serviceWorker || this.url + "/herald-sw.js";
    return this.user ? url + (url.includes("?") ? "&" : "?") + "user=" + encodeURIComponent(this.user) : url;
  }

  /**
   * pushState tells where push stands in this browser: "unsupported", "denied" (the user
   * blocked notifications for the site: only its settings undo that), "enabled" (subscribed),
   * or "disabled".
   */
  async pushState({ serviceWorker } = {}) {
    if (!Herald.pushSupported()) return "unsupported";
    if (Notification.permission === "denied") return "denied";
    const reg = await navigator.serviceWorker.getRegistration(this.pushWorkerURL(serviceWorker));
    const sub = reg && await reg.pushManager.getSubscription();
    return sub && Notification.permission === "granted" ? "enabled" : "disabled";
  }

  /**
   * enablePush asks for permission, registers the service worker (Herald's /herald-sw.js, or
   * options.serviceWorker, one that imports it), subscribes with the server's VAPID key and
   * registers the subscription. Call it from a user gesture (a click): browsers ask only then.
   * It throws an Error with code "unsupported", "denied" (blocked) or "dismissed" (no answer),
   * or the server's error.
   */
  async enablePush({ serviceWorker } = {}) {
    const fail = (code, message) => Object.assign(new Error(message), { code });
    if (!Herald.pushSupported()) {
      throw fail("unsupported", "this browser cannot receive push notifications here (it needs service workers, the Push API and an https page)");
    }
    const permission = await Notification.requestPermission();
    if (permission === "denied") throw fail("denied", "notifications are blocked for this site; allow them in the browser's site settings");
    if (permission !== "granted") throw fail("dismissed", "notifications were not allowed");
    const reg = await navigator.serviceWorker.register(this.pushWorkerURL(serviceWorker));
    const { public_key: key } = await this.request("GET", "/v1/push/key");
    const applicationServerKey = base64url(key);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub.options && sub.options.applicationServerKey, applicationServerKey)) {
      await sub.unsubscribe(); // made with another server key: the push service would refuse ours
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
    await this.request("POST", "/v1/push/subscriptions", undefined, sub.toJSON());
    return sub;
  }

  /** disablePush unregisters this browser's subscription from Herald and the push service. */
  async disablePush({ serviceWorker } = {}) {
    if (!Herald.pushSupported()) return;
    const reg = await navigator.serviceWorker.getRegistration(this.pushWorkerURL(serviceWorker));
    const sub = reg && await reg.pushManager.getSubscription();
    if (!sub) return;
    try {
      await this.request("DELETE", "/v1/push/subscriptions", undefined, { endpoint: sub.endpoint });
    } catch (err) {
      if (err.status !== 404) throw err; // not registered here: unsubscribing is all that is left
    }
    await sub.unsubscribe();
  }

}

/** base64url decodes a VAPID key into the bytes pushManager.subscribe takes. */
function base64url(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

function sameKey(a, b) {
  if (!a) return false;
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}
