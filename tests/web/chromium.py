"""Headless Chromium (Debian's package) driven by Playwright, for the console's tests and
bench/console.py. No browser is downloaded: Playwright drives /usr/bin/chromium."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

EXECUTABLE = Path(os.environ.get("DECONFLICT_CHROMIUM", "/usr/bin/chromium"))

#: Software rendering (SwiftShader WebGL), no network of Chromium's own, no first-run UI.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Where screenshots are kept (git-ignored); the README names it.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def launch(playwright: Any, user_data_dir: Path, **options: Any) -> Any:
    """A fresh persistent context (its own new profile in `user_data_dir`) on Chromium."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(EXECUTABLE),
        headless=True,
        args=ARGS,
        viewport=options.pop("viewport", {"width": 1280, "height": 800}),
        **options,
    )
