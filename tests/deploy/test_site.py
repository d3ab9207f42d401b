"""The static site on Amplify: the SPA rewrite, and the export folder uploaded as a zip."""

from __future__ import annotations

import io
import zipfile

from deploy import amplify
from tests.deploy.conftest import Stack, UploadServer


def test_app_falls_back_to_the_spa_shell(stack: Stack) -> None:
    outputs = stack.up()
    app = stack.amplify.apps[str(outputs.amplify_app_id)]
    assert app["customRules"] == [{"source": "/<*>", "target": "/404.html", "status": "404-200"}]
    assert app["platform"] == "WEB"
    assert stack.params_of("CreateBranch")[0]["enableAutoBuild"] is False


def test_export_folder_is_uploaded_as_a_zip(stack: Stack, uploads: UploadServer) -> None:
    outputs = stack.up()

    sent = uploads.received[f"/{outputs.amplify_app_id}/1.zip"]
    with zipfile.ZipFile(io.BytesIO(sent)) as archive:
        files = {name: archive.read(name).decode() for name in archive.namelist()}
    assert files == {
        "404.html": "<html>spa</html>",
        "_next/static/app.js": "console.log(1)",
        "chat/index.html": "<html>chat</html>",
        "index.html": "<html>home</html>",
    }
    assert [c.split(":")[1] for c in stack.changing_calls() if c.startswith("amplify:")][-3:] == [
        "CreateDeployment",
        "StartDeployment",
        "TagResource",
    ]
    assert f"✓ site {stack.site} (updated: 4 files deployed to {outputs.site_url})" in (
        stack.printed
    )


def test_without_an_export_the_site_waits(stack: Stack) -> None:
    (stack.site / "index.html").unlink()

    stack.up()

    assert stack.params_of("CreateDeployment") == []
    assert any(
        line.startswith(f"- site {stack.site} (skipped: no export") for line in stack.printed
    )


def test_the_same_files_make_the_same_zip(stack: Stack) -> None:
    first = amplify.pack(stack.site)
    (stack.site / "index.html").touch()
    assert amplify.pack(stack.site) == first
