"""The engine's layers, by chain id: what a load will skip."""

import pytest
from test_pipeline_loading import build, remove

from ferry_importer.engine.client import Engine
from ferry_importer.engine.inventory import chain_ids, known_layers


@pytest.mark.engine
async def test_the_engine_names_the_chains_of_the_layers_it_has(engine, docker_client, name, token, cleanup):
    import os

    tag = f"{name}:chains"
    cleanup.append(tag)
    image_id = build(
        docker_client,
        f"FROM scratch\nLABEL ferry.test={token}\nCOPY a /a\nCOPY b /b\n",
        {"a": os.urandom(4096), "b": os.urandom(4096)},
        tag,
    )
    diffs = [d.removeprefix("sha256:") for d in docker_client.images.get(image_id).attrs["RootFS"]["Layers"]]
    known = await known_layers(engine)
    assert set(chain_ids(diffs)) <= known.chain_ids and set(diffs) <= known.diff_ids
    remove(docker_client, tag)
    assert not set(chain_ids(diffs)) & (await known_layers(engine)).chain_ids


async def test_an_engine_that_does_not_answer_knows_no_layers(tmp_path):
    async with Engine(host=f"unix://{tmp_path}/absent.sock", connect_timeout=1.0) as engine:
        known = await known_layers(engine)
    assert not known.chain_ids and not known.diff_ids
