/*
 * archive_int.h - what the files of archive/ share: Shamir splitting and
 * combining of the data key over libgfshare, and the stored requests
 * that recovery.c's rules read through requests.c.
 */
#ifndef LOCKBOX_ARCHIVE_INT_H
#define LOCKBOX_ARCHIVE_INT_H

#include "archive/archive.h"

/*
 * Splits secret (ARCHIVE_DATA_KEY_LEN bytes) into n shares with threshold
 * m; shares[i] (ARCHIVE_SHARE_LEN bytes each, caller-provided) gets x = i+1
 * then its 32 bytes.  Randomness from RAND_bytes.
 */
int archive_shamir_split(const unsigned char *secret, unsigned n, unsigned m,
    unsigned char (*shares)[ARCHIVE_SHARE_LEN], lb_err *err);
/* Combines n shares (each x then 32 bytes) into secret. */
int archive_shamir_combine(unsigned char (*shares)[ARCHIVE_SHARE_LEN],
    unsigned n, unsigned char *secret, lb_err *err);


/* ------------------------------------------------------------------ */
/* Stored recovery requests (requests.c, for recovery.c)               */

#define ARCHIVE_REQ_COLS "id, requester_serial, requested_by, email, " \
	"serial, reason, request_cert, CASE WHEN collected IS NULL THEN " \
	"status ELSE 'collected' END, created, expires, denied_by, " \
	"deny_reason, statement, statement_cms"

/*
 * Frees the n rewrapped shares (CMS DER) of a record, the array and their
 * lengths: what a stored record (archive_recovery_record) and a package's
 * record (archive_package_record) hold alike.  shares may be NULL.
 */
void archive_shares_free(unsigned char **shares, size_t *lens, size_t n);
void archive_record_clear(archive_recovery_record *r);
/* Fills rq from a row of ARCHIVE_REQ_COLS. */
int archive_row_to_request(sqlite3_stmt *st, archive_recovery *rq,
    lb_err *err);
/*
 * The records a request covers, each with its threshold and the number of
 * approvals from agents in its share set; the request's totals.
 */
int archive_load_records(sqlite3 *db, archive_recovery *rq, lb_err *err);
/* Reads request id with its records; LB_ENOTFOUND when absent. */
int archive_load_request(sqlite3 *db, const char *id, archive_recovery *rq,
    lb_err *err);
/*
 * Refuses a request that is no longer live for an action: expired (410
 * through *expired), denied, fetched, or (for approvals) already
 * approved.  allow lists the statuses the action accepts.
 */
int archive_check_status(const archive_recovery *rq, const char *const *allow,
    bool *expired, lb_err *err);
/* The index of record_id among rq's records, or -1. */
long archive_record_index(const archive_recovery *rq, int64_t record_id);
/* The caller's escrow share of each covered record (NULL where none);
 * *held counts them. */
int archive_load_agent_shares(sqlite3 *db, archive_recovery *rq,
    const char *agent_serial, size_t *held, lb_err *err);
/* The record's ciphertext and certificate, and the rewrapped shares. */
int archive_load_package_record(sqlite3 *db, const char *id,
    archive_recovery_record *r, lb_err *err);

/*
 * Shared by the request workflow (recovery.c) and the requester's end
 * (fetch.c): the audit actor of a caller ("api:EMAIL"); whether two
 * e-mails are one person (case-insensitive); marking due requests expired
 * (one: id; all: NULL) in a transaction of its own; the covered serials
 * for an audit detail; ending request id in the open transaction (st its
 * state update; shares deleted, audited, committed, WAL truncated; rolled
 * back on failure).
 */
void archive_actor_of(const archive_caller *who, char *buf, size_t len);
bool archive_same_person(const char *a, const char *b);
/* A reason given by a person: 1..ARCHIVE_REASON_MAX bytes, no control
 * characters (so one line of a statement); LB_EINVAL saying what is
 * wrong. */
int archive_reason_check(const char *reason, lb_err *err);
int archive_expire_due(sqlite3 *db, const archive_caller *who,
    const char *id, lb_err *err);
void archive_serial_list(const archive_recovery *rq, char *buf, size_t len);
int archive_end_request(sqlite3 *db, const archive_caller *who,
    sqlite3_stmt **st, const char *id, const char *action,
    const char *detail, lb_err *err);

/* Whether a certificate's subjectAltName holds the rfc822Name email
 * (case-insensitively); its first rfc822Name into out ("" when none). */
bool archive_cert_has_email(X509 *x, const char *email);
void archive_cert_email(X509 *x, char *out, size_t len);

#endif
