"""Profiles and store settings."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keel.spec import DEFAULT_PROFILE, ProfileSpec, ProjectSpec, StoreSpec
from tests.spec.samples import SMALL_CATALOG

Problems = Callable[[str], list[str]]
Make = Callable[[str], ProjectSpec]


def test_the_dev_profile_exists_when_none_is_declared(make_project: Make) -> None:
    project = make_project(SMALL_CATALOG)
    assert project.profiles == {DEFAULT_PROFILE: ProfileSpec()}


def test_a_profile_written_without_a_body_is_empty(make_project: Make) -> None:
    project = make_project(SMALL_CATALOG + "profiles:\n  dev:\n  ci:\n")
    assert project.profiles == {"dev": ProfileSpec(), "ci": ProfileSpec()}


def test_a_profile_declares_strictness_values_store_and_environment(make_project: Make) -> None:
    project = make_project(
        SMALL_CATALOG
        + "profiles:\n"
        + "  prod:\n"
        + "    strict: true\n"
        + "    params: {lr: 1, mode: slow}\n"
        + "    store: {objects: s3://bucket/keel}\n"
        + "    env: {OMP_NUM_THREADS: 1, MODE: fast, RATIO: 0.5}\n"
    )
    prod = project.profiles["prod"]
    assert prod.strict is True
    assert prod.params == {"lr": 1.0, "mode": "slow"}
    assert prod.store == StoreSpec(objects="s3://bucket/keel")
    assert prod.env == {"OMP_NUM_THREADS": "1", "MODE": "fast", "RATIO": "0.5"}


def test_profile_values_are_checked_against_the_catalog(make_problems: Problems) -> None:
    text = SMALL_CATALOG + "profiles:\n  prod:\n    params: {lrr: 1, epochs: 0}\n"
    assert make_problems(text) == [
        "keel.yaml:8: profiles.prod.params.lrr: 'lrr' is not in the catalog; did you mean 'lr'?",
        "keel.yaml:8: profiles.prod.params.epochs: 0 is out of range: must be between 1 and 100",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            "strict: yes",
            "keel.yaml:8: profiles.prod.strict: expected true or false, "
            "got 'yes' (text); write true or false without quotes (YAML 1.2 reads "
            "yes/no/on/off as text)",
            id="strict-yes",
        ),
        pytest.param(
            "env: {DEBUG: true}",
            "keel.yaml:8: profiles.prod.env.DEBUG: expected a string, got true; quote the value",
            id="bool-env-value",
        ),
        pytest.param(
            "env: {'BAD NAME': x}",
            "keel.yaml:8: profiles.prod.env.BAD NAME: 'BAD NAME' "
            "is not a valid environment variable name",
            id="bad-env-name",
        ),
        pytest.param(
            "store: {index: .keel/index.db}",
            "keel.yaml:8: profiles.prod.store.index: "
            "'.keel/index.db' is not a database URL; write it like "
            "sqlite:///.keel/index.db or postgresql://host/db",
            id="index-not-url",
        ),
        pytest.param(
            "store: {object: x}",
            "keel.yaml:8: profiles.prod.store.object: unknown key; did you mean 'objects'?",
            id="store-typo",
        ),
        pytest.param(
            "strictt: true",
            "keel.yaml:8: profiles.prod.strictt: unknown key; did you mean 'strict'?",
            id="typo",
        ),
    ],
)
def test_bad_profile_fields_are_reported(make_problems: Problems, body: str, problem: str) -> None:
    assert make_problems(SMALL_CATALOG + "profiles:\n  prod:\n    " + body + "\n") == [problem]


def test_the_profile_store_overrides_the_top_level_store_field_by_field(make_project: Make) -> None:
    project = make_project(
        SMALL_CATALOG
        + "store: {objects: .keel/objects, index: 'sqlite:///.keel/index.db'}\n"
        + "profiles:\n"
        + "  team:\n"
        + "    store: {index: 'postgresql://db/keel'}\n"
    )
    assert project.store_for("dev") == StoreSpec(
        objects=".keel/objects", index="sqlite:///.keel/index.db"
    )
    assert project.store_for("team") == StoreSpec(
        objects=".keel/objects", index="postgresql://db/keel"
    )


def test_without_store_settings_every_field_is_unset(make_project: Make) -> None:
    assert make_project(SMALL_CATALOG).store_for("dev") == StoreSpec()


def test_a_profile_name_must_be_simple(make_problems: Problems) -> None:
    assert make_problems(SMALL_CATALOG + "profiles:\n  'my profile': {strict: true}\n") == [
        "keel.yaml:7: profiles.my profile: 'my profile' is not a valid profile name; "
        "use letters, digits, _ and -"
    ]


def test_an_empty_object_store_location_is_refused(make_problems: Problems) -> None:
    assert make_problems(SMALL_CATALOG + "store: {objects: ' '}\n") == [
        "keel.yaml:6: store.objects: the object store location is empty"
    ]
