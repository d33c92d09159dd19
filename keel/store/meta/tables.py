"""The metadata index's tables. Every name starts with ``keel_`` so keel can share a database.

Changing anything here needs a new migration in ``migrations/versions`` (the schema tests
compare the two) and an updated ``tests/store/meta/schema_snapshot.sql``.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

runs = sa.Table(
    "keel_runs",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("project", sa.String(), nullable=False),
    sa.Column("experiment", sa.String(), nullable=False, index=True),
    sa.Column("status", sa.String(), nullable=False, index=True),
    sa.Column("created_at", sa.String(), nullable=False, index=True),  # ISO 8601 UTC, sortable
    sa.Column("ended_at", sa.String(), nullable=True),
    sa.Column("duration_s", sa.Double(), nullable=True),
    sa.Column("manifest", sa.String(), nullable=True),
    sa.Column("profile", sa.String(), nullable=False),
    sa.Column("why", sa.Text(), nullable=True),
    sa.Column("host", sa.String(), nullable=False),
    sa.Column("user", sa.String(), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=True),
    sa.Column("git_commit", sa.String(), nullable=True),
    sa.Column("git_dirty", sa.Boolean(), nullable=True),
)


def _run_id() -> sa.Column[str]:
    return sa.Column(
        "run_id",
        sa.String(),
        sa.ForeignKey(runs.c.id, ondelete="CASCADE"),
        primary_key=True,
    )


run_params = sa.Table(
    "keel_run_params",
    metadata,
    _run_id(),
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("value_json", sa.Text(), nullable=False),  # compact JSON, sorted keys
    sa.Column("value_num", sa.Double(), nullable=True),  # numbers only (not booleans)
    sa.Index(None, "name", "value_num"),
)

run_metrics = sa.Table(
    "keel_run_metrics",
    metadata,
    _run_id(),
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("value", sa.Double(), nullable=True),  # NULL stands for NaN
    sa.Index(None, "name", "value"),
)

run_tags = sa.Table(
    "keel_run_tags",
    metadata,
    _run_id(),
    sa.Column("tag", sa.String(), primary_key=True),
    sa.Index(None, "tag"),
)

CHILD_TABLES = (run_params, run_metrics, run_tags)
