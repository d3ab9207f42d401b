"""The GitHub section of the Projects tab: link the account, pick a repository and a branch,
clone it into a new project with git's progress."""

from __future__ import annotations

import reflex as rx

from app.ui.state.github import GitHubState, Repo

MUTED = {"size": "1", "color": rx.color("gray", 10)}


def _not_set_up() -> rx.Component:
    return rx.text(
        "GitHub is not set up here. To turn it on, register an OAuth app whose callback URL is ",
        rx.code(GitHubState.callback_url, word_break="break-all"),
        ", set GITHUB_OAUTH_CLIENT_ID and GITHUB_OAUTH_CLIENT_SECRET (and GITHUB_URL for "
        "GitHub Enterprise Server), then restart.",
        **MUTED,
        id="github-not-set-up",
    )


def _start_identity_link() -> rx.Component:
    """On AgentCore: the consent URL is asked of AgentCore Identity on this click; the link
    below then opens it (or the account is linked at once)."""
    return rx.button(
        rx.icon("link", size=14),
        "Link GitHub",
        size="1",
        loading=GitHubState.starting_link,
        on_click=GitHubState.start_identity_link,
        id="start-github-link",
    )


def _link() -> rx.Component:
    """A real link, so the click itself opens GitHub's page (no popup blocker in the way);
    the click also starts the watcher that notices when the link is made."""
    return rx.vstack(
        rx.text(
            "Link your GitHub account to clone its repositories into new projects. ",
            "It asks for the ",
            rx.code(GitHubState.asks_for),
            " scope",
            rx.cond(GitHubState.scope_words != "", rx.fragment(": ", GitHubState.scope_words)),
            ".",
            **MUTED,
            id="github-scope",
        ),
        rx.cond(
            GitHubState.authorize_url != "",
            rx.button(
                rx.el.a(
                    rx.icon("link", size=14),
                    rx.cond(GitHubState.through_identity, "Continue at GitHub", "Link GitHub"),
                    href=GitHubState.authorize_url,
                    target="_blank",
                    rel="noopener noreferrer",
                ),
                as_child=True,
                size="1",
                on_click=GitHubState.watch_link,
                id="link-github",
            ),
            rx.cond(GitHubState.through_identity, _start_identity_link()),
        ),
        rx.cond(
            GitHubState.waiting_for_link,
            rx.hstack(
                rx.spinner(size="1"),
                rx.text("Waiting for you to authorize in GitHub's tab…", **MUTED),
                align="center",
                spacing="2",
                id="github-waiting",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _account() -> rx.Component:
    return rx.hstack(
        rx.text(
            "Linked as ",
            rx.text.strong(GitHubState.login, id="github-login"),
            size="1",
            flex="1",
            min_width="0",
            trim="both",
        ),
        rx.button(
            "Unlink",
            size="1",
            variant="ghost",
            color_scheme="gray",
            on_click=GitHubState.ask_unlink,
            id="unlink-github",
        ),
        width="100%",
        align="center",
    )


def _repo_item(repo: Repo) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(repo.full_name, size="1", weight="medium", flex="1", min_width="0"),
            rx.badge(
                rx.cond(repo.private, "private", "public"),
                size="1",
                variant="soft",
                color_scheme=rx.cond(repo.private, "amber", "gray"),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            repo.description != "",
            rx.text(repo.description, **MUTED, no_of_lines=2),
        ),
        on_click=GitHubState.choose(repo.full_name),
        cursor="pointer",
        spacing="1",
        width="100%",
        padding="0.4em 0.5em",
        border_radius="8px",
        _hover={"background": rx.color("accent", 3)},
        class_name="repo-item",
    )


def _picker() -> rx.Component:
    return rx.vstack(
        rx.text("Clone one of your repositories into a new project:", **MUTED),
        rx.input(
            placeholder="Search your repositories",
            value=GitHubState.search,
            on_change=GitHubState.set_search.debounce(400),
            size="1",
            width="100%",
            id="github-search",
        ),
        rx.vstack(
            rx.foreach(GitHubState.repos, _repo_item),
            spacing="0",
            width="100%",
            max_height="45vh",
            overflow_y="auto",
            id="github-repos",
        ),
        rx.cond(
            GitHubState.loading_repos,
            rx.hstack(rx.spinner(size="1"), rx.text("Asking GitHub…", **MUTED), align="center"),
            rx.cond(
                GitHubState.repos.length() == 0,
                rx.text(
                    rx.cond(GitHubState.search != "", "No repository matches.", "No repositories."),
                    **MUTED,
                ),
            ),
        ),
        rx.cond(
            GitHubState.repos_more & ~GitHubState.loading_repos,
            rx.button(
                "More",
                size="1",
                variant="soft",
                width="100%",
                on_click=GitHubState.more_repositories,
                id="more-repos",
            ),
        ),
        width="100%",
        spacing="1",
    )


def _labelled(label: str, field: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, **MUTED), field, spacing="1", width="100%")


def _clone_form() -> rx.Component:
    """The chosen repository: which branch, an optional new branch, the project's name."""
    repo = GitHubState.chosen
    return rx.vstack(
        rx.hstack(
            rx.icon("git_fork", size=14),
            rx.text(repo.full_name, size="2", weight="medium", flex="1", min_width="0"),
            rx.icon_button(
                rx.icon("x", size=12),
                size="1",
                variant="ghost",
                on_click=GitHubState.unchoose,
                disabled=GitHubState.cloning,
                title="Pick another repository",
                aria_label="Pick another repository",
                id="github-unchoose",
            ),
            width="100%",
            align="center",
            id="github-chosen",
        ),
        _labelled(
            "Branch",
            rx.select(
                GitHubState.branches,
                value=GitHubState.branch,
                on_change=GitHubState.set_branch,
                disabled=GitHubState.loading_branches | GitHubState.cloning,
                size="1",
                width="100%",
                id="github-branch",
            ),
        ),
        _labelled(
            "New branch from it (optional)",
            rx.input(
                value=GitHubState.new_branch,
                on_change=GitHubState.set_new_branch,
                placeholder="e.g. my-change",
                size="1",
                width="100%",
                id="github-new-branch",
            ),
        ),
        _labelled(
            "Project",
            rx.input(
                value=GitHubState.project_name,
                on_change=GitHubState.set_project_name,
                size="1",
                width="100%",
                id="github-project",
            ),
        ),
        rx.button(
            rx.icon("download", size=14),
            "Clone",
            size="1",
            width="100%",
            loading=GitHubState.cloning,
            on_click=GitHubState.clone,
            id="clone",
        ),
        width="100%",
        spacing="2",
        padding="0.5em",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="8px",
    )


def _progress() -> rx.Component:
    return rx.cond(
        GitHubState.show_progress,
        rx.vstack(
            rx.text(GitHubState.clone_text, size="1", id="clone-phase"),
            rx.progress(value=GitHubState.clone_percent, max=100, width="100%"),
            width="100%",
            spacing="1",
            id="clone-progress",
        ),
    )


def _error() -> rx.Component:
    return rx.cond(
        GitHubState.error != "",
        rx.callout(
            rx.hstack(
                rx.text(GitHubState.error, flex="1"),
                rx.icon_button(
                    rx.icon("x", size=12),
                    size="1",
                    variant="ghost",
                    on_click=GitHubState.dismiss_error,
                    aria_label="Dismiss",
                ),
            ),
            icon="triangle_alert",
            color_scheme="red",
            size="1",
            width="100%",
            id="github-error",
        ),
    )


def _unlink_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Unlink GitHub?"),
            rx.alert_dialog.description(
                "Agent Web forgets its GitHub token; projects already cloned stay. To revoke "
                "the app's access at GitHub too, see Settings → Applications there."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", on_click=GitHubState.cancel_unlink)
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Unlink",
                        color_scheme="red",
                        on_click=GitHubState.unlink,
                        id="confirm-unlink",
                    )
                ),
                justify="end",
                spacing="2",
                margin_top="1em",
            ),
        ),
        open=GitHubState.confirming_unlink,
    )


def github_section() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("git_branch", size=14),
            rx.text("GitHub", size="2", weight="bold"),
            align="center",
            spacing="2",
        ),
        _error(),
        rx.cond(
            ~GitHubState.loaded,
            rx.spinner(size="1"),
            rx.cond(
                ~GitHubState.configured,
                _not_set_up(),
                rx.cond(
                    ~GitHubState.linked,
                    _link(),
                    rx.vstack(
                        _account(),
                        rx.cond(GitHubState.chosen.full_name == "", _picker(), _clone_form()),
                        width="100%",
                        spacing="2",
                    ),
                ),
            ),
        ),
        _progress(),
        _unlink_dialog(),
        width="100%",
        spacing="2",
        padding_top="0.75em",
        margin_top="0.5em",
        border_top=f"1px solid {rx.color('gray', 5)}",
        id="github",
    )
