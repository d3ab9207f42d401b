"""A code editor for the Files tab: CodeMirror 6 through `@uiw/react-codemirror`, with the
language chosen by the file's extension (`@codemirror/lang-*`), plain text otherwise.

Reflex fetches the npm packages when it builds the frontend; no JavaScript is written here
beyond the one expression that picks the language's extension.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.event import passthrough_event_spec
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import Var, VarData

# language name (as the state says it) -> (npm package, its export, the call that makes it)
LANGUAGES = {
    "python": ("@codemirror/lang-python@6.2.1", "python", "()"),
    "javascript": ("@codemirror/lang-javascript@6.2.5", "javascript", "({jsx: true})"),
    "typescript": (
        "@codemirror/lang-javascript@6.2.5",
        "javascript",
        "({jsx: true, typescript: true})",
    ),
    "json": ("@codemirror/lang-json@6.0.2", "json", "()"),
    "markdown": ("@codemirror/lang-markdown@6.5.2", "markdown", "()"),
    "html": ("@codemirror/lang-html@6.4.12", "html", "()"),
    "css": ("@codemirror/lang-css@6.3.1", "css", "()"),
}
BY_SUFFIX = {
    "py": "python", "pyi": "python",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "typescript", "tsx": "typescript", "mts": "typescript", "cts": "typescript",
    "json": "json",
    "md": "markdown", "markdown": "markdown",
    "html": "html", "htm": "html",
    "css": "css",
}  # fmt: skip


def language_of(path: str) -> str:
    """The editor's language for a file name ("" for plain text)."""
    name = path.rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return BY_SUFFIX.get(suffix, "")


def _alias(export: str) -> str:
    return "cm_" + export


def _extensions(language: Var) -> Var:
    """The JS array of CodeMirror extensions for `language` (a state var): its language
    support, or none."""
    imports: dict[str, list[ImportVar]] = {}
    for package, export, _ in LANGUAGES.values():
        names = imports.setdefault(package, [])
        if all(i.alias != _alias(export) for i in names):
            names.append(ImportVar(tag=export, alias=_alias(export)))
    table = ", ".join(
        f"{name}: () => [{_alias(export)}{call}]" for name, (_, export, call) in LANGUAGES.items()
    )
    expression = f"(({{{table}}})[{language!s}]?.() ?? [])"
    return Var(
        _js_expr=expression,
        _var_type=list,
        _var_data=VarData.merge(language._get_all_var_data(), VarData(imports=imports)),
    )


class CodeMirror(rx.NoSSRComponent):
    """`@uiw/react-codemirror`'s default export."""

    library = "@uiw/react-codemirror@4.25.12"
    tag = "CodeMirror"
    is_default = True

    value: Var[str]
    height: Var[str]
    min_height: Var[str]
    max_height: Var[str]
    theme: Var[str]
    extensions: Var[list[Any]]
    editable: Var[bool]
    basic_setup: Var[bool]

    on_change: rx.EventHandler[passthrough_event_spec(str)]  # type: ignore[type-arg,valid-type]


def code_editor(
    value: Any, language: Any, on_change: Any, *, key: Any = None, **props: Any
) -> rx.Component:
    """The editor showing `value` (set when a file opens: the editor keeps the user's edits
    itself, so the state is not echoed back into it while typing), highlighting `language`."""
    return CodeMirror.create(
        value=value,
        extensions=_extensions(Var.create(language)),
        on_change=on_change,
        theme=rx.color_mode_cond("light", "dark"),
        key=key,
        **props,
    )
