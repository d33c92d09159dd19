"""Profiles (dev, prod, ...): overlays of strictness, parameter values, store, remotes and env."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pydantic import Field, JsonValue

from keel.base.suggest import did_you_mean
from keel.spec.catalog import BadValue, ParamSpec, check_value
from keel.spec.problems import KeyPath, Problems
from keel.spec.schema import ENV_NAME, NAME, EnvText, Section, SpecModel

DEFAULT_PROFILE = "dev"
"""The profile used when none is named; it exists even when keel.yaml does not declare it."""


class StoreSpec(SpecModel):
    """Where runs are kept. Unset fields fall back to the next layer, then to keel's defaults.

    ``objects`` is a folder (relative to the project root) or an fsspec URL; ``index`` is a
    SQLAlchemy URL such as ``sqlite:///.keel/index.db`` or ``postgresql://host/db``.
    """

    objects: str | None = None
    index: str | None = None

    def over(self, lower: StoreSpec) -> StoreSpec:
        """This store's settings, with ``lower``'s where this one leaves a field unset."""
        return StoreSpec(
            objects=self.objects if self.objects is not None else lower.objects,
            index=self.index if self.index is not None else lower.index,
        )


class ProfileSpec(SpecModel):
    """One profile as declared; ``params`` values are checked against the catalog."""

    strict: bool = False
    params: Section[dict[str, JsonValue]] = Field(default_factory=dict)
    store: StoreSpec | None = None
    env: Section[dict[str, EnvText]] = Field(default_factory=dict)
    # Where runs are shared, not how they run: left out of the profile a manifest records.
    remotes: Section[dict[str, str]] = Field(default_factory=dict, exclude=True)


def check_store(store: StoreSpec, path: KeyPath, problems: Problems) -> None:
    """Check the shape of a store section's values."""
    if store.objects is not None and not store.objects.strip():
        problems.add((*path, "objects"), "the object store location is empty")
    if store.index is not None and "://" not in store.index:
        problems.add(
            (*path, "index"),
            f"'{store.index}' is not a database URL",
            hint="write it like sqlite:///.keel/index.db or postgresql://host/db",
        )


def check_remotes(remotes: Mapping[str, str], path: KeyPath, problems: Problems) -> None:
    """Check a ``remotes`` section: names like profile names, each a non-empty URL or folder."""
    for name, url in remotes.items():
        if not NAME.match(name):
            problems.add(
                (*path, name),
                f"'{name}' is not a valid remote name",
                hint="use letters, digits, _ and -",
            )
        if not url.strip():
            problems.add(
                (*path, name),
                "the remote location is empty",
                hint="write an fsspec URL such as s3://bucket/prefix, or a folder path",
            )


def check_profiles(
    raw: Mapping[str, JsonValue],
    *,
    catalog: Mapping[str, ParamSpec],
    declared: Collection[str],
    problems: Problems,
) -> dict[str, ProfileSpec]:
    """Validate the ``profiles`` section; return the valid profiles, ``dev`` always included."""
    profiles: dict[str, ProfileSpec] = {DEFAULT_PROFILE: ProfileSpec()}
    for name, entry in raw.items():
        path: KeyPath = ("profiles", name)
        profile = problems.validate(ProfileSpec, {} if entry is None else entry, path=path)
        if profile is None:
            continue
        if not NAME.match(name):
            problems.add(
                path, f"'{name}' is not a valid profile name", hint="use letters, digits, _ and -"
            )
        if profile.store is not None:
            check_store(profile.store, (*path, "store"), problems)
        check_remotes(profile.remotes, (*path, "remotes"), problems)
        for var in profile.env:
            if not ENV_NAME.match(var):
                problems.add(
                    (*path, "env", var), f"'{var}' is not a valid environment variable name"
                )
        params = _check_values(
            profile.params,
            path=(*path, "params"),
            catalog=catalog,
            declared=declared,
            problems=problems,
        )
        profiles[name] = profile.model_copy(update={"params": params})
    return profiles


def _check_values(
    values: Mapping[str, JsonValue],
    *,
    path: KeyPath,
    catalog: Mapping[str, ParamSpec],
    declared: Collection[str],
    problems: Problems,
) -> dict[str, JsonValue]:
    checked: dict[str, JsonValue] = {}
    for name, value in values.items():
        if name not in declared:
            problems.add(
                (*path, name), f"'{name}' is not in the catalog", hint=did_you_mean(name, declared)
            )
        elif name in catalog:
            result = check_value(catalog[name], value)
            if isinstance(result, BadValue):
                problems.add((*path, name), result.message, hint=result.hint)
            else:
                checked[name] = result
    return checked
