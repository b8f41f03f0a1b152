"""Checks of user input made before any byte is sent: what the backend would refuse anyway, said sooner."""

from __future__ import annotations

import re

from . import errors

ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")  # the contract's ErrorInfo.code pattern


def check_reference(image: str) -> str:
    """An image reference the backend and the importers accept (the contract's own rules)."""
    from ferry_contract import InvalidReference, parse_reference

    try:
        parse_reference(image)
    except InvalidReference as exc:
        raise errors.BadInput(f"--image: {exc}", code="invalid_reference") from None
    return image


def check_failure_code(code: str) -> str:
    if not ERROR_CODE.match(code):
        raise errors.BadInput(f"--fail takes an error code such as engine_error, got {code!r}", code="invalid_code")
    return code
