"""The container images: what goes into them, their content tags, and the build and push.

An image's tag is a hash of exactly the files its Dockerfile copies, so `up` builds and pushes
only when one of them changed, and a second `up` finds the image already in ECR.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy import ecr
from deploy.context import Context, DeployError

# The container's command, here and in the Dockerfile's CMD (a test keeps them equal); the local
# AgentCore emulator runs exactly this.
CONTAINER_COMMAND = ["python", "-m", "app.container"]
PLATFORM = "linux/arm64"  # AgentCore runs arm64 containers only
ROOT = Path(__file__).resolve().parent.parent

Runner = Callable[[Sequence[str], Path, str | None], None]


@dataclass(frozen=True)
class ImageSpec:
    kind: str  # the tag's first word: app or probe
    dockerfile: str
    context: str
    sources: tuple[str, ...]  # every path the Dockerfile copies, relative to the checkout


APP_IMAGE = ImageSpec(
    "app",
    "Dockerfile",
    ".",
    ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "rxconfig.py", "app", "assets"),
)
PROBE_IMAGE = ImageSpec(
    "probe", "deploy/Dockerfile.probe", "deploy", ("deploy/Dockerfile.probe", "deploy/probe_app.py")
)


def content_tag(spec: ImageSpec, root: Path = ROOT) -> str:
    """`<kind>-<16 hex>`: a hash of the paths and bytes of the image's source files (those git
    tracks or would track; caches and build outputs are ignored)."""
    digest = hashlib.sha256()
    for path in source_files(spec, root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
        digest.update(b"\1" if path.stat().st_mode & 0o111 else b"\0")
    return f"{spec.kind}-{digest.hexdigest()[:16]}"


def source_files(spec: ImageSpec, root: Path = ROOT) -> list[Path]:
    try:
        listed = subprocess.run(
            [
                "git",
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                *spec.sources,
            ],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = {name for name in listed.split("\0") if name}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file
        names = {
            p.relative_to(root).as_posix()
            for source in spec.sources
            for p in ([root / source] if (root / source).is_file() else (root / source).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }
    return sorted(root / name for name in names if (root / name).is_file())


def ensure(ctx: Context, spec: ImageSpec, given: str | None, run: Runner | None = None) -> str:
    """The image URI to deploy: `given` as it is, or the one built from the checkout (built and
    pushed only when ECR does not have its tag yet)."""
    if given:
        ctx.report.line("✓", f"image {given} (given)")
        return given
    repository = ctx.outputs.repository_uri or ecr.ensure(ctx)
    tag = content_tag(spec)
    uri = f"{repository}:{tag}"
    what = f"image {uri}"
    if ecr.has_image(ctx, tag):
        ctx.report.exists(what)
        return uri
    build_and_push(ctx, spec, uri, run or _run)
    ctx.report.created(what)
    return uri


def build_and_push(ctx: Context, spec: ImageSpec, uri: str, run: Runner) -> None:
    builder = _builder(ctx.settings.builder)
    auth = ctx.clients.ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    ctx.report.note(f"building {spec.dockerfile} for {PLATFORM} with {builder} (minutes)")
    run(
        [builder, "login", "--username", user, "--password-stdin", auth["proxyEndpoint"]],
        ROOT,
        password,
    )
    files = ["-f", spec.dockerfile, spec.context]
    if builder == "docker":
        # Without provenance the push is one image manifest, which every AgentCore client reads.
        run(
            [
                "docker",
                "buildx",
                "build",
                "--platform",
                PLATFORM,
                "--provenance=false",
                "--push",
                "-t",
                uri,
                *files,
            ],
            ROOT,
            None,
        )
    else:
        run(["podman", "build", "--platform", PLATFORM, "-t", uri, *files], ROOT, None)
        run(["podman", "push", uri], ROOT, None)


def _builder(choice: str) -> str:
    """`auto`: Docker when its daemon answers (a docker client alone is common), else Podman."""
    if choice != "auto":
        if shutil.which(choice):
            return choice
    elif shutil.which("docker") and _answers(
        ["docker", "version", "--format", "{{.Server.Version}}"]
    ):
        return "docker"
    elif shutil.which("podman"):
        return "podman"
    raise DeployError(
        "No image builder: install Docker (with buildx) or Podman, or pass --image <uri>"
    )


def _answers(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _run(argv: Sequence[str], cwd: Path, stdin: str | None) -> None:
    result = subprocess.run(list(argv), cwd=cwd, input=stdin, text=True, check=False)
    if result.returncode:
        raise DeployError(f"{argv[0]} {argv[1]} failed (exit {result.returncode})")
