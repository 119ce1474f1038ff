"""Headless Chromium (Debian's package) driven by Playwright, for the console's tests and
bench/console.py. No browser is downloaded: Playwright drives /usr/bin/chromium."""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
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


@cache
def root_conftest() -> ModuleType:
    """tests/conftest.py (its ThreadServer), loaded by path: in a whole run the name
    `conftest` may already be another folder's conftest."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_deconflict_tests_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
