"""The CLI's own small error tree. Every failure ends as one line on stderr and a distinct exit code.

Foreign errors (httpx, tuspy, python-socketio, OS) are translated where they are met, so commands
only ever raise these. Scripts match on the exit code; the bracketed code in the message is the
backend's stable error code when there is one.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and did not succeed: a job failed, deliveries were refused
EXIT_USAGE = 2  # bad arguments or a bad local file (also click's own usage errors)
EXIT_UNREACHABLE = 3  # the backend (or replay target) did not answer
EXIT_UNAUTHORIZED = 4  # 401: no token, unknown token
EXIT_FORBIDDEN = 5  # 403: the token's role is too low
EXIT_NOT_FOUND = 6  # unknown job, host or upload
EXIT_REFUSED = 7  # any other refusal by the backend (4xx/5xx with an error code)
EXIT_INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    exit_code = EXIT_FAILED
    code = "failed"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def line(self) -> str:
        return f"ferry: {self.message} [{self.code}]"


class Failed(CliError):
    exit_code = EXIT_FAILED


class BadInput(CliError):
    exit_code = EXIT_USAGE
    code = "invalid_input"


class Unreachable(CliError):
    exit_code = EXIT_UNREACHABLE
    code = "backend_unreachable"


class Unauthorized(CliError):
    exit_code = EXIT_UNAUTHORIZED
    code = "unauthorized"


class Forbidden(CliError):
    exit_code = EXIT_FORBIDDEN
    code = "forbidden"


class NotFound(CliError):
    exit_code = EXIT_NOT_FOUND
    code = "not_found"


class Refused(CliError):
    exit_code = EXIT_REFUSED
    code = "refused"


class Interrupted(CliError):
    exit_code = EXIT_INTERRUPTED
    code = "interrupted"


def for_status(status: int, code: str | None, message: str) -> CliError:
    """The error for an HTTP error answer, from its status and the backend's `{"error": {code, message}}`."""
    if status == 401:
        return Unauthorized(message, code=code or "unauthorized")
    if status == 403:
        return Forbidden(message, code=code or "forbidden")
    if status == 404:
        return NotFound(message, code=code or "not_found")
    return Refused(message, code=code or f"http_{status}")
