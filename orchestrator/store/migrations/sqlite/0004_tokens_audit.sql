-- synod store schema v4: API tokens (only the SHA-256 of each token's secret is stored, never
-- the token) and the audit log of security-relevant actions (approvals, registry changes,
-- token management), each naming the acting token's subject. Times are microseconds since 1970.
CREATE TABLE api_tokens (
    token_id    TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    roles       TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       BIGINT NOT NULL,
    subject    TEXT NOT NULL,
    token_id   TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time);
