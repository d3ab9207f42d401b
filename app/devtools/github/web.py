"""GitHub's web side: the OAuth web flow, a sign-in form, and pages for repositories and PRs.

The OAuth app flow is GitHub's: `/login/oauth/authorize` shows who asks for which scopes and,
on "Authorize", redirects to `redirect_uri?code=...&state=...`; `/login/oauth/access_token`
trades the code (single use, 10 minutes) for a token, answering errors with 200 and an `error`
field as GitHub does, in JSON when asked with `Accept: application/json`, else form-encoded.
"""

from __future__ import annotations

import html
import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.devtools.github.store import Repo, Store

SCOPE_TEXT = {
    "repo": "Full control of private repositories",
    "public_repo": "Access public repositories",
    "repo:status": "Access commit status",
    "workflow": "Update GitHub Action workflows",
    "user": "Update ALL user data",
    "read:user": "Read ALL user profile data",
    "user:email": "Access user email addresses (read-only)",
    "read:org": "Read org and team membership, read org projects",
}
TROUBLESHOOTING = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors/"
)
MISMATCH = "The redirect_uri MUST match the registered callback URL for this application."


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n",
        status_code=status,
    )


def not_found() -> HTMLResponse:
    return page(
        "Page not found · GitHub",
        "<h1>404</h1><p>This is not the web page you are looking for.</p>",
        404,
    )


def parse_scopes(text: str) -> tuple[str, ...]:
    """GitHub takes scopes separated by spaces or commas; order kept, duplicates dropped."""
    return tuple(dict.fromkeys(s for s in text.replace(",", " ").split() if s))


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


def _hidden(**fields: str) -> str:
    return "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(value, quote=True)}'>"
        for name, value in fields.items()
    )


class WebPages:
    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/login", self.login_page),
            Route("/session", self.sign_in, methods=["POST"]),
            Route("/login/oauth/authorize", self.authorize_page, methods=["GET"]),
            Route("/login/oauth/authorize", self.authorize, methods=["POST"]),
            Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
        ]

    @property
    def page_routes(self) -> list[BaseRoute]:
        """Last in line: they would swallow any two-segment path."""
        return [
            Route("/{owner}/{repo}", self.repo_page),
            Route("/{owner}/{repo}/pull/{number:int}", self.pull_page),
        ]

    # ------------------------------------------------------------------ signing in

    async def home(self, request: Request) -> Response:
        who = self.store.signed_in_as
        status = f"Signed in as <strong>{html.escape(who)}</strong>" if who else "Not signed in"
        return page("GitHub", f"<h1>GitHub stand-in</h1><p id='session'>{status}</p>")

    async def login_page(self, request: Request, message: str = "") -> Response:
        return_to = request.query_params.get("return_to", "/")
        error = f"<p id='error' role='alert'>{html.escape(message)}</p>" if message else ""
        return page(
            "Sign in to GitHub · GitHub",
            f"<h1>Sign in to GitHub</h1>{error}"
            "<form method='post' action='/session'>"
            f"{_hidden(return_to=return_to)}"
            "<label>Username or email address <input id='login_field' name='login'></label>"
            "<label>Password <input id='password' name='password' type='password'></label>"
            "<button type='submit' id='sign_in' name='commit'>Sign in</button></form>",
        )

    async def sign_in(self, request: Request) -> Response:
        """Any password will do; the login must be a known user."""
        form = await request.form()
        login, return_to = str(form.get("login", "")), str(form.get("return_to", "/"))
        user = self.store.user(login)
        if user is None:
            return page(
                "Sign in to GitHub · GitHub",
                f"<h1>Sign in to GitHub</h1><p id='error' role='alert'>Incorrect username or "
                f"password.</p><p><a href='/login?{urlencode({'return_to': return_to})}'>"
                "Try again</a></p>",
            )
        self.store.signed_in_as = user.login
        safe = return_to if return_to.startswith("/") and not return_to.startswith("//") else "/"
        return RedirectResponse(safe, status_code=302)

    # ------------------------------------------------------------------ OAuth

    def _redirect_ok(self, redirect_uri: str) -> bool:
        """GitHub's rule: same scheme, host and port as the callback URL, a path under its."""
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            return False
        if self.store.callback_url is None:
            return True
        registered = urlsplit(self.store.callback_url)
        return (target.scheme, target.netloc) == (registered.scheme, registered.netloc) and (
            target.path.startswith(registered.path)
        )

    def _authorize_problem(self, client_id: str, redirect_uri: str) -> Response | None:
        if client_id != self.store.client_id:
            return not_found()
        if not redirect_uri or not self._redirect_ok(redirect_uri):
            return page(
                "Redirect URI mismatch", f"<h1>Redirect URI mismatch</h1><p>{MISMATCH}</p>", 400
            )
        return None

    async def authorize_page(self, request: Request) -> Response:
        params = request.query_params
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri") or self.store.callback_url or ""
        if problem := self._authorize_problem(client_id, redirect_uri):
            return problem
        app = html.escape(self.store.app_name)
        login = self.store.signed_in_as
        if login is None:
            return_to = urlencode({"return_to": f"{request.url.path}?{request.url.query}"})
            return page(
                "Sign in to GitHub · GitHub",
                f"<h1>Sign in to GitHub</h1><p>to continue to <strong>{app}</strong></p>"
                f"<p><a id='sign_in' href='/login?{return_to}'>Sign in</a></p>",
            )
        scopes = parse_scopes(params.get("scope", ""))
        items = (
            "".join(
                f"<li data-scope='{html.escape(s, quote=True)}'><strong>{html.escape(s)}</strong>"
                f" {html.escape(SCOPE_TEXT.get(s, ''))}</li>"
                for s in scopes
            )
            or "<li data-scope=''>Public data only: limited access to your public data</li>"
        )
        fields = _hidden(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=" ".join(scopes),
            state=params.get("state", ""),
        )
        return page(
            f"Authorize application · {self.store.app_name}",
            f"<h1>Authorize {app}</h1>"
            f"<p><strong>{app}</strong> wants to access your "
            f"<strong id='login'>{html.escape(login)}</strong> account</p>"
            f"<ul id='scopes'>{items}</ul>"
            f"<form method='post' action='/login/oauth/authorize'>{fields}"
            f"<button type='submit' id='cancel' name='authorize' value='0'>Cancel</button>"
            f"<button type='submit' id='authorize' name='authorize' value='1'>"
            f"Authorize {app}</button></form>"
            f"<p>Authorizing will redirect to <strong>{html.escape(redirect_uri)}</strong></p>",
        )

    async def authorize(self, request: Request) -> Response:
        form = await request.form()
        fields = {key: str(value) for key, value in form.items()}
        client_id = fields.get("client_id", "")
        redirect_uri = fields.get("redirect_uri") or self.store.callback_url or ""
        if problem := self._authorize_problem(client_id, redirect_uri):
            return problem
        login = self.store.signed_in_as
        if login is None:
            return RedirectResponse("/login", status_code=302)
        state = {"state": fields["state"]} if fields.get("state") else {}
        if fields.get("authorize") != "1":
            target = with_query(
                redirect_uri,
                error="access_denied",
                error_description="The user has denied your application access.",
                error_uri=TROUBLESHOOTING + "#access-denied",
                **state,
            )
            return RedirectResponse(target, status_code=302)
        scopes = parse_scopes(fields.get("scope", ""))
        code = self.store.grant_code(login, scopes, redirect_uri)
        return RedirectResponse(with_query(redirect_uri, code=code, **state), status_code=302)

    async def access_token(self, request: Request) -> Response:
        params: dict[str, str] = dict(request.query_params)
        if "json" in request.headers.get("content-type", ""):
            try:
                body = json.loads(await request.body() or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = {}
            params.update({k: str(v) for k, v in body.items()} if isinstance(body, dict) else {})
        else:
            params.update({k: str(v) for k, v in (await request.form()).items()})
        as_json = "json" in request.headers.get("accept", "")
        store = self.store
        if (params.get("client_id"), params.get("client_secret")) != (
            store.client_id,
            store.client_secret,
        ):
            return _token_answer(
                as_json,
                error="incorrect_client_credentials",
                error_description="The client_id and/or client_secret passed are incorrect.",
                error_uri=TROUBLESHOOTING + "#incorrect-client-credentials",
            )
        grant = store.take_grant(params.get("code", ""))
        if grant is None:
            return _token_answer(
                as_json,
                error="bad_verification_code",
                error_description="The code passed is incorrect or expired.",
                error_uri=TROUBLESHOOTING + "#bad-verification-code",
            )
        if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
            return _token_answer(
                as_json,
                error="redirect_uri_mismatch",
                error_description=MISMATCH,
                error_uri=TROUBLESHOOTING + "#redirect-uri-mismatch",
            )
        token = store.issue_token(grant.login, grant.scopes)
        return _token_answer(
            as_json, access_token=token, token_type="bearer", scope=",".join(grant.scopes)
        )

    # ------------------------------------------------------------------ pages

    def _page_repo(self, request: Request) -> Repo | None:
        repo = self.store.repo(request.path_params["owner"], request.path_params["repo"])
        who = self.store.signed_in_as
        if repo is None or (repo.private and (who or "").lower() != repo.owner.lower()):
            return None
        return repo

    async def repo_page(self, request: Request) -> Response:
        repo = self._page_repo(request)
        if repo is None:
            return not_found()
        visibility = "Private" if repo.private else "Public"
        return page(
            repo.full_name,
            f"<h1 id='repo'>{html.escape(repo.full_name)}</h1><p>{visibility}</p>"
            f"<p>Default branch: <code>{html.escape(repo.default_branch)}</code></p>",
        )

    async def pull_page(self, request: Request) -> Response:
        repo = self._page_repo(request)
        number = request.path_params["number"]
        pulls = [
            p
            for p in list(self.store.pulls)
            if repo is not None and p["base"]["repo"]["id"] == repo.id and p["number"] == number
        ]
        if not pulls:
            return not_found()
        pull = pulls[0]
        return page(
            f"{pull['title']} · Pull Request #{number}",
            f"<h1 id='title'>{html.escape(pull['title'])} #{number}</h1>"
            f"<p id='state'>{pull['state']}</p><p>wants to merge into "
            f"<code>{html.escape(pull['base']['ref'])}</code> from "
            f"<code>{html.escape(pull['head']['ref'])}</code></p>"
            f"<div id='body'>{html.escape(pull['body'] or '')}</div>",
        )


def _token_answer(as_json: bool, **fields: str) -> Response:
    """GitHub answers the token endpoint with 200 even for errors."""
    if as_json:
        return JSONResponse(fields)
    return Response(urlencode(fields), media_type="application/x-www-form-urlencoded")
