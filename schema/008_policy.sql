-- 008_policy.sql - the escrow policy is a document its members sign,
-- owned by archive/ (archive/policy_db.c).  escrow_policies holds each
-- proposal and policy in its one text form (archive/policy.c), named by
-- its SHA-256; escrow_policy_signatures the members' CMS signatures over
-- it.  One policy has one successor: the partial unique index refuses a
-- second proposal after the same policy (and a second first policy)
-- unless the first was withdrawn.  Each escrow record names the policy
-- it was escrowed under.  The old 'escrow.threshold' setting stays for
-- the records made before; new escrows need a policy in force.

CREATE TABLE escrow_policies (
    hash        TEXT PRIMARY KEY,           -- SHA-256 of document
    version     INTEGER NOT NULL,
    previous    TEXT,                       -- NULL for the first policy
    threshold   INTEGER NOT NULL CHECK (threshold >= 2),
    document    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                ('proposed', 'in_force', 'superseded', 'withdrawn')),
    proposed_by TEXT NOT NULL,
    created     INTEGER NOT NULL,
    in_force    INTEGER                     -- when it came into force
);
CREATE UNIQUE INDEX escrow_policies_one_successor
    ON escrow_policies (ifnull(previous, '')) WHERE status <> 'withdrawn';

CREATE TABLE escrow_policy_signatures (
    policy_hash TEXT NOT NULL REFERENCES escrow_policies (hash),
    spki_sha256 TEXT NOT NULL,
    email       TEXT NOT NULL,
    cms         BLOB NOT NULL,              -- detached SignedData
    created     INTEGER NOT NULL,
    PRIMARY KEY (policy_hash, spki_sha256)
);

ALTER TABLE escrow_records ADD COLUMN policy_hash TEXT;
