"""Progress, one line per step ("✓ S3 bucket agent-web-... (exists)"), and a count of what
changed, so a second `up` can say plainly that it changed nothing."""

from __future__ import annotations

import sys
from typing import TextIO


class Report:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.changes: list[str] = []

    def line(self, mark: str, text: str) -> None:
        print(f"{mark} {text}", file=self.out, flush=True)

    def exists(self, what: str, detail: str = "") -> None:
        self.line("✓", f"{what} (exists{'; ' + detail if detail else ''})")

    def created(self, what: str, detail: str = "") -> None:
        self._changed("✓", what, f"created{': ' + detail if detail else ''}")

    def updated(self, what: str, why: str) -> None:
        self._changed("✓", what, f"updated: {why}")

    def deleted(self, what: str) -> None:
        self._changed("✓", what, "deleted")

    def absent(self, what: str) -> None:
        self.line("✓", f"{what} (absent)")

    def kept(self, what: str, why: str) -> None:
        self.line("-", f"{what} (kept: {why})")

    def skipped(self, what: str, why: str) -> None:
        self.line("-", f"{what} (skipped: {why})")

    def state(self, what: str, state: str) -> None:
        """`status`: a resource and what it is doing."""
        self.line("•", f"{what}: {state}")

    def waiting(self, what: str, state: str, seconds: float) -> None:
        self.line("…", f"{what}: {state} ({seconds:.0f} s)")

    def note(self, text: str) -> None:
        self.line("→", text)

    def warn(self, text: str) -> None:
        self.line("!", text)

    def summary(self) -> None:
        if not self.changes:
            self.line("=", "Nothing changed: everything was already in place.")
        else:
            self.line("=", f"{len(self.changes)} change(s).")

    def _changed(self, mark: str, what: str, how: str) -> None:
        self.changes.append(f"{what}: {how}")
        self.line(mark, f"{what} ({how})")
