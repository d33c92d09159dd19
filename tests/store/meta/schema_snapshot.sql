-- The metadata index schema on SQLite, as keel's migrations create it (checked by
-- tests/store/meta/test_schema.py). A schema change needs a migration and a new snapshot.
CREATE TABLE keel_alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT keel_alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE keel_run_metrics (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    value DOUBLE,
    CONSTRAINT pk_keel_run_metrics PRIMARY KEY (run_id, name),
    CONSTRAINT fk_keel_run_metrics_run_id_keel_runs FOREIGN KEY(run_id) REFERENCES keel_runs (id) ON DELETE CASCADE
);
CREATE TABLE keel_run_params (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    value_json TEXT NOT NULL,
    value_num DOUBLE,
    CONSTRAINT pk_keel_run_params PRIMARY KEY (run_id, name),
    CONSTRAINT fk_keel_run_params_run_id_keel_runs FOREIGN KEY(run_id) REFERENCES keel_runs (id) ON DELETE CASCADE
);
CREATE TABLE keel_run_tags (
    run_id VARCHAR NOT NULL,
    tag VARCHAR NOT NULL,
    CONSTRAINT pk_keel_run_tags PRIMARY KEY (run_id, tag),
    CONSTRAINT fk_keel_run_tags_run_id_keel_runs FOREIGN KEY(run_id) REFERENCES keel_runs (id) ON DELETE CASCADE
);
CREATE TABLE keel_runs (
    id VARCHAR NOT NULL,
    project VARCHAR NOT NULL,
    experiment VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    ended_at VARCHAR,
    duration_s DOUBLE,
    manifest VARCHAR,
    profile VARCHAR NOT NULL,
    why TEXT,
    host VARCHAR NOT NULL,
    user VARCHAR NOT NULL,
    pid INTEGER,
    git_commit VARCHAR,
    git_dirty BOOLEAN,
    CONSTRAINT pk_keel_runs PRIMARY KEY (id)
);
CREATE INDEX ix_keel_run_metrics_name_value ON keel_run_metrics (name, value);
CREATE INDEX ix_keel_run_params_name_value_num ON keel_run_params (name, value_num);
CREATE INDEX ix_keel_run_tags_tag ON keel_run_tags (tag);
CREATE INDEX ix_keel_runs_created_at ON keel_runs (created_at);
CREATE INDEX ix_keel_runs_experiment ON keel_runs (experiment);
CREATE INDEX ix_keel_runs_status ON keel_runs (status);
