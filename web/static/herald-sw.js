/**
 * herald-sw.js — Herald's service worker for Web Push (docs/push.md).
 *
 * It shows each push Herald sends as a notification (collapsed by its tag), and on a click
 * marks it read through the API and focuses or opens its url. herald.js's enablePush()
 * registers it from Herald's origin. An app on another origin imports it into its own worker:
 *
 *   self.heraldConfig = { url: "https://herald.example.com" };
 *   importScripts("https://herald.example.com/herald-sw.js");
 *
 * The API is called with the browser's cookies (credentials: "include"): the herald_token
 * cookie authenticates it. In dev mode the user comes from ?user= in the worker's URL.
 */
(() => {
  const config = self.heraldConfig || {};
  const own = new URL(self.location.href);
  // Herald's base URL: the configured one, else where this script was served from.
  const base = (config.url || own.origin).replace(/\/$/, "");
  const user = config.user || own.searchParams.get("user") || "";

  function api(method, path, body) {
    const q = user ? "?user=" + encodeURIComponent(user) : "";
    const init = { method, credentials: "include", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(base + path + q, init);
  }

  function payload(event) {
    if (!event.data) return {};
    try {
      return event.data.json();
    } catch {
      return { body: event.data.text() };
    }
  }

  self.addEventListener("push", (event) => {
    const p = payload(event);
    const options = {
      body: p.body || "",
      tag: p.tag || (p.id ? "herald-" + p.id : undefined),
      data: { id: p.id, url: p.url ? new URL(p.url, base).href : "" },
      timestamp: p.created_at ? Date.parse(p.created_at) : undefined,
    };
    if (p.icon) options.icon = new URL(p.icon, base).href;
    // A newer push of the same tag replaces the shown one; say so again rather than silently.
    if (options.tag) options.renotify = true;
    event.waitUntil(self.registration.showNotification(p.title || "New notification", options));
  });

  async function click(notification) {
    const { id, url } = notification.data || {};
    const work = [];
    if (id) {
      work.push(api("POST", `/v1/notifications/${encodeURIComponent(id)}/read`).catch(() => {}));
    }
    if (url) work.push(openOrFocus(url));
    await Promise.all(work);
  }

  async function openOrFocus(url) {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const c of windows) {
      if (c.url === url && "focus" in c) return c.focus();
    }
    const opened = self.clients.openWindow ? await self.clients.openWindow(url).catch(() => null) : null;
    if (opened) return opened;
    // Not allowed to open a window (no click activation): take a tab of this origin there.
    const same = windows.find((c) => new URL(c.url).origin === new URL(url).origin && "navigate" in c);
    return same ? same.navigate(url).catch(() => null) : null;
  }

  self.addEventListener("notificationclick", (event) => {
    event.notification.close();
    const done = click(event.notification);
    try {
      event.waitUntil(done);
    } catch {
      // An event dispatched by script (not the browser) cannot be extended; the work goes on.
    }
  });

  // The browser renewed the subscription (or dropped it): register the new one.
  self.addEventListener("pushsubscriptionchange", (event) => {
    event.waitUntil((async () => {
      let sub = event.newSubscription;
      if (!sub && event.oldSubscription) {
        sub = await self.registration.pushManager.subscribe(event.oldSubscription.options);
      }
      if (sub) await api("POST", "/v1/push/subscriptions", sub.toJSON());
    })());
  });

  self.addEventListener("install", () => self.skipWaiting());
  self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
})();
