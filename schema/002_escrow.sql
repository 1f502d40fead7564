-- 002_escrow.sql - key escrow and recovery.  Recovery agents are operators
-- with the role recovery-agent (table operators).  No column ever holds
-- plaintext key material: escrow_records holds the AES-256-GCM ciphertext
-- of the PKCS#8 key, escrow_shares one CMS EnvelopedData per agent holding
-- that agent's Shamir share of the data key, recovery_shares the shares
-- approving agents re-encrypted to a request's one-time key.

CREATE TABLE escrow_records (
    id            INTEGER PRIMARY KEY,
    serial        TEXT NOT NULL UNIQUE REFERENCES certificates (serial),
    email         TEXT NOT NULL,              -- the key owner, bound in the AAD
    key_alg       TEXT NOT NULL,              -- 'aes-256-gcm'
    share_alg     TEXT NOT NULL,              -- 'shamir-gf256' (libgfshare)
    share_wrap    TEXT NOT NULL,              -- 'cms-rsaes-oaep-sha256-aes256'
    iv            BLOB NOT NULL,              -- 12 bytes
    tag           BLOB NOT NULL,              -- 16 bytes
    ciphertext    BLOB NOT NULL,              -- AES-256-GCM(PKCS#8 DER)
    threshold     INTEGER NOT NULL CHECK (threshold >= 1),
    nshares       INTEGER NOT NULL CHECK (nshares >= threshold),
    record_sha256 TEXT NOT NULL,              -- see archive_record_hash()
    receipt       BLOB NOT NULL,              -- CMS SignedData by the CA
    created       INTEGER NOT NULL
);
CREATE INDEX escrow_records_email ON escrow_records (email);

CREATE TABLE escrow_shares (
    record_id     INTEGER NOT NULL REFERENCES escrow_records (id),
    agent_serial  TEXT NOT NULL REFERENCES certificates (serial),
    share_nr      INTEGER NOT NULL,           -- the share's x coordinate
    cms           BLOB NOT NULL,              -- EnvelopedData to the agent
    PRIMARY KEY (record_id, agent_serial)
);

CREATE TABLE recovery_requests (
    id              TEXT PRIMARY KEY,         -- 32 random hex digits
    requester_serial TEXT NOT NULL,
    requester_email TEXT NOT NULL,
    email           TEXT NOT NULL,            -- whose keys
    serial          TEXT,                     -- one key, or NULL for all
    reason          TEXT NOT NULL,
    request_cert    BLOB NOT NULL,            -- the one-time public key (DER certificate)
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'fetched')),
    created         INTEGER NOT NULL,
    expires         INTEGER NOT NULL,
    denied_by       TEXT,
    deny_reason     TEXT
);

CREATE TABLE recovery_request_records (
    request_id    TEXT NOT NULL REFERENCES recovery_requests (id),
    record_id     INTEGER NOT NULL REFERENCES escrow_records (id),
    PRIMARY KEY (request_id, record_id)
);

CREATE TABLE recovery_approvals (
    request_id    TEXT NOT NULL REFERENCES recovery_requests (id),
    agent_serial  TEXT NOT NULL,
    agent_email   TEXT NOT NULL,
    created       INTEGER NOT NULL,
    PRIMARY KEY (request_id, agent_serial)
);

CREATE TABLE recovery_shares (
    request_id    TEXT NOT NULL REFERENCES recovery_requests (id),
    record_id     INTEGER NOT NULL REFERENCES escrow_records (id),
    agent_serial  TEXT NOT NULL,
    cms           BLOB NOT NULL,              -- the share, EnvelopedData to request_cert
    PRIMARY KEY (request_id, record_id, agent_serial)
);

INSERT INTO settings (name, value) VALUES ('escrow.threshold', '2');
