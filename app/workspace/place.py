"""A user's project as the app's own work on it needs it (git, the editor): whose it is, its
folder and name, and the user's CLI home, which the jail binds beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPlace:
    user_id: str
    project_id: str
    project: Path
    project_name: str
    home: Path
