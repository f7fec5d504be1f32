-- synod store schema v1 (PostgreSQL). JSON is stored as text, not jsonb: jsonb rejects
-- the \u0000 escapes that security data (binary strings from logs) can contain.

CREATE TABLE runs (
    run_id           UUID        NOT NULL PRIMARY KEY,  -- UUID v7: order = time order
    workflow         TEXT        NOT NULL,
    status           TEXT        NOT NULL,              -- pending | running | succeeded | failed | cancelled
    inputs           TEXT        NOT NULL,
    result           TEXT,
    error            TEXT,
    last_seq         BIGINT      NOT NULL DEFAULT 0,    -- seq of the newest event
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    ended_at         TIMESTAMPTZ,
    lease_owner      TEXT,                              -- replica driving the run
    lease_expires_at TIMESTAMPTZ
);
CREATE INDEX runs_unfinished ON runs (run_id) WHERE status IN ('pending', 'running');
CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;

-- The primary key makes a duplicate sequence number impossible.
CREATE TABLE events (
    run_id  UUID        NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq     BIGINT      NOT NULL,
    time    TIMESTAMPTZ NOT NULL,
    type    TEXT        NOT NULL,                       -- CloudEvents type, e.g. synod.step.succeeded
    payload TEXT        NOT NULL,                       -- RunEventKind JSON; output null when in step_outputs
    PRIMARY KEY (run_id, seq)
);

-- Large step outputs, stored once; the StepSucceeded event with the same (run_id, seq) refers to it.
CREATE TABLE step_outputs (
    run_id UUID   NOT NULL,
    seq    BIGINT NOT NULL,
    step   TEXT   NOT NULL,
    output TEXT   NOT NULL,
    PRIMARY KEY (run_id, seq),
    FOREIGN KEY (run_id, seq) REFERENCES events (run_id, seq) ON DELETE CASCADE
);
