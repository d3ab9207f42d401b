"""The Git tab of the rail: the open session's project as git sees it (branch, changed files,
a file's coloured diff), and commit (of the checked files), discard (confirmed first), branches,
push and pull requests for it."""

from __future__ import annotations

import reflex as rx

from app.ui.state.git import DiffLine, GitFile, GitState, Said

MUTED = {"size": "1", "color": rx.color("gray", 10)}
SECTION = {
    "width": "100%",
    "spacing": "2",
    "padding_top": "0.75em",
    "border_top": f"1px solid {rx.color('gray', 5)}",
}
FILE_COLOURS = {"?": "green", "A": "green", "D": "red", "R": "blue", "M": "amber"}


def _said(said: Said, element_id: str) -> rx.Component:
    """An action's answer under its button: green when done, red with the reason when not."""
    return rx.cond(
        said.text != "",
        rx.text(
            said.text,
            size="1",
            color=rx.cond(said.failed, rx.color("red", 11), rx.color("green", 11)),
            id=element_id,
            word_break="break-word",
        ),
    )


def _title(icon: str, text: str) -> rx.Component:
    return rx.hstack(
        rx.icon(icon, size=14),
        rx.text(text, size="2", weight="bold"),
        align="center",
        spacing="2",
    )


def _refresh() -> rx.Component:
    return rx.button(
        rx.icon("refresh_cw", size=14),
        "Refresh",
        size="1",
        variant="soft",
        loading=GitState.loading,
        on_click=GitState.refresh,
        id="git-refresh",
    )


def _head() -> rx.Component:
    """The project, its branch and where it came from; Refresh."""
    return rx.vstack(
        rx.hstack(
            rx.icon("git_branch", size=14),
            rx.text(
                GitState.branch,
                size="2",
                weight="bold",
                font_family="monospace",
                flex="1",
                min_width="0",
                trim="both",
                id="git-branch",
            ),
            _refresh(),
            width="100%",
            align="center",
        ),
        rx.text(
            GitState.project_name,
            rx.cond(
                GitState.github_repo != "",
                rx.fragment(" · from ", rx.code(GitState.github_repo)),
                " · not cloned from GitHub",
            ),
            **MUTED,
            id="git-project",
        ),
        width="100%",
        spacing="1",
    )


def _file(change: GitFile) -> rx.Component:
    """A changed file: in the next commit or not, its diff on a click, its discard."""
    return rx.hstack(
        rx.checkbox(
            checked=~GitState.unchecked.contains(change.path),
            on_change=lambda checked: GitState.check_file(change.path, checked),
            size="1",
            class_name="git-check",
            title="In the next commit",
        ),
        rx.hstack(
            rx.badge(
                change.code,
                size="1",
                variant="soft",
                font_family="monospace",
                color_scheme=rx.match(change.code, *FILE_COLOURS.items(), "gray"),
            ),
            rx.text(
                change.path,
                size="1",
                font_family="monospace",
                flex="1",
                min_width="0",
                word_break="break-all",
            ),
            on_click=GitState.show_diff(change.path),  # type: ignore[misc]
            cursor="pointer",
            flex="1",
            min_width="0",
            align="center",
            title="Show the diff",
        ),
        rx.icon_button(
            rx.icon("undo_2", size=12),
            size="1",
            variant="ghost",
            color_scheme="red",
            disabled=GitState.working != "",
            on_click=GitState.ask_discard(change.path),
            class_name="git-discard",
            title="Discard the changes",
            aria_label="Discard the changes to " + change.path,
        ),
        width="100%",
        align="center",
        padding="0.2em 0.4em",
        border_radius="6px",
        background=rx.cond(GitState.selected == change.path, rx.color("accent", 4), "transparent"),
        _hover={"background": rx.color("accent", 3)},
        class_name="git-file",
    )


def _discard_dialog() -> rx.Component:
    """Names what will be lost before anything is: one file, or each file of "all"."""
    one = GitState.discarding.length() == 1
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(
                rx.cond(
                    one,
                    "Discard changes to " + GitState.discarding[0] + "?",
                    "Discard the changes to these "
                    + GitState.discarding.length().to_string()
                    + " files?",
                ),
                word_break="break-all",
            ),
            rx.cond(
                ~one,
                rx.box(
                    rx.foreach(
                        GitState.discarding,
                        lambda path: rx.text(path, size="1", font_family="monospace"),
                    ),
                    max_height="30vh",
                    overflow_y="auto",
                    margin_y="0.5em",
                ),
            ),
            rx.alert_dialog.description(
                rx.cond(
                    one,
                    "This cannot be undone: the file goes back to the last commit (a new file "
                    "is deleted).",
                    "This cannot be undone: changed files go back to the last commit, new files "
                    "are deleted.",
                )
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", on_click=GitState.cancel_discard)
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Discard",
                        color_scheme="red",
                        on_click=GitState.confirm_discard,
                        id="confirm-discard",
                    )
                ),
                justify="end",
                spacing="2",
                margin_top="1em",
            ),
            id="discard-dialog",
        ),
        open=GitState.discarding.length() > 0,
    )


def _diff_line(line: DiffLine) -> rx.Component:
    return rx.el.div(
        line.text,
        color=rx.match(
            line.kind,
            ("add", rx.color("green", 11)),
            ("del", rx.color("red", 11)),
            ("hunk", rx.color("blue", 11)),
            ("meta", rx.color("gray", 10)),
            rx.color("gray", 12),
        ),
        background=rx.match(
            line.kind,
            ("add", rx.color("green", 3)),
            ("del", rx.color("red", 3)),
            "transparent",
        ),
        min_height="1.4em",
        padding_x="0.4em",
        class_name=line.kind,
    )


def _diff() -> rx.Component:
    """The chosen file's diff: monospace, as git wrote it, scrolling both ways when long."""
    return rx.cond(
        GitState.selected != "",
        rx.box(
            rx.foreach(GitState.diff, _diff_line),
            font_family="monospace",
            font_size="11px",
            line_height="1.4em",
            white_space="pre",
            width="100%",
            max_height="45vh",
            overflow="auto",
            border=f"1px solid {rx.color('gray', 5)}",
            border_radius="6px",
            padding_y="0.3em",
            id="git-diff",
        ),
    )


def _changes() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(
                rx.cond(
                    GitState.files.length() == 0,
                    "No changes since the last commit.",
                    "Changes (click one for its diff):",
                ),
                flex="1",
                **MUTED,
            ),
            rx.cond(
                GitState.files.length() > 0,
                rx.button(
                    "Discard all…",
                    size="1",
                    variant="ghost",
                    color_scheme="red",
                    disabled=GitState.working != "",
                    on_click=GitState.ask_discard_all,
                    id="discard-all",
                ),
            ),
            width="100%",
            align="center",
        ),
        rx.vstack(rx.foreach(GitState.files, _file), spacing="0", width="100%", id="git-files"),
        _said(GitState.discard_said, "discard-result"),
        _discard_dialog(),
        _diff(),
        width="100%",
        spacing="1",
    )


def _commit() -> rx.Component:
    return rx.vstack(
        _title("git_commit_horizontal", "Commit"),
        rx.text_area(
            value=GitState.commit_message,
            on_change=GitState.set_commit_message,
            placeholder="What the change does",
            size="1",
            width="100%",
            rows="2",
            id="commit-message",
        ),
        rx.button(
            rx.icon("check", size=14),
            rx.cond(
                GitState.unchecked.length() == 0,
                "Commit all",
                "Commit the checked files (" + GitState.checked_count.to_string() + ")",
            ),
            size="1",
            width="100%",
            loading=GitState.working == "Committing…",
            disabled=GitState.working != "",
            on_click=GitState.commit,
            id="commit",
        ),
        _said(GitState.commit_said, "commit-result"),
        **SECTION,
    )


def _branches() -> rx.Component:
    return rx.vstack(
        _title("git_fork", "Branch"),
        rx.select(
            GitState.branches,
            value=GitState.branch,
            on_change=GitState.switch_branch,
            disabled=GitState.working != "",
            size="1",
            width="100%",
            id="switch-branch",
        ),
        rx.form(
            rx.hstack(
                rx.input(
                    value=GitState.new_branch,
                    on_change=GitState.set_new_branch,
                    placeholder="New branch from this one",
                    name="new_branch",
                    size="1",
                    flex="1",
                    id="new-branch",
                ),
                rx.button(
                    "Create",
                    size="1",
                    type="submit",
                    disabled=GitState.working != "",
                    id="create-branch",
                ),
                width="100%",
            ),
            on_submit=GitState.create_branch,
            width="100%",
        ),
        _said(GitState.branch_said, "branch-result"),
        **SECTION,
    )


def _push() -> rx.Component:
    return rx.vstack(
        _title("cloud-upload", "GitHub"),
        rx.hstack(
            rx.button(
                rx.icon("arrow_down_to_line", size=14),
                rx.cond(GitState.pulling, "Pulling…", "Pull"),
                size="1",
                variant="soft",
                loading=GitState.pulling,
                on_click=GitState.pull,
                id="pull",
            ),
            rx.button(
                rx.icon("arrow_up_from_line", size=14),
                rx.cond(GitState.pushing, "Pushing…", "Push " + GitState.branch),
                size="1",
                flex="1",
                loading=GitState.pushing,
                on_click=GitState.push,
                id="push",
            ),
            width="100%",
        ),
        _said(GitState.push_said, "push-result"),
        rx.button(
            rx.icon("git_pull_request", size=14),
            "Pull request…",
            size="1",
            width="100%",
            variant=rx.cond(GitState.pr_open, "solid", "soft"),
            on_click=GitState.start_pull_request,
            id="pr-start",
        ),
        rx.cond(GitState.pr_open, _pull_request()),
        **SECTION,
    )


def _labelled(label: str, field: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, **MUTED), field, spacing="1", width="100%")


def _pull_request() -> rx.Component:
    """Drafted from the session and the branch's commits; the user edits it and opens it."""
    return rx.vstack(
        rx.cond(
            GitState.drafting,
            rx.hstack(rx.spinner(size="1"), rx.text("Drafting…", **MUTED), align="center"),
        ),
        _labelled(
            "Title",
            rx.input(
                value=GitState.pr_title,
                on_change=GitState.set_pr_title,
                size="1",
                width="100%",
                id="pr-title",
            ),
        ),
        _labelled(
            "Description",
            rx.text_area(
                value=GitState.pr_body,
                on_change=GitState.set_pr_body,
                size="1",
                width="100%",
                rows="6",
                id="pr-body",
            ),
        ),
        _labelled(
            "From " + GitState.branch + " into",
            rx.input(
                value=GitState.pr_base,
                on_change=GitState.set_pr_base,
                placeholder="the repository's default branch",
                size="1",
                width="100%",
                id="pr-base",
            ),
        ),
        rx.button(
            "Open pull request",
            size="1",
            width="100%",
            loading=GitState.opening_pr,
            disabled=GitState.drafting,
            on_click=GitState.open_pull_request,
            id="open-pr",
        ),
        _said(GitState.pr_said, "pr-result"),
        rx.cond(
            GitState.pr_url != "",
            rx.link(
                "Pull request #",
                GitState.pr_number.to_string(),
                " on GitHub ",
                rx.icon("external_link", size=12),
                href=GitState.pr_url,
                is_external=True,
                rel="noopener noreferrer",
                size="1",
                id="pr-link",
            ),
        ),
        width="100%",
        spacing="2",
        padding="0.5em",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="8px",
    )


def _error() -> rx.Component:
    return rx.cond(
        GitState.error != "",
        rx.callout(
            rx.hstack(
                rx.text(GitState.error, flex="1"),
                rx.icon_button(
                    rx.icon("x", size=12),
                    size="1",
                    variant="ghost",
                    on_click=GitState.dismiss_error,
                    aria_label="Dismiss",
                ),
            ),
            icon="triangle_alert",
            color_scheme="red",
            size="1",
            width="100%",
            id="git-error",
        ),
    )


def git_panel() -> rx.Component:
    return rx.vstack(
        _error(),
        rx.cond(
            GitState.has_project,
            rx.vstack(
                _head(),
                _changes(),
                _commit(),
                _branches(),
                _push(),
                width="100%",
                spacing="3",
            ),
            rx.vstack(
                rx.cond(
                    GitState.error == "",
                    rx.text("Open a session to see its project's git.", **MUTED),
                ),
                _refresh(),
                width="100%",
                spacing="2",
            ),
        ),
        width="100%",
        spacing="2",
        id="git-panel",
    )
