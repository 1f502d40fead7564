/*
 * agent.c - the escrow policy (threshold M) and the recovery agents, who
 * are operators with the role recovery-agent.  An agent is active while
 * its operator row is active and its credential valid and unexpired; only
 * active agents receive shares of new escrows.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"

/*
 * Parsed agent certificates, keyed by their DER.  OpenSSL 3.0 sets up a
 * provider decoder for the public key of every certificate it parses
 * (about 1.5 M instructions for an RSA key), and an escrow lists the
 * agents twice: with five agents that was half the time of an escrowed
 * issuance (bench/escrow.c).  Agent certificates change rarely, and the
 * same DER always parses to the same certificate, so a hit hands out a
 * reference to the parsed one; whether an agent is active still comes
 * from the database on every call.  Callers only read the certificates,
 * which OpenSSL allows from many threads at once.  When full, entries are
 * replaced round-robin (holders keep their references).
 */
#define CERT_CACHE_MAX ARCHIVE_MAX_AGENTS

static struct cert_cache_entry {
	unsigned char *der;
	size_t len;
	X509 *cert;
} cert_cache[CERT_CACHE_MAX];
static size_t cert_cache_n, cert_cache_next;
static pthread_mutex_t cert_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* The cached certificate of der, or NULL; under cert_cache_lock. */
static struct cert_cache_entry *
cert_cache_find(const unsigned char *der, size_t len)
{
	size_t i;

	for (i = 0; i < cert_cache_n; i++)
		if (cert_cache[i].len == len &&
		    memcmp(cert_cache[i].der, der, len) == 0)
			return &cert_cache[i];
	return NULL;
}

/* The certificate of der (a new reference), from the cache or parsed. */
static X509 *
agent_cert_get1(const unsigned char *der, int len)
{
	struct cert_cache_entry *e;
	const unsigned char *p = der;
	unsigned char *copy = NULL;
	X509 *x = NULL;

	if (der == NULL || len <= 0)
		return NULL;
	pthread_mutex_lock(&cert_cache_lock);
	if ((e = cert_cache_find(der, (size_t)len)) != NULL &&
	    X509_up_ref(e->cert) == 1)
		x = e->cert;
	pthread_mutex_unlock(&cert_cache_lock);
	if (x != NULL)
		goto out;
	/* parse outside the lock: it is the slow part */
	if ((x = d2i_X509(NULL, &p, len)) == NULL ||
	    (copy = malloc((size_t)len)) == NULL)
		goto out; /* NULL, or a certificate left uncached */
	memcpy(copy, der, (size_t)len);
	pthread_mutex_lock(&cert_cache_lock);
	/* another thread may have parsed it meanwhile */
	if (cert_cache_find(der, (size_t)len) == NULL &&
	    X509_up_ref(x) == 1) {
		if (cert_cache_n < CERT_CACHE_MAX) {
			e = &cert_cache[cert_cache_n++];
		} else {
			e = &cert_cache[cert_cache_next];
			cert_cache_next = (cert_cache_next + 1) %
			    CERT_CACHE_MAX;
			free(e->der);
			X509_free(e->cert);
		}
		e->der = copy;
		e->len = (size_t)len;
		e->cert = x; /* the cache's reference */
		copy = NULL;
	}
	pthread_mutex_unlock(&cert_cache_lock);
out:
	free(copy);
	return x;
}

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
		a[cnt - 1].cert = agent_cert_get1(sqlite3_column_blob(st, 5),
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
