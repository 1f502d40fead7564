/*
 * agent.c - the escrow policy (threshold M) and the recovery agents, who
 * are operators with the role recovery-agent.  An agent is active while
 * its operator row is active and its credential valid and unexpired; only
 * active agents receive shares of new escrows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"

int
archive_threshold_get(sqlite3 *db, int *threshold, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	*threshold = 2;
	if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE name = "
	    "'escrow.threshold'", -1, &st, NULL) != SQLITE_OK)
		return core_db_fail(db, "escrow threshold", err);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*threshold = sqlite3_column_int(st, 0);
	else if (r != SQLITE_DONE) {
		core_db_fail(db, "escrow threshold", err);
		goto out;
	}
	if (*threshold < 1 || *threshold > ARCHIVE_MAX_AGENTS) {
		lb_err_set(err, LB_EINTERNAL, "the stored escrow threshold %d "
		    "is out of range", *threshold);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
archive_threshold_set(sqlite3 *db, int threshold, const char *actor,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char v[16], detail[32];
	int rc = -1;

	if (threshold < 1 || threshold > ARCHIVE_MAX_AGENTS)
		return lb_err_set(err, LB_EINVAL, "the threshold must be 1 to "
		    "%d", ARCHIVE_MAX_AGENTS);
	snprintf(v, sizeof(v), "%d", threshold);
	snprintf(detail, sizeof(detail), "threshold=%d", threshold);
	if (core_db_begin(db, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db, "INSERT INTO settings (name, value) VALUES "
	    "('escrow.threshold', ?) ON CONFLICT (name) DO UPDATE SET value = "
	    "excluded.value", -1, &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "escrow threshold", err);
		goto fail;
	}
	sqlite3_bind_text(st, 1, v, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		core_db_fail(db, "escrow threshold", err);
		goto fail;
	}
	if (core_audit_append(db, actor, "escrow-policy", "escrow.threshold",
	    detail, err) == -1)
		goto fail;
	sqlite3_finalize(st);
	return core_db_commit(db, err);
fail:
	sqlite3_finalize(st);
	core_db_rollback(db);
	return rc;
}

void
archive_agents_free(archive_agent *a, size_t n)
{
	size_t i;

	for (i = 0; a != NULL && i < n; i++) {
		free(a[i].serial);
		free(a[i].name);
		free(a[i].email);
		X509_free(a[i].cert);
	}
	free(a);
}

int
archive_agents_list(sqlite3 *db, bool active_only, archive_agent **out,
    size_t *n, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	archive_agent *a = NULL, *na;
	size_t cnt = 0;
	const unsigned char *der;
	int r, rc = -1;
	time_t now = time(NULL);

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT o.serial, o.name, o.email, "
	    "c.not_after, o.status = 'active' AND c.status = 'valid' AND "
	    "c.not_after >= ?1 AND c.not_before <= ?1, c.der FROM operators o "
	    "JOIN certificates c ON c.serial = o.serial WHERE o.role = "
	    "'recovery-agent' ORDER BY o.serial", -1, &st, NULL) != SQLITE_OK)
		return core_db_fail(db, "list agents", err);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		bool active = sqlite3_column_int(st, 4) != 0;

		if (active_only && !active)
			continue;
		if ((na = realloc(a, (cnt + 1) * sizeof(*a))) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		a = na;
		memset(&a[cnt], 0, sizeof(a[cnt]));
		cnt++;
		a[cnt - 1].serial = strdup((const char *)sqlite3_column_text(st,
		    0));
		a[cnt - 1].name = strdup((const char *)sqlite3_column_text(st,
		    1));
		a[cnt - 1].email = strdup((const char *)sqlite3_column_text(st,
		    2));
		a[cnt - 1].not_after = (time_t)sqlite3_column_int64(st, 3);
		a[cnt - 1].active = active;
		der = sqlite3_column_blob(st, 5);
		a[cnt - 1].cert = d2i_X509(NULL, &der,
		    sqlite3_column_bytes(st, 5));
		if (a[cnt - 1].serial == NULL || a[cnt - 1].name == NULL ||
		    a[cnt - 1].email == NULL || a[cnt - 1].cert == NULL) {
			lb_err_set(err, LB_EINTERNAL, "cannot read agent %s",
			    (const char *)sqlite3_column_text(st, 0));
			goto out;
		}
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "list agents", err);
		goto out;
	}
	*out = a;
	*n = cnt;
	a = NULL;
	cnt = 0;
	rc = 0;
out:
	archive_agents_free(a, cnt);
	sqlite3_finalize(st);
	return rc;
}
