"""Running the ``backbone`` command as a user would, from tests."""

from __future__ import annotations

import os
import subprocess
import sys

from events.settings import StoreSettings


def backbone(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def backbone_on(
    store_settings: StoreSettings, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``backbone ARGS`` against a test's own store (its name and master key), with more
    ``BACKBONE_*`` settings given as keyword arguments (``BACKBONE_RETENTION_YEARS=…``)."""
    store = {
        "BACKBONE_STORE_NAME": store_settings.store_name,
        "BACKBONE_MASTER_KEY_FILE": str(store_settings.master_key_file),
        "BACKBONE_WITNESS_DIR": str(store_settings.witness_dir),
    }
    return backbone(*args, env={**os.environ, **store, **env})


def migrated(env: dict[str, str]) -> dict[str, str]:
    """``env`` after ``backbone migrate`` ran with it, as ``backbone up`` does before the
    services start: they connect as their own roles, which make no tables."""
    done = backbone("migrate", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return env
