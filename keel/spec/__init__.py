"""Layer 2: keel.yaml as code — the parameter catalog, experiments, profiles and their loading.

Everything here is plain validation of a file: no process is started and nothing is written.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.spec.catalog import BadValue, ParamSpec, check_kind, check_value
    from keel.spec.experiment import ExperimentSpec, InputDecl, MetricDecl
    from keel.spec.locate import SPEC_FILE, find_spec_file
    from keel.spec.problems import KeyPath, LineMap, format_key
    from keel.spec.profile import DEFAULT_PROFILE, ProfileSpec, StoreSpec
    from keel.spec.project import ProjectSpec, load_project
    from keel.spec.template import parse_template
    from keel.spec.yamlload import YamlDocument, load_yaml

_LAZY = {
    "BadValue": "keel.spec.catalog",
    "DEFAULT_PROFILE": "keel.spec.profile",
    "ExperimentSpec": "keel.spec.experiment",
    "InputDecl": "keel.spec.experiment",
    "KeyPath": "keel.spec.problems",
    "LineMap": "keel.spec.problems",
    "MetricDecl": "keel.spec.experiment",
    "ParamSpec": "keel.spec.catalog",
    "ProfileSpec": "keel.spec.profile",
    "ProjectSpec": "keel.spec.project",
    "SPEC_FILE": "keel.spec.locate",
    "StoreSpec": "keel.spec.profile",
    "YamlDocument": "keel.spec.yamlload",
    "check_kind": "keel.spec.catalog",
    "check_value": "keel.spec.catalog",
    "find_spec_file": "keel.spec.locate",
    "format_key": "keel.spec.problems",
    "load_project": "keel.spec.project",
    "load_yaml": "keel.spec.yamlload",
    "parse_template": "keel.spec.template",
}

__all__ = [
    "DEFAULT_PROFILE",
    "SPEC_FILE",
    "BadValue",
    "ExperimentSpec",
    "InputDecl",
    "KeyPath",
    "LineMap",
    "MetricDecl",
    "ParamSpec",
    "ProfileSpec",
    "ProjectSpec",
    "StoreSpec",
    "YamlDocument",
    "check_kind",
    "check_value",
    "find_spec_file",
    "format_key",
    "load_project",
    "load_yaml",
    "parse_template",
]


def __getattr__(name: str) -> object:
    """Import the submodule that defines ``name`` on first use (keeps this package light)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
