"""The conformance tests again, against the seed's SDK version (openai 2.8.1).

The seed type list is ``api.md`` of openai-python 2.8.1, while the test
environment pins the newest SDK. The README's test command installs 2.8.1 (with
its own dependencies) into ``.oracle/openai-2.8.1``; this test runs
``test_conformance.py`` in a subprocess with that directory first on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_SDK = ROOT / ".oracle" / "openai-2.8.1"


def test_conformance_with_the_seed_sdk() -> None:
    assert (SEED_SDK / "openai").is_dir(), (
        f"{SEED_SDK} is missing; install it with: python -m pip install --target "
        ".oracle/openai-2.8.1 openai==2.8.1 polyfactory (the README's test command does)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SEED_SDK), str(ROOT)]),
        "CANTATA_EXPECT_SDK": "2.8.1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / "protocol" / "test_conformance.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in summary[0] and "failed" not in summary[0], summary
