// agent-web: sign-in on the static site, before any socket opens (AgentCore's /ws needs a JWT).
// It calls the Cognito user-pool API from the browser (public client, no secret) and leaves the
// tokens where the app's pages keep them (localStorage aw_access, aw_refresh, aw_expires).
const config = await (await fetch("/aw-config.json")).json();
const $ = (id) => document.getElementById(id);
let mode = "signin";

async function cognito(action, body) {
  const answer = await fetch(config.cognitoEndpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AWSCognitoIdentityProviderService." + action,
    },
    body: JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = new Error(data.message || data.Message || "Sign-in failed (" + answer.status + ").");
    error.kind = String(data.__type || "").split("#").pop();
    throw error;
  }
  return data;
}

function keep(result, refreshToken) {
  localStorage.setItem("aw_access", result.AccessToken);
  localStorage.setItem("aw_refresh", result.RefreshToken || refreshToken);
  localStorage.setItem("aw_expires", String(Math.floor(Date.now() / 1000) + result.ExpiresIn));
  const next = new URLSearchParams(location.search).get("next") || "/";
  location.replace(next.startsWith("/") && !next.startsWith("//") ? next : "/");
}

function show(newMode, notice = "") {
  mode = newMode;
  $("heading").textContent = { signin: "Sign in", signup: "Create an account", confirm: "Confirm your e-mail" }[mode];
  $("submit").textContent = { signin: "Sign in", signup: "Sign up", confirm: "Confirm" }[mode];
  $("password-row").hidden = mode === "confirm";
  $("code-row").hidden = mode !== "confirm";
  $("to-signup").hidden = mode !== "signin";
  $("to-signin").hidden = mode === "signin";
  $("notice").textContent = notice;
  $("error").textContent = "";
}

async function signIn(email, password) {
  const answer = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: config.clientId,
    AuthParameters: { USERNAME: email, PASSWORD: password },
  });
  if (!answer.AuthenticationResult) {
    throw new Error("This account needs a step this page does not offer (" + answer.ChallengeName + ").");
  }
  keep(answer.AuthenticationResult);
}

async function submit(event) {
  event.preventDefault();
  const email = $("email").value.trim();
  const password = $("password").value;
  $("submit").disabled = true;
  $("error").textContent = "";
  try {
    if (mode === "signin") {
      await signIn(email, password);
    } else if (mode === "signup") {
      await cognito("SignUp", {
        ClientId: config.clientId,
        Username: email,
        Password: password,
        UserAttributes: [{ Name: "email", Value: email }],
      });
      show("confirm", "We sent a code to " + email + ": enter it to confirm.");
    } else {
      await cognito("ConfirmSignUp", { ClientId: config.clientId, Username: email, ConfirmationCode: $("code").value.trim() });
      await signIn(email, password);
    }
  } catch (error) {
    if (error.kind === "UserNotConfirmedException") {
      show("confirm", "Confirm your e-mail first: enter the code we sent.");
    } else {
      $("error").textContent = error.message;
    }
  } finally {
    $("submit").disabled = false;
  }
}

async function refreshSilently() {
  const refresh = localStorage.getItem("aw_refresh");
  if (!refresh) return;
  try {
    const answer = await cognito("InitiateAuth", {
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: config.clientId,
      AuthParameters: { REFRESH_TOKEN: refresh },
    });
    keep(answer.AuthenticationResult, refresh);
  } catch {
    localStorage.removeItem("aw_refresh"); // expired or revoked: sign in again
  }
}

$("form").addEventListener("submit", submit);
$("to-signup").addEventListener("click", (e) => { e.preventDefault(); show("signup"); });
$("to-signin").addEventListener("click", (e) => { e.preventDefault(); show("signin"); });
await refreshSilently();
