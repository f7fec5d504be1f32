-- synod store schema v1 (SQLite). Times are microseconds since the Unix epoch (UTC);
-- JSON is stored as text.

CREATE TABLE runs (
    run_id           TEXT    NOT NULL PRIMARY KEY,  -- UUID v7, hyphenated: text order = time order
    workflow         TEXT    NOT NULL,
    status           TEXT    NOT NULL,              -- pending | running | succeeded | failed | cancelled
    inputs           TEXT    NOT NULL,
    result           TEXT,
    error            TEXT,
    last_seq         INTEGER NOT NULL DEFAULT 0,    -- seq of the newest event
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    lease_owner      TEXT,                          -- replica driving the run
    lease_expires_at INTEGER
);
CREATE INDEX runs_unfinished ON runs (status, lease_expires_at)
    WHERE status IN ('pending', 'running');
CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;

-- The primary key makes a duplicate sequence number impossible.
CREATE TABLE events (
    run_id  TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    time    INTEGER NOT NULL,
    type    TEXT    NOT NULL,                       -- CloudEvents type, e.g. synod.step.succeeded
    payload TEXT    NOT NULL,                       -- RunEventKind JSON; output null when in step_outputs
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Large step outputs, stored once; the StepSucceeded event with the same (run_id, seq) refers to it.
CREATE TABLE step_outputs (
    run_id TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    step   TEXT    NOT NULL,
    output TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq),
    FOREIGN KEY (run_id, seq) REFERENCES events (run_id, seq) ON DELETE CASCADE
);
