"""Both OpenAPI documents declare every answer: each operation probed without a token and with bad input
answers a status its document lists, and every error answer has the error body."""

from __future__ import annotations

import httpx
import pytest

PROBE_ID = "x-nonexistent"


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete", "head", "options"):
                yield path, method, operation


def _check_declared_errors(document: dict) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status, schema)


def _probe(client: httpx.Client, document: dict, headers_sets: list[dict]) -> list[str]:
    """Every undocumented answer, as `METHOD path -> status`."""
    problems = []
    for path, method, operation in _operations(document):
        url = path.replace("{", "").replace("}", "")
        for name in [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]:
            url = url.replace(name, PROBE_ID)
        for headers in headers_sets:
            body = {"json": {}} if method in ("post", "put", "patch") else {}
            response = client.request(method.upper(), url, headers=headers, **body)
            if str(response.status_code) not in operation["responses"]:
                problems.append(f"{method.upper()} {path} -> {response.status_code}")
            elif response.status_code >= 400 and method != "head":
                error = response.json()["error"]
                assert error["code"] and error["message"], (method, path)
    return problems


def test_the_backend_declares_every_answer(hostile_backend):
    with httpx.Client(base_url=hostile_backend.url, timeout=30) as client:
        document = client.get(
            "/openapi.json", headers={"Authorization": f"Bearer {hostile_backend.admin_token}"}
        ).json()
        assert "ErrorBody" in document["components"]["schemas"]
        _check_declared_errors(document)
        problems = _probe(
            client,
            document,
            [
                {},
                {"Authorization": f"Bearer {hostile_backend.token('viewer')}"},
                {"Authorization": f"Bearer {hostile_backend.admin_token}"},
            ],
        )
    assert problems == []


@pytest.mark.engine
def test_the_importer_declares_every_answer(tmp_path, docker_host):
    from importer.tests.service_process import ImporterProcess

    importer = ImporterProcess(tmp_path / "data", docker_host).start()
    try:
        document = importer.client.get("/v1/openapi.json").json()
        _check_declared_errors(document)
        with httpx.Client(base_url=importer.base_url, timeout=30) as client:
            problems = _probe(client, document, [{}, dict(importer.client.headers)])
    finally:
        importer.close()
    assert problems == []
