"""Run the test identity provider and drive the authorization code flow with a real HTTP client."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "provider-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rsa_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


@dataclasses.dataclass
class Provider:
    url: str
    directory_path: Path
    client_id: str
    client_secret: str
    redirect_uri: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def set_groups(self, username: str, groups: list[str]) -> None:
        people = json.loads(self.directory_path.read_text())
        people[username]["groups"] = groups
        self.directory_path.write_text(json.dumps(people))

    def vigil_settings(self) -> dict[str, Any]:
        return {
            "VIGIL_OIDC_PROVIDER_NAME": "Test IdP",
            "VIGIL_OIDC_ISSUER": self.issuer,
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize/",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token/",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo/",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/.well-known/jwks.json",
        }


@contextmanager
def running_provider(tmp: Path, redirect_uri: str, people: dict[str, dict[str, Any]]) -> Iterator[Provider]:
    port = free_port()
    directory_path = tmp / "directory.json"
    directory_path.write_text(json.dumps(people))
    provider = Provider(f"http://127.0.0.1:{port}", directory_path, "vigil-client", secrets.token_urlsafe(24), redirect_uri)
    env = {
        **os.environ,
        "OP_DATABASE": str(tmp / "provider.sqlite3"),
        "OP_ISSUER": provider.issuer,
        "OP_RSA_PRIVATE_KEY": rsa_private_pem(),
        "OP_DIRECTORY": str(directory_path),
        "OP_CLIENT_ID": provider.client_id,
        "OP_CLIENT_SECRET": provider.client_secret,
        "OP_REDIRECT_URI": redirect_uri,
        "OP_PASSWORD": PASSWORD,
        "DJANGO_SETTINGS_MODULE": "tests.sso_provider.settings",
    }
    log = (tmp / "provider.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "tests.sso_provider.serve", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        _wait_until_up(f"{provider.issuer}/.well-known/openid-configuration", process, tmp / "provider.log")
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the identity provider stopped: {log.read_text()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the identity provider did not start: {log.read_text()}")


def sign_in_form(page: requests.Response, username: str) -> dict[str, str]:
    """The provider's login form on ``page``, filled in for ``username``."""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    next_url = parse_qs(urlparse(page.url).query)["next"][0]
    return {"csrfmiddlewaretoken": token.group(1), "username": username, "password": PASSWORD, "next": next_url}


def vigil_sso_login(vigil_url: str, username: str) -> tuple[requests.Session, requests.Response]:
    """The whole authorization code flow, started from Vigil's "Sign in with" link, as a browser would follow it."""
    session = requests.Session()
    page = session.get(f"{vigil_url}/login/", timeout=30)
    link = re.search(r'href="([^"]*/oidc/authenticate/[^"]*)"', page.text)
    assert link is not None, page.text[:1000]
    at_provider = session.get(urljoin(vigil_url, link.group(1)), timeout=30)
    return session, session.post(at_provider.url, data=sign_in_form(at_provider, username), timeout=30)


def provider_id_token(provider: Provider, username: str, nonce: str) -> str:
    """An ID token straight from the provider (the client side done by hand), for tampering with."""
    session = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": provider.redirect_uri,
        "scope": "openid email profile groups",
        "state": "s",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    login = session.get(f"{provider.issuer}/authorize/?{urlencode(query)}", timeout=30)
    answer = session.post(login.url, data=sign_in_form(login, username), timeout=30, allow_redirects=False)
    answer = session.get(urljoin(login.url, answer.headers["Location"]), timeout=30, allow_redirects=False)
    code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": provider.redirect_uri,
        "code_verifier": verifier,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    tokens = requests.post(f"{provider.issuer}/token/", data=exchange, timeout=30)
    tokens.raise_for_status()
    return str(tokens.json()["id_token"])
