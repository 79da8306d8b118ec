// The demo page: signing in, the <herald-inbox> element (the bell, the inbox, the toasts), and in
// dev mode a form to send. Everything about notifications is the element's; this file only
// gives it a user or a token and shows its connection state.
import "/herald-inbox.js";

const config = JSON.parse(document.getElementById("herald-config").textContent);
const $ = (id) => document.getElementById(id);

let inbox = null;
let token = ""; // token mode: this tab's token (sessionStorage), which the stream's cookie carries

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
    await inbox.herald.counts();
  } catch (err) {
    if (err.status === 401) return signOut("Your token has expired: paste a new one.");
  }
  setCookie(token);
}

// signOut forgets this tab's credentials and starts a fresh page, so that nothing of the
// session outlives it. notice is shown on the login form.
function signOut(notice) {
  if (inbox) inbox.remove();
  if (token) {
    sessionStorage.removeItem("herald-token");
    // Clear the cookie only if it is this tab's: another tab may have signed in since.
    if (document.cookie.split("; ").includes(`${config.cookie}=${token}`)) setCookie("", "; Max-Age=0");
  }
  if (notice) sessionStorage.setItem("herald-notice", notice);
  location.replace(location.pathname);
}

const stateLabels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "offline" };

function start({ user, token: t }) {
  $("login").hidden = true;
  $("sign-out").hidden = false;
  $("who").textContent = `signed in as ${user}`;
  inbox = document.createElement("herald-inbox");
  inbox.id = "inbox";
  inbox.setAttribute("user", user); // dev mode: who; with a token: a guard against another tab's cookie
  if (config.push) inbox.setAttribute("push", ""); // the server has Web Push: offer the switch
  inbox.setAttribute("title-count", "");
  if (t) {
    inbox.token = t; // inbox calls send it as a header, so another tab's cookie never matters to them
    inbox.refresh = refresh;
  }
  inbox.addEventListener("herald-state", (e) => {
    const s = e.detail.connection;
    $("state").dataset.state = s;
    $("state").textContent = stateLabels[s] || s;
    // A token the server refuses means signing in again.
    if (e.detail.error && e.detail.error.status === 401 && !config.dev) signOut("Your token expired or was refused: paste a new one.");
  });
  $("inbox-slot").replaceChildren(inbox);
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
  start({ user, token: t });
}

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
  // The text is the notification's title; data.text keeps it for apps that read data only.
  const body = { type: $("type").value, title: $("text").value, data: { text: $("text").value } };
  const url = $("url").value.trim();
  if (url) body.url = url;
  if ($("broadcast").checked) body.broadcast = true;
  else body.to = $("to").value.split(",").map((s) => s.trim()).filter(Boolean);
  try {
    await inbox.herald.publish(body);
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
