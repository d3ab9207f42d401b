"""A local stand-in for GitHub: the web side (OAuth), the REST API and git over smart HTTP.

The app's GitHub features are tested against a real server that behaves like GitHub Enterprise
Server (`GITHUB_URL` = `web_url`, `GITHUB_API_URL` = `web_url + "/api/v3"`):

- the OAuth app web flow (`/login/oauth/authorize`, `/login/oauth/access_token`), one
  registered app whose `client_id`/`client_secret` are random, `signed_in_as` the browser's user;
- REST under `/api/v3`: `/user`, `/user/repos` (paged with `Link`), `/search/repositories`,
  `/repos/{o}/{r}`, its branches and pull requests, with GitHub's field names, errors and scopes;
- git's smart HTTP at `/<owner>/<repo>.git` through `git http-backend` over real bare
  repositories under `root`, tokens as HTTP Basic passwords, GH006 for protected branches.

Everything seen is recorded (`requests`, with the Authorization header's value, and `pulls`) so
tests can check where a token travelled. Not served: forks, organisations and collaborators
(only owners write), merging, GitHub Apps and their installation tokens, rate limits, SSH.

Run standalone: `python -m app.devtools.github --help`; in tests, `GitHubStandIn`.
"""

from app.devtools.github.server import GitHubStandIn

__all__ = ["GitHubStandIn"]
