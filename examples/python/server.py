"""An app that uses Herald, in Python's standard library and PyJWT (Debian: python3-jwt).

It signs users in (by name: your app has its own login), mints each one's Herald subscriber
token and sets it as the HttpOnly herald_token cookie, renews it before it expires, publishes
with a publisher key when someone comments, and serves a page with Herald's <herald-inbox>.
README.md says how to run it and why the cookie is what it is.
"""

import html
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt

env = os.environ
ADDR = env.get("ADDR", "127.0.0.1:3000")
# The app's origin as browsers see it: https makes the cookies Secure, and Herald's
# --cors-origins must list it.
PUBLIC_URL = urllib.parse.urlsplit(env.get("PUBLIC_URL") or f"http://{ADDR}")
PUBLIC_ORIGIN = f"{PUBLIC_URL.scheme}://{PUBLIC_URL.netloc}"
HERALD_URL = env.get("HERALD_URL", "http://127.0.0.1:8080").rstrip("/")
SECRET = env.get("HERALD_JWT_SECRET", "")
PUBLISHER_KEY = env.get("HERALD_PUBLISHER_KEY", "")
ISSUER = env.get("HERALD_JWT_ISSUER", "")
AUDIENCE = env.get("HERALD_JWT_AUDIENCE", "")
COOKIE_NAME = env.get("HERALD_AUTH_COOKIE", "herald_token")
COOKIE_DOMAIN = env.get("COOKIE_DOMAIN", "")  # e.g. example.com for app. and herald.example.com
TTL = env.get("TOKEN_TTL", "900")  # seconds a token, and its cookie, lives

if len(SECRET.encode()) < 32:
    sys.exit("HERALD_JWT_SECRET must be Herald's HS256 secret (at least 32 bytes)")
if not PUBLISHER_KEY.startswith("hk_"):
    sys.exit("HERALD_PUBLISHER_KEY must be a key from `herald keygen` (hk_…)")
if not TTL.isdigit() or int(TTL) < 10:
    sys.exit("TOKEN_TTL must be a whole number of seconds, at least 10")
TTL = int(TTL)
SECURE = PUBLIC_URL.scheme == "https"
HERALD_ORIGIN = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(HERALD_URL))
CSP = (
    f"default-src 'none'; script-src 'self' {HERALD_ORIGIN}; connect-src 'self' {HERALD_ORIGIN}; "
    "img-src 'self' data: https:; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HERE = Path(__file__).parent
ASSETS = {
    "/app.js": ("text/javascript", (HERE / "public/app.js").read_bytes()),
    "/app.css": ("text/css", (HERE / "public/app.css").read_bytes()),
}
VALID_USER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # the ids this app hands out

# The app's own sessions: session id -> user. A real app has these already.
sessions = {}
sessions_lock = threading.Lock()


def mint_token(user):
    """A subscriber token for user: HS256 with the secret Herald has, sub, iat, exp, and iss/aud
    when Herald checks them (--jwt-issuer, --jwt-audience)."""
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + TTL}
    if ISSUER:
        claims["iss"] = ISSUER
    if AUDIENCE:
        claims["aud"] = AUDIENCE
    return jwt.encode(claims, SECRET, algorithm="HS256")


def cookie(name, value, same_site, max_age=None, domain=""):
    """A Set-Cookie value. max_age 0 deletes the cookie."""
    c = f"{name}={value}; Path=/; HttpOnly; SameSite={same_site}"
    if max_age is not None:
        c += f"; Max-Age={max_age}"
    if SECURE:
        c += "; Secure"
    if domain:
        c += f"; Domain={domain}"
    return c


def herald_cookie(user):
    """The Set-Cookie for user's fresh token: it lives exactly as long as the token. Strict: only
    the app's own pages (same site as Herald) send it; see README.md."""
    return cookie(COOKIE_NAME, mint_token(user), "Strict", TTL, COOKIE_DOMAIN)


def publish(notification):
    """Creates a notification in Herald with the publisher key. The idempotency key makes a
    retry of the same comment create nothing new."""
    req = urllib.request.Request(
        HERALD_URL + "/v1/notifications",
        data=json.dumps(notification).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + PUBLISHER_KEY},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # raises HTTPError unless 2xx
        return json.load(resp)["notifications"]


def page(user, notice=""):
    esc = html.escape
    note = f'<p id="notice" role="status">{esc(notice)}</p>' if notice else ""
    if user:
        body = f"""
<header>
  <strong>Example app</strong>
  <span id="who">Signed in as {esc(user)}</span>
  <herald-inbox server="{esc(HERALD_URL)}" user="{esc(user)}" title-count></herald-inbox>
  <form method="post" action="/logout"><button id="sign-out">Sign out</button></form>
</header>
<main>
  {note}
  <h1>A post</h1>
  <p>Comment on it, and its author gets a notification in their bell.</p>
  <form id="comment" method="post" action="/comment">
    <label>Author <input name="to" value="{esc(user)}" required></label>
    <label>Comment <input name="text" required maxlength="500"></label>
    <button>Comment</button>
  </form>
</main>"""
    else:
        body = f"""
<main>
  <h1>Example app</h1>
  {note}
  <form id="login" method="post" action="/login">
    <label>Sign in as <input name="user" required pattern="[A-Za-z0-9_.@\\-]{{1,64}}" autofocus></label>
    <button>Sign in</button>
  </form>
</main>"""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example app</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script type="module" src="{esc(HERALD_URL)}/herald-inbox.js"></script>
<script type="module" src="/app.js"></script>
</head>
<body data-token-ttl="{TTL}">{body}
</body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status, ctype, body, cookies=(), headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for c in cookies:
            self.send_header("Set-Cookie", c)
        self.end_headers()
        self.wfile.write(body)

    def html(self, status, body, cookies=()):
        self.send(status, "text/html; charset=utf-8", body, cookies, {"Content-Security-Policy": CSP})

    def json(self, status, obj, cookies=()):
        self.send(status, "application/json", json.dumps(obj), cookies)

    def redirect(self, to, cookies=()):
        self.send(303, "text/plain", "", cookies, {"Location": to})

    def session_id(self):
        m = re.search(r"(?:^|;\s*)app_session=([A-Za-z0-9_-]+)", self.headers.get("Cookie", ""))
        return m and m.group(1)

    def session_user(self):
        with sessions_lock:
            return sessions.get(self.session_id())

    def same_origin(self):
        """Refuses a POST another site's page made the browser send (CSRF): the app's cookies
        ride along with it by themselves. Requests without these headers are not a browser's."""
        origin, site = self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site")
        return origin in (None, PUBLIC_ORIGIN) and site in (None, "same-origin")

    def read_form(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 16384:
            raise ValueError("body too large")
        body = self.rfile.read(n).decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(body or "{}")
        return dict(urllib.parse.parse_qsl(body))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        # The cookie is for the host in PUBLIC_URL: on another name for this server (localhost
        # for 127.0.0.1) Herald would never get it.
        if self.headers.get("Host") != PUBLIC_URL.netloc:
            return self.redirect(urllib.parse.urlunsplit((PUBLIC_URL.scheme, PUBLIC_URL.netloc, url.path, url.query, "")))
        if url.path in ASSETS:
            return self.send(200, *ASSETS[url.path])
        if url.path != "/":
            return self.json(404, {"error": "not found"})
        user = self.session_user()
        if not user:
            return self.html(200, page(None))
        # Every page load starts with a fresh token.
        notified = urllib.parse.parse_qs(url.query).get("notified", [""])[0]
        self.html(200, page(user, notified and f"Notified {notified}."), [herald_cookie(user)])

    def do_POST(self):
        if not self.same_origin():
            return self.json(403, {"error": f"POST only from {PUBLIC_ORIGIN}"})
        try:
            form = self.read_form()
        except ValueError:
            return self.json(400, {"error": "bad request"})
        user = self.session_user()
        path = urllib.parse.urlsplit(self.path).path

        if path == "/login":
            name = form.get("user")
            if not isinstance(name, str) or not VALID_USER.fullmatch(name):
                return self.html(400, page(None, "A name is 1 to 64 letters, digits and . _ @ -"))
            sid = secrets.token_urlsafe(24)
            with sessions_lock:
                sessions[sid] = name
            return self.redirect("/", [cookie("app_session", sid, "Lax"), herald_cookie(name)])

        if path == "/logout":
            with sessions_lock:
                sessions.pop(self.session_id(), None)
            return self.redirect("/", [cookie("app_session", "", "Lax", 0),
                                       cookie(COOKIE_NAME, "", "Strict", 0, COOKIE_DOMAIN)])

        if path == "/session/refresh":
            # The page calls this before the cookie expires, and <herald-inbox> when Herald ends
            # or refuses its stream. The user comes from the app's session, never the old token.
            if not user:
                return self.json(401, {"error": "signed out"})
            return self.json(200, {"user": user, "expires_in": TTL}, [herald_cookie(user)])

        if path == "/comment":
            if not user:
                return self.redirect("/")
            to, text = form.get("to"), form.get("text")
            if not isinstance(to, str) or not VALID_USER.fullmatch(to) or not isinstance(text, str) \
                    or not text.strip() or len(text) > 500:
                return self.html(400, page(user, "Name an author and write a comment."))
            comment_id = secrets.token_urlsafe(9)  # your comment's id in your database
            try:
                publish({
                    "to": [to], "type": "comment", "key": f"comment-{comment_id}",
                    "title": f"{user} commented on your post", "body": text.strip(), "url": "/",
                    "data": {"text": f"{user} commented on your post: {text.strip()}", "from": user, "comment": comment_id},
                })
            except (urllib.error.URLError, OSError, ValueError) as err:
                detail = err.read().decode(errors="replace") if isinstance(err, urllib.error.HTTPError) else ""
                print(f"publish: {err} {detail}", file=sys.stderr)
                return self.html(502, page(user, "Herald did not take the notification; try again."))
            return self.redirect("/?notified=" + urllib.parse.quote(to))

        self.json(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        pass  # the example logs only its failures


if __name__ == "__main__":
    host, _, port = ADDR.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"example app on {PUBLIC_ORIGIN} (listening on {ADDR}), Herald at {HERALD_URL}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
