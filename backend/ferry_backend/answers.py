"""What the backend answers an importer's callback, decided once: the route sends it, the deliveries table keeps it.

Pure: the answer follows from the verdict (and, for a refusal, the problem), so what an operator reads
under a delivery is exactly what the importer got back.
"""

from __future__ import annotations

import json

from ferry_contract.api_errors import error_body

ANSWER_MAX_LEN = 2000  # the `answer` column; an answer is a short JSON object, a refusal's message included


def accepted(verdict: str, job_id: str | None, seq: int | None) -> tuple[int, dict]:
    """A delivery taken (applied, or kept as stale / after the end / a duplicate): 200 with the verdict."""
    if verdict == "wrong_host":
        return 409, error_body("wrong_host", f"job {job_id!r} belongs to another host")
    return 200, {"verdict": verdict, "job_id": job_id, "seq": seq}


def refused(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, error_body(code, message)


def stored(answer: tuple[int, dict]) -> dict:
    """The answer as the deliveries tables keep it: the status and the JSON body, bounded."""
    status, body = answer
    return {"answer_status": status, "answer": json.dumps(body)[:ANSWER_MAX_LEN]}
