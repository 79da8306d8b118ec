// Keeps the HttpOnly herald_token cookie fresh. The page cannot read the cookie (that is the
// point of HttpOnly), so it asks the app's backend to set a new one: on a timer, at two thirds of
// the token's life, and through <herald-inbox>'s refresh hook when Herald ends the stream
// (herald.expired) or refuses it (the tab slept past the expiry); the element then reopens the
// stream with the new cookie and resumes where it stopped.
const inbox = document.querySelector("herald-inbox");
let timer;

async function refresh() {
  const resp = await fetch("/session/refresh", { method: "POST" });
  if (resp.status === 401) { // signed out, in another tab or on the server
    location.assign("/");
    return;
  }
  if (!resp.ok) throw new Error(`/session/refresh: HTTP ${resp.status}`);
  const { user, expires_in: expiresIn } = await resp.json();
  // Someone else signed in to the app in another tab: the cookie is theirs now, and this page
  // is not theirs to show.
  if (user !== inbox.getAttribute("user")) {
    location.reload();
    return;
  }
  schedule(expiresIn);
}

function schedule(seconds) {
  clearTimeout(timer);
  timer = setTimeout(() => refresh().catch((err) => console.warn(err.message)), (seconds * 1000 * 2) / 3);
}

if (inbox) {
  inbox.refresh = refresh;
  schedule(Number(document.body.dataset.tokenTtl));
}
