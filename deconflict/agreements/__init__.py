"""Loading agreement files (TOML). The rules themselves live in `deconflict.model.agreement`."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from deconflict.errors import AgreementError
from deconflict.model.agreement import Agreement

__all__ = ["DEFAULT_AGREEMENT", "load", "loads"]

DEFAULT_AGREEMENT = "default.toml"


def loads(text: str) -> Agreement:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgreementError("(file)", f"is not valid TOML: {exc}") from None
    return Agreement.from_mapping(doc)


def load(path: str | Path | None = None) -> Agreement:
    """Load and validate an agreement; `None` loads the one shipped with the package."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_AGREEMENT).read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return loads(text)
