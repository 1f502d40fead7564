/*
 * coverage.c - whether the escrow records stay recoverable when an agent
 * goes: a record needs its threshold of shares held by active agents (an
 * operator with the recovery-agent role whose credential is valid now).
 * Removing an agent, or revoking its credential for any reason but
 * keyCompromise, is refused while it would take a record that active
 * agents can recover below that; a keyCompromise revocation always goes
 * through, with a warning naming the records to reshare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"

#define REASON_KEY_COMPROMISE 1

/* The serials of the agents holding shares of records that `serial` has a
 * share of, and which of them are active now. */
struct holders {
	char (*serial)[80];
	bool *active;
	size_t n;
};

static void
holders_clear(struct holders *h)
{
	free(h->serial);
	free(h->active);
	memset(h, 0, sizeof(*h));
}

static int
holders_load(sqlite3 *db, const char *serial, struct holders *h, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	void *p, *q;
	int r, rc = -1;

	memset(h, 0, sizeof(*h));
	if (core_db_prepare(db, "SELECT DISTINCT s2.agent_serial FROM "
	    "escrow_shares s1 JOIN escrow_shares s2 ON s2.record_id = "
	    "s1.record_id WHERE s1.agent_serial = ?", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(st, 0);

		if (a == NULL || strlen(a) >= sizeof(*h->serial))
			continue;
		if (h->n == cap) {
			cap = cap ? cap * 2 : 8;
			p = realloc(h->serial, cap * sizeof(*h->serial));
			if (p != NULL)
				h->serial = p;
			q = realloc(h->active, cap * sizeof(*h->active));
			if (q != NULL)
				h->active = q;
			if (p == NULL || q == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
		}
		memcpy(h->serial[h->n], a, strlen(a) + 1);
		h->active[h->n] = (ca_operator_roles(db, a, NULL, err) &
		    CA_ROLE_RECOVERY_AGENT) != 0;
		if (err->code != LB_OK)
			goto out;
		h->n++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "the agents of the escrow records", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc == -1)
		holders_clear(h);
	return rc;
}

static bool
holder_active(const struct holders *h, const char *serial)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (strcmp(h->serial[i], serial) == 0)
			return h->active[i];
	return false;
}

/* How many records `serial` held a share of went from recoverable to
 * not (active holders counted now, with `serial` no longer among them);
 * the first of them, its active shares and threshold. */
static int
lost_records(sqlite3 *db, const char *serial, long *n, char first[80],
    int *first_held, int *first_threshold, lb_err *err)
{
	struct holders h;
	sqlite3_stmt *st = NULL;
	int64_t cur = -1;
	int held = 0, threshold = 0, r, rc = -1;
	char cur_serial[80] = "";

	*n = 0;
	first[0] = '\0';
	if (holders_load(db, serial, &h, err) == -1)
		return -1;
	if (core_db_prepare(db, "SELECT r.id, r.serial, r.threshold, "
	    "s2.agent_serial FROM escrow_shares s1 JOIN escrow_records r ON "
	    "r.id = s1.record_id JOIN escrow_shares s2 ON s2.record_id = r.id "
	    "WHERE s1.agent_serial = ?1 ORDER BY r.id", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	for (;;) {
		r = sqlite3_step(st);
		if (r != SQLITE_ROW || sqlite3_column_int64(st, 0) != cur) {
			/* one record done: it had held + 1 before */
			if (cur != -1 && held < threshold &&
			    held + 1 >= threshold) {
				if ((*n)++ == 0) {
					snprintf(first, 80, "%s", cur_serial);
					*first_held = held;
					*first_threshold = threshold;
				}
			}
			if (r != SQLITE_ROW)
				break;
			cur = sqlite3_column_int64(st, 0);
			snprintf(cur_serial, sizeof(cur_serial), "%s",
			    (const char *)sqlite3_column_text(st, 1));
			threshold = sqlite3_column_int(st, 2);
			held = 0;
		}
		if (sqlite3_column_text(st, 3) != NULL && holder_active(&h,
		    (const char *)sqlite3_column_text(st, 3)))
			held++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "the shares of the escrow records", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	holders_clear(&h);
	return rc;
}

int
archive_agent_leave(sqlite3 *db, const char *serial, unsigned roles_before,
    int reason, void *arg, lb_err *err)
{
	archive_leave_warning *w = arg;
	char first[80];
	int held = 0, threshold = 0;
	long n;

	if (w != NULL)
		w->text[0] = '\0';
	/* an agent that was not active held nothing that counted */
	if ((roles_before & CA_ROLE_RECOVERY_AGENT) == 0)
		return 0;
	if (lost_records(db, serial, &n, first, &held, &threshold, err) == -1)
		return -1;
	if (n == 0)
		return 0;
	if (reason == REASON_KEY_COMPROMISE) {
		if (w != NULL)
			snprintf(w->text, sizeof(w->text), "%ld escrow "
			    "record(s) (the first %s) now have fewer shares "
			    "held by active agents than their threshold "
			    "(%d of %d): put a policy with a new agent in "
			    "force and reshare them ('lockbox escrow "
			    "reshare')", n, first, held, threshold);
		return 0;
	}
	return lb_err_set(err, LB_ECONFLICT, "agent credential %s holds shares "
	    "of %ld escrow record(s) that would be left with fewer shares held "
	    "by active agents than their threshold (the first, %s: %d of %d): "
	    "put a policy with a new agent in force and reshare them first "
	    "('lockbox escrow reshare'); a compromised credential may still be "
	    "revoked with reason keyCompromise", serial, n, first, held,
	    threshold);
}
