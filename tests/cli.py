"""Running the ``backbone`` command as a user would, from tests."""

from __future__ import annotations

import subprocess
import sys


def backbone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
