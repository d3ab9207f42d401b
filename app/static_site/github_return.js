// agent-web: the page AgentCore Identity sends the browser back to after consent at GitHub
// (GITHUB_RETURN_URL, added at export by app/static_site/plugin.py). It finishes the link on the
// runtime, through /invocations, as the signed-in user: the runtime checks the state names this
// user and confirms AgentCore's session (`session_id`) with this user's token.
const $ = (id) => document.getElementById(id);

function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

function fail(message) {
  $("heading").textContent = "GitHub was not linked";
  $("message").textContent = "";
  $("error").textContent = message;
}

async function finish() {
  const query = new URLSearchParams(location.search);
  const sessionId = query.get("session_id") || "";
  const state = query.get("state") || query.get("custom_state") || query.get("customState") || "";
  if (!sessionId || !state) {
    fail("The return from GitHub carries no session or state: start the link again from the app.");
    return;
  }
  const access = localStorage.getItem("aw_access") || "";
  const claims = claimsOf(access);
  if (!claims || !claims.sub || claims.exp * 1000 < Date.now() + 30000) {
    // Sign in (or refresh), then come back here with the same query.
    location.assign("/signin.html?next=" + encodeURIComponent(location.pathname + location.search));
    return;
  }
  const config = await (await fetch("/aw-config.json")).json();
  const answer = await fetch(config.invocationsUrl, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: "Bearer " + access,
      "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "agent-web-workspace-" + claims.sub,
    },
    body: JSON.stringify({
      path: "/github/identity/complete",
      method: "POST",
      payload: { session_id: sessionId, state },
    }),
  });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    fail(data.detail || data.message || "The runtime answered " + answer.status + ".");
    return;
  }
  history.replaceState(null, "", location.pathname); // the state is spent: off the address bar
  $("heading").textContent = "GitHub is linked";
  $("message").textContent = "Linked as " + data.login + ". You can close this tab.";
}

finish().catch((error) => fail(String(error.message || error)));
