"""The web pages in Cognito mode, against moto's Cognito over HTTP: sign up, confirm the
e-mailed code, sign in, chat, sign out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import Browser, Page, expect

from tests.auth.conftest import PASSWORD, REGION, _create_pool
from tests.browser.conftest import RunningApp, open_page, start_app
from tests.browser.test_chat import send

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cognito_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    admin = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    config = _create_pool(
        admin, moto_url, UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
    )
    env = {
        "AUTH_MODE": "cognito",
        "COGNITO_REGION": config.region,
        "COGNITO_USER_POOL_ID": config.user_pool_id,
        "COGNITO_CLIENT_ID": config.client_id,
        "COGNITO_JWKS_URL": config.effective_jwks_url,
        "COGNITO_ENDPOINT_URL": moto_url,
        "ALLOWED_EMAIL_DOMAINS": "example.com",
    }
    try:
        with start_app(
            Path(tmp_path_factory.mktemp("cognito-data")), name="web-cognito", env=env
        ) as app:
            yield app
    finally:
        server.stop()


@pytest.fixture
def cognito_page(browser: Browser, cognito_app: RunningApp) -> Iterator[Page]:
    with open_page(browser, cognito_app) as page:
        yield page


def sign_up(page: Page, email: str) -> None:
    page.goto("/signup")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password2").fill(PASSWORD)
    page.locator("#sign-up").click()


def test_sign_up_confirm_sign_in_and_chat_through_cognito(cognito_page: Page) -> None:
    page = cognito_page
    sign_up(page, "carol@example.com")
    expect(page).to_have_url(re.compile(r".*/confirm"))
    expect(page.locator("#auth-notice")).to_contain_text("carol@example.com")
    page.locator("#email").fill("carol@example.com")
    page.locator("#code").fill("123456")
    page.locator("#confirm").click()
    expect(page).to_have_url(re.compile(r".*/login$"))
    page.locator("#email").fill("carol@example.com")
    page.locator("#password").fill(PASSWORD)
    page.locator("#sign-in").click()
    expect(page.locator("#user-email")).to_have_text("carol@example.com")
    send(page, "echo hello through cognito")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: hello through cognito")
    page.reload()
    expect(page.locator(".msg-assistant").last).to_have_text("You said: hello through cognito")
    page.locator("#sign-out").click()
    expect(page).to_have_url(re.compile(r".*/login$"))


def test_a_foreign_domain_cannot_sign_up(cognito_page: Page) -> None:
    page = cognito_page
    sign_up(page, "mallory@elsewhere.org")
    expect(page.locator("#auth-error")).to_be_visible()


def test_signing_in_before_confirming_leads_to_the_code_page(cognito_page: Page) -> None:
    page = cognito_page
    sign_up(page, "dave@example.com")
    expect(page).to_have_url(re.compile(r".*/confirm"))
    page.goto("/login")
    page.locator("#email").fill("dave@example.com")
    page.locator("#password").fill(PASSWORD)
    page.locator("#sign-in").click()
    expect(page).to_have_url(re.compile(r".*/confirm\?email=dave%40example.com"))
    expect(page.locator("#auth-error")).to_contain_text("Confirm your e-mail")
