-- synod store schema v2 (SQLite): the binding outbox. A binding's request is recorded
-- (state 'pending') before it is sent, and marked 'delivered' or 'failed' after, so a restarted
-- orchestrator resends only what was not confirmed, with the same idempotency key.

CREATE TABLE outbox (
    run_id          TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    binding         TEXT    NOT NULL,                -- binding name, unique within the run
    idempotency_key TEXT    NOT NULL,
    request         TEXT    NOT NULL,                -- JSON, without resolved secrets
    state           TEXT    NOT NULL,                -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT,                            -- JSON report of the last delivery
    created_at      INTEGER NOT NULL,                -- microseconds since the Unix epoch
    completed_at    INTEGER,
    PRIMARY KEY (run_id, binding)
);
CREATE INDEX outbox_pending ON outbox (created_at) WHERE state = 'pending';
