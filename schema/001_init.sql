-- 001_init.sql - the foundation schema: certificates, operators, the audit
-- log and CA-wide settings.  Portable SQL (SQLite and PostgreSQL alike):
-- times are integer seconds since the epoch, serials uppercase hex text.

CREATE TABLE certificates (
    serial      TEXT PRIMARY KEY,           -- uppercase hex, unique per CA
    profile     TEXT NOT NULL,
    email       TEXT,                       -- rfc822Name, when the profile has one
    subject     TEXT NOT NULL,              -- RFC 2253 form, for display
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'valid'
                CHECK (status IN ('valid', 'revoked', 'superseded')),
    revoked_at  INTEGER,
    reason      INTEGER,                    -- RFC 5280 CRLReason code
    invalidity  INTEGER,                    -- keyCompromise invalidityDate
    spki_sha256 TEXT NOT NULL,              -- hex SHA-256 of the SubjectPublicKeyInfo DER
    der         BLOB NOT NULL
);
CREATE INDEX certificates_email ON certificates (email);
CREATE INDEX certificates_status ON certificates (status, not_after);

CREATE TABLE operators (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL
                CHECK (role IN ('admin', 'officer', 'recovery-officer',
                                'recovery-agent', 'auditor')),
    serial      TEXT NOT NULL UNIQUE REFERENCES certificates (serial),
    status      TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'removed')),
    created     INTEGER NOT NULL,
    removed     INTEGER
);
CREATE INDEX operators_email ON operators (email);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,              -- hex SHA-256 of the previous row
    hash        TEXT NOT NULL               -- hex SHA-256 over this row and prev_hash
);

CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
