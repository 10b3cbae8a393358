"""Fixtures for the plugins' tests: the npm MCP servers, installed from the lock file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).with_name("js")
EVERYTHING = JS / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
NPM_CI_TIMEOUT_S = 300


def pytest_configure(config: pytest.Config) -> None:
    # httpx2 and httpcore2 iterate response bodies with async generators, which the
    # MCP SDK's HTTP transports leave suspended when they cancel a held stream (the
    # standalone GET stream of streamable HTTP, the SSE stream). Trio closes each
    # one it finds collected, and warns (python-trio/trio#2378; the httpx side is
    # encode/httpx#3686). Harmless, and not ours to fix; every other warning stays
    # an error.
    config.addinivalue_line(
        "filterwarnings", r"ignore:Async generator 'http(x|core)2\.:ResourceWarning"
    )


@pytest.fixture(scope="session")
def everything() -> Path:
    """The ``@modelcontextprotocol/server-everything`` script; ``npm ci`` installs it if missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run @modelcontextprotocol/server-everything")
    if not EVERYTHING.exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed in {JS}: {done.stderr[-2000:]}"
    assert EVERYTHING.exists(), f"npm ci did not install {EVERYTHING}"
    return EVERYTHING
