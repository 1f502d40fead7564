-- 006_key_uses.sql - one key, one purpose, owned by ca/ (ca/store.c): the
-- purpose each public key was first certified for.  A key certified for
-- signing (smime-sign, an operator's or agent's credential, TLS, OCSP, the
-- CA itself) is never escrowed or certified for encryption, and an
-- escrowed encryption key is never certified for signing: the primary key
-- makes a second purpose impossible, for revoked and expired certificates
-- too.  key_id is ca_key_id's hex SHA-256 of the key itself (RSA modulus;
-- EC curve and point), so that no re-encoding passes for another key.
-- Rows for certificates issued before this schema are filled in by
-- ca_db_open, once (setting 'key_uses_filled').

CREATE TABLE key_uses (
    key_id      TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('signing', 'encryption')),
    serial      TEXT NOT NULL               -- the first certificate for it
);
