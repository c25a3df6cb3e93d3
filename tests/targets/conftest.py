"""Fixtures for the Glue target: moto server as a subprocess on a free loopback port, and a proxy in front.

`moto_server` starts once per test session; each test gets a reset moto, dummy AWS credentials, and a
fresh `GlueProxy` (paging, limit checks, VersionId, injected throttling and failures).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from glue_proxy import GlueProxy

REGION = "eu-central-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moto_command(port: int) -> list[str]:
    """`moto_server` from PATH, or the same server through `python -m moto.server`."""
    executable = shutil.which("moto_server")
    base = [executable] if executable else [sys.executable, "-m", "moto.server"]
    return [*base, "-H", "127.0.0.1", "-p", str(port)]


def start_moto(timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto server and wait until it answers; returns the process and its URL."""
    port = _free_port()
    process = subprocess.Popen(moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto server exited with code {process.returncode} ({' '.join(moto_command(port))})"
            )
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"moto server did not answer on {url} within {timeout:g} s")


def reset_moto(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """URL of a moto server running for the whole test session."""
    process, url = start_moto()
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and no shared AWS config, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_GLUE",
        "AWS_ENDPOINT_URL_STS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def moto(moto_server: str, aws_env: None) -> str:
    """A moto server with empty state."""
    reset_moto(moto_server)
    return moto_server


@pytest.fixture
def glue_proxy(moto: str) -> Iterator[GlueProxy]:
    """A fresh AWS-like proxy in front of the (reset) moto server."""
    proxy = GlueProxy(moto).start()
    try:
        yield proxy
    finally:
        proxy.stop()
