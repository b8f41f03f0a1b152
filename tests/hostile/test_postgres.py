"""The column bounds on Postgres, which enforces them (SQLite does not): what the contract allows is stored,
what it refuses never reaches a batch."""

from __future__ import annotations

import asyncio

import pytest

from backend.tests.support import Backend, completed_data
from backend.tests.test_postgres import postgres_url  # noqa: F401  (the throwaway cluster fixture)
from tests.hostile.support import post_signed, queued, unique
from tests.hostile.test_callbacks import _bad_deliveries

pytestmark = pytest.mark.slow

LONGEST_REF = "lab/" + "a" * 251 + ":" + "t" * 128


@pytest.fixture(scope="module")
def pg_backend(postgres_url, tmp_path_factory):  # noqa: F811
    backend = Backend(tmp_path_factory.mktemp("hostile-pg"), env_extra={"FERRY_DATABASE_URL": postgres_url})
    yield backend.start()
    backend.stop()


async def test_a_384_character_reference_is_a_job_on_postgres(pg_backend):
    assert len(LONGEST_REF) == 384
    importer = await pg_backend.add_host(unique("pgref"))
    async with pg_backend.client(pg_backend.token("operator")) as http:
        response = await http.post(
            "/api/imports",
            json={"source_url": "http://files.lab/a.tar", "hosts": [importer.name], "image": LONGEST_REF},
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["jobs"][0]["id"]
    async with pg_backend.client() as http:
        assert (await http.get(f"/api/imports/{job_id}")).json()["image"] == LONGEST_REF


async def test_out_of_range_callbacks_on_postgres_fail_alone(pg_backend):
    importer = await pg_backend.add_host(unique("pgrange"))
    bad = _bad_deliveries(importer.name)
    good_jobs = [unique("good") for _ in range(30)]
    answers = await asyncio.gather(
        *(queued(importer, job) for job in good_jobs),
        *(post_signed(importer, text, msg_id=extra.get("msg_id")) for _, text, extra in bad),
    )
    assert [r.status_code for r in answers[:30]] == [200] * 30
    assert [r.status_code for r in answers[30:]] == [422] * len(bad)
    job_id = "j" * 200
    data = completed_data(job_id, importer.name, 2**31 - 1)
    data.update(
        bytes_done=2**63 - 1,
        bytes_total=2**63 - 1,
        image={"ref": LONGEST_REF, "id": "sha256:" + "a" * 64, "size": 2**63 - 1, "tags": [LONGEST_REF]},
    )
    largest = await importer.send("import.completed", data, msg_id="m" * 200)
    assert largest.status_code == 200, largest.text
    async with pg_backend.client() as http:
        job = (await http.get(f"/api/imports/{job_id}")).json()
    assert (job["seq"], job["image"], job["bytes_done"]) == (2**31 - 1, LONGEST_REF, 2**63 - 1)
