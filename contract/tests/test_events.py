import json

import jsonschema
import pytest
from pydantic import ValidationError

from ferry_contract import (
    ErrorInfo,
    EventType,
    ImageInfo,
    ImportEventData,
    JobState,
    Phase,
    make_import_event,
    parse_callback,
)
from ferry_contract.events import MAX_LAYERS
from ferry_contract.schema import callback_schema


def _data(**overrides):
    base = dict(
        job_id="job-1",
        host="lab1",
        seq=1,
        state="running",
        phase="importing",
        percent=12.5,
        bytes_done=100,
        bytes_total=800,
        rate_bps=50.0,
        eta_s=14.0,
    )
    base.update(overrides)
    return ImportEventData(**base)


def test_completed_event_round_trips_through_json():
    image = ImageInfo(ref="ceos:4.35.1F", id="sha256:" + "a" * 64, size=2_600_000_000, tags=["ceos:4.35.1F"])
    event = make_import_event(EventType.COMPLETED, _data(state="succeeded", phase="done", percent=100, image=image))
    parsed = parse_callback(event.model_dump_json())
    assert parsed == event
    assert parsed.data.image.tags == ["ceos:4.35.1F"]


def test_event_type_and_state_must_agree():
    with pytest.raises(ValueError, match="cannot carry state"):
        make_import_event(EventType.COMPLETED, _data(state="failed"))
    with pytest.raises(ValueError, match="needs error"):
        make_import_event(EventType.FAILED, _data(state="failed"))


def test_unknown_fields_and_bad_values_are_refused():
    body = make_import_event(EventType.PROGRESS, _data()).model_dump(mode="json")
    body["data"]["surprise"] = 1
    with pytest.raises(ValidationError):
        parse_callback(json.dumps(body))
    body["data"].pop("surprise")
    body["data"]["seq"] = 0
    with pytest.raises(ValidationError):
        parse_callback(json.dumps(body))


def test_json_schema_accepts_every_event_the_models_produce():
    schema = callback_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failed = make_import_event(
        EventType.FAILED,
        _data(state="failed", error=ErrorInfo(code="corrupt_compression", message="xz data is corrupt")),
    )
    for event in (make_import_event(EventType.PROGRESS, _data()), failed):
        validator.validate(event.model_dump(mode="json"))


def test_json_schema_refuses_a_progress_without_seq():
    validator = jsonschema.Draft202012Validator(callback_schema())
    body = make_import_event(EventType.PROGRESS, _data()).model_dump(mode="json")
    del body["data"]["seq"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(body)


def test_schema_lists_the_vocabulary_clients_rely_on():
    extra = callback_schema()["x-ferry"]
    assert set(extra["event_types"]) == {t.value for t in EventType}
    assert set(extra["states"]) == {s.value for s in JobState}
    assert "finalizing" in extra["phases"] and Phase.FINALIZING.value == "finalizing"


def test_a_loading_event_carries_layer_counts_through_model_and_schema():
    validator = jsonschema.Draft202012Validator(callback_schema())
    data = _data(
        phase="loading",
        percent=71.5,
        layers_done=3,
        layers_total=7,
        layer_bytes_done=120_000_000,
        layer_bytes_total=270_000_000,
    )
    body = make_import_event(EventType.PROGRESS, data).model_dump(mode="json")
    validator.validate(body)
    assert parse_callback(json.dumps(body)).data.layers_done == 3
    assert "loading" in callback_schema()["x-ferry"]["phases"] and Phase.LOADING.value == "loading"


@pytest.mark.parametrize(
    "field,value",
    [("layers_done", -1), ("layers_total", MAX_LAYERS + 1), ("layer_bytes_done", -5), ("layer_bytes_total", "many")],
)
def test_layer_fields_out_of_bounds_are_refused_by_model_and_schema(field, value):
    validator = jsonschema.Draft202012Validator(callback_schema())
    body = make_import_event(EventType.PROGRESS, _data(phase="loading")).model_dump(mode="json")
    body["data"][field] = value
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(body)
    with pytest.raises(ValidationError):
        parse_callback(json.dumps(body))
