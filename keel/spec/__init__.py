"""Layer 2: keel.yaml as code — the parameter catalog, experiments, profiles and their loading.

Everything here is plain validation of a file: no process is started and nothing is written.
"""

from __future__ import annotations

from keel.spec.catalog import BadValue, ParamSpec, check_kind, check_value
from keel.spec.experiment import ExperimentSpec, InputDecl, MetricDecl, parse_template
from keel.spec.problems import KeyPath, LineMap, format_key
from keel.spec.profile import DEFAULT_PROFILE, ProfileSpec, StoreSpec
from keel.spec.project import SPEC_FILE, ProjectSpec, find_spec_file, load_project
from keel.spec.yamlload import YamlDocument, load_yaml

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
