-- 004_enroll.sql - enrollment: one-time tokens, requests awaiting an
-- operator's approval, the queue publishing user certificates to the
-- directory, and the link from a renewed certificate to its successor.

CREATE TABLE enroll_tokens (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL,
    given_name  TEXT,
    surname     TEXT,
    hash        TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the secret
    created     INTEGER NOT NULL,
    expires     INTEGER NOT NULL,
    creator     TEXT NOT NULL               -- actor who created it
);
CREATE INDEX enroll_tokens_email ON enroll_tokens (email);

-- One row per profile a token allows; spent once used for that profile.
CREATE TABLE enroll_token_profiles (
    token_id    INTEGER NOT NULL REFERENCES enroll_tokens (id),
    profile     TEXT NOT NULL,
    spent       INTEGER,                    -- time spent; NULL: usable
    serial      TEXT,                       -- the certificate it bought
    PRIMARY KEY (token_id, profile)
);

-- Enrollments of profiles with approval = manual.
CREATE TABLE enroll_requests (
    id          TEXT PRIMARY KEY,           -- random hex
    profile     TEXT NOT NULL,
    email       TEXT NOT NULL,
    given_name  TEXT,
    surname     TEXT,
    auth        TEXT NOT NULL,              -- directory:DN, token:ID, cert:SERIAL
    spki_sha256 TEXT NOT NULL,              -- the CSR's key: a retry finds its request
    csr         BLOB NOT NULL,              -- DER
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    created     INTEGER NOT NULL,
    decided     INTEGER,
    decided_by  TEXT,
    serial      TEXT                        -- once issued
);
CREATE INDEX enroll_requests_key ON enroll_requests (spki_sha256, profile);

-- Certificates to add to (or, once revoked, remove from) users' entries.
CREATE TABLE publish_queue (
    id          INTEGER PRIMARY KEY,
    serial      TEXT NOT NULL REFERENCES certificates (serial),
    email       TEXT NOT NULL,
    user_dn     TEXT,                       -- NULL: looked up by e-mail
    action      TEXT NOT NULL CHECK (action IN ('add', 'delete')),
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    INTEGER NOT NULL,
    last_error  TEXT,
    created     INTEGER NOT NULL,
    done        INTEGER,
    UNIQUE (serial, action)
);
CREATE INDEX publish_queue_due ON publish_queue (state, next_try);

-- simplereenroll: the certificate that replaced this one.
ALTER TABLE certificates ADD COLUMN superseded_by TEXT;
