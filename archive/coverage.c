/*
 * coverage.c - whether the escrow records stay recoverable when an agent
 * goes: a record needs its threshold of shares held by active agents (an
 * operator with the recovery-agent role whose credential is valid now).
 * Removing an agent, or revoking its credential for any reason but
 * keyCompromise, is refused while it would take a record that active
 * agents can recover below that; a keyCompromise revocation always goes
 * through, with a warning naming the records to reshare.  The same count
 * over every record is `lockbox escrow status`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"

#define REASON_KEY_COMPROMISE 1

/* The serials of the agents holding shares of records that `serial` has a
 * share of (NULL: of any record), and which of them are active now. */
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
	if (core_db_prepare(db, serial != NULL ? "SELECT DISTINCT "
	    "s2.agent_serial FROM escrow_shares s1 JOIN escrow_shares s2 ON "
	    "s2.record_id = s1.record_id WHERE s1.agent_serial = ?" :
	    "SELECT DISTINCT agent_serial FROM escrow_shares", &st, err) == -1)
		return -1;
	if (serial != NULL)
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

/* One record as each_record sees it: held counts its shares whose agents
 * are active now. */
struct rec {
	char serial[80];
	char policy[65];    /* "" for a record made before any policy */
	int threshold, held;
};

/*
 * fn for every escrow record that agent credential `serial` holds a share
 * of (NULL: every record), by id, with its active shares counted by h.
 */
static int
each_record(sqlite3 *db, const char *serial, const struct holders *h,
    void (*fn)(const struct rec *r, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	struct rec cur;
	int64_t id = -1;
	int r, rc = -1;

	memset(&cur, 0, sizeof(cur));
	if (core_db_prepare(db, serial != NULL ? "SELECT r.id, r.serial, "
	    "r.threshold, r.policy_hash, s2.agent_serial FROM escrow_shares s1 "
	    "JOIN escrow_records r ON r.id = s1.record_id JOIN escrow_shares "
	    "s2 ON s2.record_id = r.id WHERE s1.agent_serial = ?1 ORDER BY "
	    "r.id" : "SELECT r.id, r.serial, r.threshold, r.policy_hash, "
	    "s.agent_serial FROM escrow_records r LEFT JOIN escrow_shares s ON "
	    "s.record_id = r.id ORDER BY r.id", &st, err) == -1)
		return -1;
	if (serial != NULL)
		sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	for (;;) {
		r = sqlite3_step(st);
		if (r != SQLITE_ROW || sqlite3_column_int64(st, 0) != id) {
			if (id != -1)
				fn(&cur, arg);
			if (r != SQLITE_ROW)
				break;
			id = sqlite3_column_int64(st, 0);
			snprintf(cur.serial, sizeof(cur.serial), "%s",
			    (const char *)sqlite3_column_text(st, 1));
			cur.threshold = sqlite3_column_int(st, 2);
			snprintf(cur.policy, sizeof(cur.policy), "%s",
			    sqlite3_column_type(st, 3) == SQLITE_NULL ? "" :
			    (const char *)sqlite3_column_text(st, 3));
			cur.held = 0;
		}
		if (sqlite3_column_text(st, 4) != NULL && holder_active(h,
		    (const char *)sqlite3_column_text(st, 4)))
			cur.held++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "the shares of the escrow records", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Records that went from recoverable to not: the count, the first. */
struct lost {
	long n;
	struct rec first;
};

static void
lost_one(const struct rec *r, void *arg)
{
	struct lost *l = arg;

	/* it had held + 1 before the agent went */
	if (r->held < r->threshold && r->held + 1 >= r->threshold &&
	    l->n++ == 0)
		l->first = *r;
}

int
archive_agent_leave(sqlite3 *db, const char *serial, unsigned roles_before,
    int reason, void *arg, lb_err *err)
{
	archive_leave_warning *w = arg;
	struct holders h;
	struct lost l;
	int rc;

	if (w != NULL)
		w->text[0] = '\0';
	/* an agent that was not active held nothing that counted */
	if ((roles_before & CA_ROLE_RECOVERY_AGENT) == 0)
		return 0;
	memset(&l, 0, sizeof(l));
	if (holders_load(db, serial, &h, err) == -1)
		return -1;
	rc = each_record(db, serial, &h, lost_one, &l, err);
	holders_clear(&h);
	if (rc == -1 || l.n == 0)
		return rc;
	if (reason == REASON_KEY_COMPROMISE) {
		if (w != NULL)
			snprintf(w->text, sizeof(w->text), "%ld escrow "
			    "record(s) (the first %s) now have fewer shares "
			    "held by active agents than their threshold "
			    "(%d of %d): put a policy with a new agent in "
			    "force and reshare them ('lockbox escrow "
			    "reshare')", l.n, l.first.serial, l.first.held,
			    l.first.threshold);
		return 0;
	}
	return lb_err_set(err, LB_ECONFLICT, "agent credential %s holds shares "
	    "of %ld escrow record(s) that would be left with fewer shares held "
	    "by active agents than their threshold (the first, %s: %d of %d): "
	    "put a policy with a new agent in force and reshare them first "
	    "('lockbox escrow reshare'); a compromised credential may still be "
	    "revoked with reason keyCompromise", serial, l.n, l.first.serial,
	    l.first.held, l.first.threshold);
}

/* ------------------------------------------------------------------ */
/* escrow status                                                       */

struct tally {
	archive_status *st;
	int failed;
};

static void
tally_one(const struct rec *r, void *arg)
{
	struct tally *t = arg;
	archive_status *st = t->st;
	archive_status_policy *p = NULL;
	size_t i;
	void *q;

	for (i = 0; i < st->npolicies; i++)
		if (strcmp(st->policies[i].hash, r->policy) == 0)
			p = &st->policies[i];
	if (p == NULL) {
		if ((q = realloc(st->policies, (st->npolicies + 1) *
		    sizeof(*st->policies))) == NULL) {
			t->failed = 1;
			return;
		}
		st->policies = q;
		p = &st->policies[st->npolicies++];
		memset(p, 0, sizeof(*p));
		memcpy(p->hash, r->policy, sizeof(p->hash));
	}
	p->records++;
	if (r->held >= r->threshold) {
		p->recoverable++;
		return;
	}
	if (p->nlost < ARCHIVE_STATUS_LOST_MAX)
		memcpy(p->lost[p->nlost++], r->serial, sizeof(p->lost[0]));
}

int
archive_escrow_status(sqlite3 *db, archive_status *out, lb_err *err)
{
	struct holders h;
	struct tally t = { out, 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	if (holders_load(db, NULL, &h, err) == -1)
		return -1;
	rc = each_record(db, NULL, &h, tally_one, &t, err);
	holders_clear(&h);
	if (rc == 0 && t.failed)
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (rc == -1)
		archive_status_clear(out);
	return rc;
}

void
archive_status_clear(archive_status *st)
{
	free(st->policies);
	memset(st, 0, sizeof(*st));
}
