/*
 * agent.c - the recovery agents, who are operators with the role recovery-agent.  An agent is active while
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
	char spki[65];      /* its key's hash, as policies name it */
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

/* The certificate of der (a new reference), from the cache or parsed,
 * and its key's hash into spki. */
static X509 *
agent_cert_get1(const unsigned char *der, int len, char spki[65])
{
	struct cert_cache_entry *e;
	const unsigned char *p = der;
	unsigned char *copy = NULL;
	X509 *x = NULL;

	if (der == NULL || len <= 0)
		return NULL;
	pthread_mutex_lock(&cert_cache_lock);
	if ((e = cert_cache_find(der, (size_t)len)) != NULL &&
	    X509_up_ref(e->cert) == 1) {
		x = e->cert;
		memcpy(spki, e->spki, 65);
	}
	pthread_mutex_unlock(&cert_cache_lock);
	if (x != NULL)
		goto out;
	/* parse outside the lock: it is the slow part */
	if ((x = d2i_X509(NULL, &p, len)) == NULL ||
	    ca_spki_sha256(x, spki) == -1) {
		X509_free(x);
		return NULL;
	}
	if ((copy = malloc((size_t)len)) == NULL)
		goto out; /* a certificate left uncached */
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
		memcpy(e->spki, spki, 65);
		copy = NULL;
	}
	pthread_mutex_unlock(&cert_cache_lock);
out:
	free(copy);
	return x;
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

/* ca_operator_list_role's callback: one agent into the growing list. */
struct agents {
	archive_agent *a;
	size_t n;
	bool active_only;
	int failed;
};

static int
agent_one(const ca_operator *op, void *arg)
{
	struct agents *l = arg;
	archive_agent *na, *g;

	if (l->active_only && !op->usable)
		return 0;
	if ((na = realloc(l->a, (l->n + 1) * sizeof(*na))) == NULL) {
		l->failed = 1;
		return 1;
	}
	l->a = na;
	g = &l->a[l->n++];
	memset(g, 0, sizeof(*g));
	g->serial = strdup(op->serial);
	g->name = strdup(op->name);
	g->email = strdup(op->email);
	g->not_after = op->not_after;
	g->active = op->usable;
	g->cert = agent_cert_get1(op->der, (int)op->der_len, g->spki);
	if (g->serial == NULL || g->name == NULL || g->email == NULL ||
	    g->cert == NULL) {
		l->failed = 1;
		return 1;
	}
	return 0;
}

int
archive_agents_list(sqlite3 *db, bool active_only, archive_agent **out,
    size_t *n, lb_err *err)
{
	struct agents l;

	*out = NULL;
	*n = 0;
	memset(&l, 0, sizeof(l));
	l.active_only = active_only;
	if (ca_operator_list_role(db, ca_role_name(CA_ROLE_RECOVERY_AGENT),
	    agent_one, &l, err) == -1 || l.failed) {
		archive_agents_free(l.a, l.n);
		return lb_err_set(err, LB_EINTERNAL, "cannot read the recovery "
		    "agents");
	}
	*out = l.a;
	*n = l.n;
	return 0;
}
