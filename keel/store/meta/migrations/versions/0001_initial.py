"""Initial schema: runs, and their params, metrics and tags.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _run_id(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("run_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["keel_runs.id"], name=f"fk_{table}_run_id_keel_runs", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    """Create the four keel_ tables and their indexes."""
    op.create_table(
        "keel_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("experiment", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.String(), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_keel_runs"),
    )
    for column in ("created_at", "experiment", "status"):
        op.create_index(f"ix_keel_runs_{column}", "keel_runs", [column])

    op.create_table(
        "keel_run_params",
        *_run_id("keel_run_params"),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value_json", sa.Text(), nullable=False),
        sa.Column("value_num", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_keel_run_params"),
    )
    op.create_index("ix_keel_run_params_name_value_num", "keel_run_params", ["name", "value_num"])

    op.create_table(
        "keel_run_metrics",
        *_run_id("keel_run_metrics"),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_keel_run_metrics"),
    )
    op.create_index("ix_keel_run_metrics_name_value", "keel_run_metrics", ["name", "value"])

    op.create_table(
        "keel_run_tags",
        *_run_id("keel_run_tags"),
        sa.Column("tag", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "tag", name="pk_keel_run_tags"),
    )
    op.create_index("ix_keel_run_tags_tag", "keel_run_tags", ["tag"])


def downgrade() -> None:
    """Drop the four keel_ tables (indexes go with them)."""
    for table in ("keel_run_tags", "keel_run_metrics", "keel_run_params", "keel_runs"):
        op.drop_table(table)
