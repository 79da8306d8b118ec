// An app that uses Herald, in plain node:http and jose: it signs users in (by name: your app has
// its own login), mints each one's Herald subscriber token and sets it as the HttpOnly
// herald_token cookie, renews it before it expires, publishes with a publisher key when someone
// comments, and serves a page with Herald's <herald-inbox>. README.md says how to run it and why
// the cookie is what it is.
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { SignJWT } from "jose";

const env = process.env;
const addr = env.ADDR || "127.0.0.1:3000";
// The app's origin as browsers see it: https makes the cookies Secure, and Herald's
// --cors-origins must list it.
const publicURL = new URL(env.PUBLIC_URL || `http://${addr}`);
const heraldURL = (env.HERALD_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
const secret = env.HERALD_JWT_SECRET || "";
const publisherKey = env.HERALD_PUBLISHER_KEY || "";
const issuer = env.HERALD_JWT_ISSUER || "";
const audience = env.HERALD_JWT_AUDIENCE || "";
const cookieName = env.HERALD_AUTH_COOKIE || "herald_token";
const cookieDomain = env.COOKIE_DOMAIN || ""; // e.g. example.com for app. and herald.example.com
const ttl = Number(env.TOKEN_TTL || 900); // seconds a token, and its cookie, lives

const fail = (msg) => { console.error(msg); process.exit(2); };
if (secret.length < 32) fail("HERALD_JWT_SECRET must be Herald's HS256 secret (at least 32 bytes)");
if (!publisherKey.startsWith("hk_")) fail("HERALD_PUBLISHER_KEY must be a key from `herald keygen` (hk_…)");
if (!Number.isInteger(ttl) || ttl < 10) fail("TOKEN_TTL must be a whole number of seconds, at least 10");
const secure = publicURL.protocol === "https:";
const key = new TextEncoder().encode(secret);
const assets = {
  "/app.js": ["text/javascript", readFileSync(new URL("public/app.js", import.meta.url))],
  "/app.css": ["text/css", readFileSync(new URL("public/app.css", import.meta.url))],
};

// The app's own sessions: session id → user. A real app has these already.
const sessions = new Map();

// mintToken returns a subscriber token for user: HS256 with the secret Herald has, sub, iat,
// exp, and iss/aud when Herald checks them (--jwt-issuer, --jwt-audience).
async function mintToken(user) {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user).setIssuedAt(now).setExpirationTime(now + ttl);
  if (issuer) jwt.setIssuer(issuer);
  if (audience) jwt.setAudience(audience);
  return jwt.sign(key);
}

// cookie formats a Set-Cookie value. maxAge 0 deletes the cookie.
function cookie(name, value, { sameSite, maxAge, domain }) {
  let c = `${name}=${value}; Path=/; HttpOnly; SameSite=${sameSite}`;
  if (maxAge !== undefined) c += `; Max-Age=${maxAge}`;
  if (secure) c += "; Secure";
  if (domain) c += `; Domain=${domain}`;
  return c;
}

// heraldCookie is the Set-Cookie for user's fresh token: it lives exactly as long as the token.
// Strict: only the app's own pages (same site as Herald) send it; see README.md.
async function heraldCookie(user) {
  return cookie(cookieName, await mintToken(user), { sameSite: "Strict", maxAge: ttl, domain: cookieDomain });
}

function sessionUser(req) {
  const m = /(?:^|;\s*)app_session=([A-Za-z0-9_-]+)/.exec(req.headers.cookie || "");
  return m ? sessions.get(m[1]) : undefined;
}

// sameOrigin refuses a POST another site's page made the browser send (CSRF): the app's
// cookies ride along with it by themselves. Requests without these headers are not a browser's.
function sameOrigin(req) {
  const origin = req.headers.origin, site = req.headers["sec-fetch-site"];
  return (!origin || origin === publicURL.origin) && (!site || site === "same-origin");
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error("body too large");
  }
  const type = req.headers["content-type"] || "";
  return type.startsWith("application/json") ? JSON.parse(body || "{}") : Object.fromEntries(new URLSearchParams(body));
}

// validUser accepts the user ids this app hands out (Herald's own rules are wider).
const validUser = (u) => typeof u === "string" && /^[A-Za-z0-9_.@-]{1,64}$/.test(u);

// publish creates a notification in Herald with the publisher key. The idempotency key makes a
// retry of the same comment create nothing new.
async function publish(notification) {
  const resp = await fetch(heraldURL + "/v1/notifications", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + publisherKey },
    body: JSON.stringify(notification),
    signal: AbortSignal.timeout(5000),
  });
  if (resp.status !== 201) throw new Error(`Herald answered ${resp.status}: ${await resp.text()}`);
  return (await resp.json()).notifications;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(user, notice) {
  const note = notice ? `<p id="notice" role="status">${esc(notice)}</p>` : "";
  const body = user ? `
<header>
  <strong>Example app</strong>
  <span id="who">Signed in as ${esc(user)}</span>
  <herald-inbox server="${esc(heraldURL)}" user="${esc(user)}" title-count></herald-inbox>
  <form method="post" action="/logout"><button id="sign-out">Sign out</button></form>
</header>
<main>
  ${note}
  <h1>A post</h1>
  <p>Comment on it, and its author gets a notification in their bell.</p>
  <form id="comment" method="post" action="/comment">
    <label>Author <input name="to" value="${esc(user)}" required></label>
    <label>Comment <input name="text" required maxlength="500"></label>
    <button>Comment</button>
  </form>
</main>` : `
<main>
  <h1>Example app</h1>
  ${note}
  <form id="login" method="post" action="/login">
    <label>Sign in as <input name="user" required pattern="[A-Za-z0-9_.@\\-]{1,64}" autofocus></label>
    <button>Sign in</button>
  </form>
</main>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example app</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script type="module" src="${esc(heraldURL)}/herald-inbox.js"></script>
<script type="module" src="/app.js"></script>
</head>
<body data-token-ttl="${ttl}">${body}
</body>
</html>
`;
}

const heraldOrigin = new URL(heraldURL).origin;
const csp = `default-src 'none'; script-src 'self' ${heraldOrigin}; connect-src 'self' ${heraldOrigin}; ` +
  `img-src 'self' data: https:; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", ...headers });
  res.end(body);
}
const html = (res, status, body, headers = {}) =>
  send(res, status, "text/html; charset=utf-8", body, { "Content-Security-Policy": csp, ...headers });
const json = (res, status, body, headers = {}) => send(res, status, "application/json", JSON.stringify(body), headers);
const redirect = (res, to, cookies = []) => { res.writeHead(303, { Location: to, "Set-Cookie": cookies }); res.end(); };

async function handle(req, res) {
  const url = new URL(req.url, publicURL);
  // The cookie is for the host in PUBLIC_URL: on another name for this server (localhost for
  // 127.0.0.1) Herald would never get it.
  if (req.method === "GET" && req.headers.host !== publicURL.host) return redirect(res, new URL(url.pathname + url.search, publicURL).href);
  if (req.method === "POST" && !sameOrigin(req)) return json(res, 403, { error: `POST only from ${publicURL.origin}` });
  const user = sessionUser(req);
  const route = `${req.method} ${url.pathname}`;

  if (req.method === "GET" && assets[url.pathname]) {
    const [type, body] = assets[url.pathname];
    return send(res, 200, type, body);
  }
  switch (route) {
    case "GET /": {
      if (!user) return html(res, 200, page(null));
      // Every page load starts with a fresh token.
      const notified = url.searchParams.get("notified");
      return html(res, 200, page(user, notified && `Notified ${notified}.`), { "Set-Cookie": await heraldCookie(user) });
    }
    case "POST /login": {
      const { user: name } = await readForm(req);
      if (!validUser(name)) return html(res, 400, page(null, "A name is 1 to 64 letters, digits and . _ @ -"));
      const id = randomBytes(24).toString("base64url");
      sessions.set(id, name);
      return redirect(res, "/", [cookie("app_session", id, { sameSite: "Lax" }), await heraldCookie(name)]);
    }
    case "POST /logout": {
      const m = /(?:^|;\s*)app_session=([A-Za-z0-9_-]+)/.exec(req.headers.cookie || "");
      if (m) sessions.delete(m[1]);
      return redirect(res, "/", [cookie("app_session", "", { sameSite: "Lax", maxAge: 0 }),
        cookie(cookieName, "", { sameSite: "Strict", maxAge: 0, domain: cookieDomain })]);
    }
    case "POST /session/refresh": {
      // The page calls this before the cookie expires, and <herald-inbox> when Herald ends or
      // refuses its stream. The user comes from the app's session, never from the old token.
      if (!user) return json(res, 401, { error: "signed out" });
      return json(res, 200, { user, expires_in: ttl }, { "Set-Cookie": await heraldCookie(user) });
    }
    case "POST /comment": {
      if (!user) return redirect(res, "/");
      const { to, text } = await readForm(req);
      if (!validUser(to) || typeof text !== "string" || !text.trim() || text.length > 500) {
        return html(res, 400, page(user, "Name an author and write a comment."));
      }
      const commentId = randomBytes(9).toString("base64url"); // your comment's id in your database
      try {
        await publish({
          to: [to], type: "comment", key: `comment-${commentId}`,
          title: `${user} commented on your post`, body: text.trim(), url: "/",
          data: { text: `${user} commented on your post: ${text.trim()}`, from: user, comment: commentId },
        });
      } catch (err) {
        console.error("publish:", err.message);
        return html(res, 502, page(user, "Herald did not take the notification; try again."));
      }
      return redirect(res, `/?notified=${encodeURIComponent(to)}`);
    }
  }
  json(res, 404, { error: "not found" });
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(`${req.method} ${new URL(req.url, publicURL).pathname}:`, err.message);
    if (!res.headersSent) json(res, 400, { error: "bad request" });
    else res.end();
  });
});
const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
server.listen(port, host, () => {
  console.log(`example app on ${publicURL.origin} (listening on ${addr}), Herald at ${heraldURL}`);
});
