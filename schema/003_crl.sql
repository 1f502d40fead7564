-- 003_crl.sql - CRL state, owned by crl/: the last CRL issued (its
-- number is monotonic: the next CRL takes number + 1) and, per
-- publication target ('web', later 'ldap'), what was last published there
-- and the last error.  Times are integer seconds since the epoch.

CREATE TABLE crl_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),  -- one CA key: one row
    number      INTEGER NOT NULL,                    -- the last CRL number issued
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,                    -- when it was made (thisUpdate + skew)
    entries     INTEGER NOT NULL,
    der_sha256  TEXT NOT NULL                        -- hex SHA-256 of the DER
);

CREATE TABLE crl_publications (
    target       TEXT PRIMARY KEY,                   -- 'web', 'ldap'
    number       INTEGER,                            -- the CRL number published there, NULL before the first
    published_at INTEGER,
    attempted_at INTEGER NOT NULL,
    last_error   TEXT                                -- NULL after a success
);
