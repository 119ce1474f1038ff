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
    agreement = Agreement.from_mapping(doc)
    _check_codes(agreement)
    return agreement


def _check_codes(agreement: Agreement) -> None:
    """Per-code deadlines must name codes of the message catalogue."""
    from deconflict.hotline import catalogue

    codes = catalogue.default().codes
    for code in agreement.hotline.deadlines:
        if code not in codes:
            raise AgreementError(
                f"hotline.deadlines.{code}",
                f"is not a code of the message catalogue (codes: {', '.join(sorted(codes))})",
            )


def load(path: str | Path | None = None) -> Agreement:
    """Load and validate an agreement; `None` loads the one shipped with the package."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_AGREEMENT).read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return loads(text)
