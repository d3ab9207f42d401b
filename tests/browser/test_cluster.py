"""The page on two app instances behind a proxy: Reflex's Redis state manager, one PostgreSQL,
one data folder, one Redis for the instances (app/agent/cluster.py). The agent lives on the
instance that served the user first; a page connected to the other instance is answered by
it, token by token; and a page whose connection is cut comes back on the other instance with
its state, and goes on."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, expect

from app.devtools.proxy import ThreadedProxy
from tests.browser.conftest import ARTIFACTS, RunningApp, start_app
from tests.browser.test_chat import send, sign_in, sign_up
from tests.cluster.test_two_instances import REDIS_URL
from tests.conftest import fresh_postgres_database

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

AGENT_S = 60_000


@dataclass
class Cluster:
    url: str  # the proxy's
    proxy: ThreadedProxy
    a: RunningApp
    b: RunningApp


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("cluster-data")
    run = secrets.token_hex(3)
    proxy = ThreadedProxy([])
    port = proxy.start()
    url = f"http://localhost:{port}/"
    try:
        with fresh_postgres_database() as database:
            env = {
                "DATABASE_URL": database,
                "CLUSTER_REDIS_URL": REDIS_URL,
                "REFLEX_REDIS_URL": REDIS_URL.rsplit("/", 1)[0] + "/6",
                "APP_SECRET_KEY": secrets.token_hex(32),
                "REFLEX_API_URL": url.rstrip("/"),  # the pages talk to the proxy
            }
            # Build folders of this run's own: the proxy's address is built into the pages.
            with (
                # With Redis, Reflex runs a worker process per core and a half; fewer here
                # (B's two are two instances of the cluster themselves).
                start_app(data, name=f"cluster-a-{run}", env={**env, "GRANIAN_WORKERS": "1"}) as a,
                start_app(data, name=f"cluster-b-{run}", env={**env, "GRANIAN_WORKERS": "2"}) as b,
            ):
                proxy.route([_address(a.url), _address(b.url)])
                yield Cluster(url, proxy, a, b)
    finally:
        proxy.stop()
        for name in ("a", "b"):
            shutil.rmtree(ARTIFACTS / f"cluster-{name}-{run}", ignore_errors=True)


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return "127.0.0.1", int(parsed.port or 80)


def open_on(browser: Browser, cluster: Cluster, index: int) -> Page:
    """A fresh page through the proxy, its connections (for now) to instance `index`."""
    cluster.proxy.pin(index)
    context = browser.new_context(base_url=cluster.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    return context.new_page()


def test_pages_on_either_instance_share_the_users_agent(browser: Browser, cluster: Cluster) -> None:
    on_a = open_on(browser, cluster, 0)
    sign_up(on_a, "two-pages@example.com")
    on_a.locator("#new-session").click()
    send(on_a, "echo typed on a")
    expect(on_a.locator(".msg-assistant").last).to_have_text(
        "You said: typed on a", timeout=AGENT_S
    )

    on_b = open_on(browser, cluster, 1)
    sign_in(on_b, "two-pages@example.com")
    on_b.locator(".session-item", has_text="echo typed on a").locator(".session-title").click()
    expect(on_b.locator(".msg-assistant").last).to_have_text("You said: typed on a")
    send(on_b, "long story")
    expect(on_b.locator("#streaming")).to_contain_text("w20", timeout=AGENT_S)
    expect(on_b.locator(".msg-assistant").last).to_contain_text("w400", timeout=AGENT_S)
    # The page on A follows the same conversation: the prompt typed on B, and its answer.
    expect(on_a.locator(".msg-user").last).to_have_text("long story")
    expect(on_a.locator(".msg-assistant").last).to_contain_text("w400", timeout=AGENT_S)

    # Every connection is cut and comes back on B: the page on A keeps its session and
    # goes on there (its state is in Redis), answered by the agent that still runs on A.
    to_b = cluster.proxy.proxy.served[1]
    cluster.proxy.cut()
    deadline = time.monotonic() + 30
    while cluster.proxy.proxy.served[1] == to_b:  # the page reconnects, through the proxy
        assert time.monotonic() < deadline, "the page did not come back"
        on_a.wait_for_timeout(100)
    expect(on_a.locator("#connected")).to_be_visible()
    expect(on_a.locator(".msg-user")).to_have_count(2)
    expect(on_a.locator("#title")).to_have_text("echo typed on a")
    send(on_a, "echo after moving")
    expect(on_a.locator(".msg-assistant").last).to_have_text(
        "You said: after moving", timeout=AGENT_S
    )
    expect(on_a.locator(".msg-user")).to_have_count(3)
    for page in (on_a, on_b):
        page.context.close()
