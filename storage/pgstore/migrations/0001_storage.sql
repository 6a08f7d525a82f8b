-- signoff schema version 1: what the storage contract keeps (package storage).
--
-- Every string a caller hands the store as a key (ids, idempotency scopes,
-- chat account parts, nonce scopes and values) is bytea, not text: keys are
-- compared byte for byte like Go strings, may hold any byte (a text column
-- refuses 0x00 and invalid UTF-8), and sort in Go's string order. Times that
-- order rows are bytea keys of 12 bytes (seconds with the sign bit flipped,
-- then nanoseconds, big-endian), because timestamptz rounds to microseconds
-- and the contract keeps nanoseconds. Each record itself is its JSON
-- encoding, exactly what the bbolt backend stores, in a json column an
-- operator can read with psql.

CREATE TABLE signoff_schema (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   integer NOT NULL
);

CREATE TABLE requests (
    id                bytea PRIMARY KEY,
    idempotency_scope bytea UNIQUE,
    state             text   NOT NULL,
    action            bytea  NOT NULL,
    requester_issuer  bytea  NOT NULL,
    requester_subject bytea  NOT NULL,
    created_key       bytea  NOT NULL,
    expires_key       bytea  NOT NULL,
    version           bigint NOT NULL,
    body              json   NOT NULL
);
CREATE INDEX requests_by_time ON requests (created_key DESC, id DESC);
CREATE INDEX requests_pending_by_expiry ON requests (expires_key, id) WHERE state = 'pending';
CREATE INDEX requests_pending_by_requester
    ON requests (requester_issuer, requester_subject, created_key, id) WHERE state = 'pending';

-- The audit chain. Its head is one row that every writing transaction locks
-- first (SELECT … FOR UPDATE): that serializes writers across replicas, so a
-- transaction sees every commit before it, and the chain can neither fork
-- nor skip a number; the primary key on seq would refuse a fork even so.
CREATE TABLE audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL,
    hash      bytea  NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, ''::bytea);

CREATE TABLE audit (
    seq    bigint PRIMARY KEY CHECK (seq > 0),
    hash   bytea NOT NULL,
    record bytea NOT NULL
);

-- due_key is the later of next_attempt and lease_until: an entry is due when
-- both have passed.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id bytea NOT NULL,
    kind       bytea NOT NULL,
    due_key    bytea NOT NULL,
    body       json  NOT NULL
);
CREATE INDEX outbox_by_due ON outbox (due_key);

CREATE TABLE links (
    platform      bytea NOT NULL,
    workspace     bytea NOT NULL,
    platform_user bytea NOT NULL,
    subject       bytea NOT NULL,
    body          json  NOT NULL,
    PRIMARY KEY (platform, workspace, platform_user)
);
CREATE INDEX links_by_subject ON links (subject);

CREATE TABLE link_attempts (
    id          bytea PRIMARY KEY,
    expires_key bytea NOT NULL,
    body        json  NOT NULL
);
CREATE INDEX link_attempts_by_expiry ON link_attempts (expires_key);

CREATE TABLE conversations (
    platform bytea NOT NULL,
    id       bytea NOT NULL,
    body     json  NOT NULL,
    PRIMARY KEY (platform, id)
);

CREATE TABLE nonces (
    scope       bytea NOT NULL,
    value       bytea NOT NULL,
    expires_key bytea NOT NULL,
    PRIMARY KEY (scope, value)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_key);
