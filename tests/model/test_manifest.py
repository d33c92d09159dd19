"""Stored manifests stay readable: every schema version has a fixture that must load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.base.canonical import canonical_json
from keel.errors import UserError
from keel.model.manifest import SCHEMA_VERSION, Manifest
from keel.model.run import RunStatus

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["manifest_v1.json"], ids=["v1"])
def test_stored_manifest_of_every_schema_version_is_readable(name: str) -> None:
    data = json.loads((FIXTURES / name).read_text())
    manifest = Manifest.from_json(data)
    assert manifest.run.status is RunStatus.SUCCEEDED
    assert manifest.config.params["epochs"].source == "experiment"
    assert manifest.schema_version == SCHEMA_VERSION


def test_current_version_round_trips_to_identical_canonical_bytes() -> None:
    data = json.loads((FIXTURES / "manifest_v1.json").read_text())
    again = Manifest.from_json(data).to_json()
    assert canonical_json(again) == canonical_json(data)


def test_manifest_from_a_newer_keel_is_refused_with_advice() -> None:
    data = json.loads((FIXTURES / "manifest_v1.json").read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(UserError, match="upgrade keel"):
        Manifest.from_json(data)


def test_hand_edited_manifest_with_an_invalid_value_is_refused() -> None:
    data = json.loads((FIXTURES / "manifest_v1.json").read_text())
    data["run"]["status"] = "great"
    with pytest.raises(UserError, match=r"run\.status"):
        Manifest.from_json(data)
