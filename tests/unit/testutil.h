/*
 * testutil.h - helpers shared by the cmocka unit test programs: scratch
 * directories that are removed afterwards, small file helpers, one-value
 * SQL queries, throwaway CAs and the cmocka fixture built on them
 * (tu_fixture), and recovery agent keys made once per group.
 * Header-only (static inline) because the Makefile links each
 * tests/unit/test_*.c on its own against the library objects.
 */
#ifndef LOCKBOX_TESTUTIL_H
#define LOCKBOX_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "archive/archive.h"
#include "ca/ca.h"
#include "enroll/enroll.h"

/* Creates a fresh scratch directory; malloc'ed path or NULL. */
static inline char *
tu_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/lockbox-%s.XXXXXX", base, tag) == -1)
		return NULL;
	if (mkdtemp(path) == NULL) {
		free(path);
		return NULL;
	}
	return path;
}

static inline int
tu_rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a directory tree (depth first, not following links). */
static inline void
tu_rmtree(const char *path)
{
	if (path != NULL)
		nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name, malloc'ed; aborts on allocation failure (tests only). */
static inline char *
tu_path(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) == -1)
		abort();
	return p;
}

/* Writes len bytes to path (created 0600, truncated); 0 or -1. */
static inline int
tu_write(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (f == NULL)
		return -1;
	if (len > 0 && fwrite(buf, 1, len, f) != len)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* The passphrase the unit tests protect PKCS#12 files with, and a file
 * (0600) dir/pass.pw holding it: its path, in a buffer the next call
 * reuses (NULL when it cannot be written). */
#define TU_PASS "unit test passphrase"
static inline const char *
tu_pass_file(const char *dir)
{
	static char p[4096];

	if ((size_t)snprintf(p, sizeof(p), "%s/pass.pw", dir) >= sizeof(p) ||
	    tu_write(p, TU_PASS "\n", sizeof(TU_PASS)) == -1 ||
	    chmod(p, 0600) == -1)
		return NULL;
	return p;
}

/* Reads a whole file into a malloc'ed, NUL-terminated buffer. */
static inline char *
tu_slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		if ((n = fread(buf + len, 1, 4096, f)) == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

/* The permission bits of path, or -1. */
static inline int
tu_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	return (int)(st.st_mode & 07777);
}

/* The first column of the first row of sql as an integer, or -1. */
static inline long long
tu_sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The first column of the first row of sql as a malloc'ed string. */
static inline char *
tu_sql_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0) != NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/*
 * Releases a throwaway CA from tu_ca_new(): closes db and ca, removes the
 * scratch tree tmp and frees both paths.  Any argument may be NULL.
 */
static inline void
tu_ca_free(char *tmp, char *dir, ca_ctx *ca, sqlite3 *db)
{
	core_db_close(db);
	ca_free(ca);
	tu_rmtree(tmp);
	free(dir);
	free(tmp);
}

/* Generates n keys of type into keys[]; 0, or -1 (that key NULL). */
static inline int
tu_keygen_n(EVP_PKEY **keys, int n, enum ca_key_type type)
{
	lb_err err = { 0 };
	int i;

	for (i = 0; i < n; i++)
		if ((keys[i] = ca_keygen(type, &err)) == NULL)
			return -1;
	return 0;
}

/* Frees n keys from tu_keygen_n(). */
static inline void
tu_keys_free(EVP_PKEY **keys, int n)
{
	int i;

	for (i = 0; i < n; i++)
		EVP_PKEY_free(keys[i]);
}

/*
 * Puts in force an escrow policy of threshold naming every active agent
 * and, with officers, every usable recovery officer, after the policy in
 * force, signed by the n members (keys and certificates; n must cover
 * what the rule asks).  0, or -1 with the reason on stderr.
 */
static inline int
tu_policy_sign_as(sqlite3 *db, EVP_PKEY *const *keys, X509 *const *certs,
    int n, int threshold, bool officers)
{
	static const char *const none[] = { NULL };
	archive_policy p;
	lb_err err = { 0 };
	unsigned char *sig = NULL;
	size_t len = 0;
	bool in_force = false;
	int i;

	if (archive_policy_propose(db, threshold, NULL, 0, officers ? NULL :
	    none, 0, "test", &p, &err) == -1)
		goto fail;
	for (i = 0; i < n && !in_force; i++) {
		if (archive_policy_sign(&p, keys[i], certs[i], &sig, &len,
		    &err) == -1 || archive_policy_signature_add(db, p.hash, sig,
		    len, NULL, "test", &in_force, &err) == -1) {
			OPENSSL_free(sig);
			archive_policy_clear(&p);
			goto fail;
		}
		OPENSSL_free(sig);
		sig = NULL;
	}
	archive_policy_clear(&p);
	if (!in_force) {
		fprintf(stderr, "escrow policy: not in force after %d "
		    "signatures\n", n);
		return -1;
	}
	return 0;
fail:
	fprintf(stderr, "escrow policy: %s\n", err.msg);
	return -1;
}

/* tu_policy_sign_as naming the agents alone. */
static inline int
tu_policy_sign_all(sqlite3 *db, EVP_PKEY *const *keys, X509 *const *certs,
    int n, int threshold)
{
	return tu_policy_sign_as(db, keys, certs, n, threshold, false);
}

/*
 * Adds n recovery agents agent0@example.org ... with keys[0..n-1] to the
 * CA and puts in force a policy of threshold naming them, signed by
 * them; 0, or -1 with the reason on stderr.
 */
static inline int
tu_agents_add(ca_ctx *ca, sqlite3 *db, EVP_PKEY *const *keys, int n,
    int threshold)
{
	lb_err err = { 0 };
	char email[64];
	X509 *agent[ARCHIVE_MAX_AGENTS] = { NULL };
	int i, rc = -1;

	for (i = 0; i < n && i < ARCHIVE_MAX_AGENTS; i++) {
		snprintf(email, sizeof(email), "agent%d@example.org", i);
		if ((agent[i] = ca_operator_add(ca, db, CA_ROLE_RECOVERY_AGENT,
		    "Agent", email, keys[i], "test", &err)) == NULL) {
			fprintf(stderr, "recovery agents: %s\n", err.msg);
			goto out;
		}
	}
	rc = tu_policy_sign_all(db, keys, agent, n, threshold);
out:
	for (i = 0; i < n && i < ARCHIVE_MAX_AGENTS; i++)
		X509_free(agent[i]);
	return rc;
}

/*
 * Creates a throwaway CA: a scratch directory *tmp (named after tag) and in
 * it the CA state directory *dir ("ca", initialised with opts; NULL: a P-256
 * CA with default settings), with extra_conf (or NULL) appended to its
 * lockbox.conf, then opens it into *ca and its database into *db.  dir may
 * be NULL when the caller has no use for the path.  0, or -1 with the
 * reason on stderr and everything undone (outputs NULL).  tu_ca_free()
 * releases what it made.
 */
static inline int
tu_ca_new(const char *tag, const ca_init_opts *opts, const char *extra_conf,
    char **tmp, char **dir, ca_ctx **ca, sqlite3 **db)
{
	ca_init_opts def;
	lb_err err = { 0 };
	char *cadir = NULL, *conf;
	FILE *f;
	int written;

	*tmp = NULL;
	*ca = NULL;
	*db = NULL;
	if (dir != NULL)
		*dir = NULL;
	if (opts == NULL) {
		memset(&def, 0, sizeof(def));
		def.key_type = CA_KEY_ECP256;
		opts = &def;
	}
	if ((*tmp = tu_mkdtemp(tag)) == NULL)
		return -1;
	if (opts->admin_p12_pass_file == NULL) {
		if (opts != &def)
			def = *opts;
		def.admin_p12_pass_file = tu_pass_file(*tmp);
		opts = &def;
	}
	cadir = tu_path(*tmp, "ca");
	if (ca_init(cadir, opts, &err) == -1)
		goto fail;
	if (extra_conf != NULL) {
		conf = tu_path(cadir, CA_CONF_FILE);
		f = fopen(conf, "a");
		free(conf);
		written = f != NULL && fputs(extra_conf, f) != EOF;
		if (f != NULL && fclose(f) != 0)
			written = 0;
		if (!written) {
			snprintf(err.msg, sizeof(err.msg), "cannot append to %s",
			    CA_CONF_FILE);
			goto fail;
		}
	}
	if ((*ca = ca_open(cadir, 0, &err)) == NULL ||
	    (*db = ca_db_open(*ca, &err)) == NULL)
		goto fail;
	if (dir != NULL)
		*dir = cadir;
	else
		free(cadir);
	return 0;
fail:
	fprintf(stderr, "%s: throwaway CA: %s\n", tag, err.msg);
	tu_ca_free(*tmp, cadir, *ca, *db);
	*tmp = NULL;
	*ca = NULL;
	*db = NULL;
	return -1;
}

/* ------------------------------------------------------------------ */
/* cmocka fixtures                                                     */

#define TU_AGENTS_MAX 4

/*
 * Recovery agents' RSA-3072 keys are slow to make, so a group makes them
 * once: tu_agent_keys_setup() in its group setup, tu_agent_keys_teardown
 * as its group teardown.  cmocka hands the group state to every test (and
 * to its setup) in *state, which is where TU_FX_AGENTS finds them.
 */
typedef struct tu_agent_keys {
	int n;
	EVP_PKEY *key[TU_AGENTS_MAX];
} tu_agent_keys;

/*
 * cmocka group setup: n (at most TU_AGENTS_MAX) RSA-3072 keys into a new
 * tu_agent_keys at *state.  0, or -1 with *state NULL.
 */
static inline int
tu_agent_keys_setup(void **state, int n)
{
	tu_agent_keys *ak = calloc(1, sizeof(*ak));

	*state = NULL;
	if (ak == NULL || n < 0 || n > TU_AGENTS_MAX) {
		free(ak);
		return -1;
	}
	ak->n = n;
	if (tu_keygen_n(ak->key, n, CA_KEY_RSA3072) == -1) {
		tu_keys_free(ak->key, n);
		free(ak);
		return -1;
	}
	*state = ak;
	return 0;
}

/* cmocka group teardown for tu_agent_keys_setup(). */
static inline int
tu_agent_keys_teardown(void **state)
{
	tu_agent_keys *ak = *state;

	if (ak != NULL) {
		tu_keys_free(ak->key, ak->n);
		free(ak);
	}
	*state = NULL;
	return 0;
}

/*
 * The fixture most groups share: a throwaway CA from tu_ca_new() and what
 * the tests drive it with.  A group that needs more starts its own
 * fixture with one (struct fixture { tu_fixture tu; ... }), passes its
 * size to tu_fixture_setup() and sets release to free what it added.
 * What flags did not ask for stays NULL.
 */
typedef struct tu_fixture tu_fixture;
struct tu_fixture {
	char *tmp;          /* scratch root, removed by the teardown */
	char *dir;          /* the CA's state directory, tmp/ca */
	ca_ctx *ca;
	sqlite3 *db;
	EVP_PKEY *key;      /* TU_FX_KEY: an EC P-256 subscriber key */
	enroll_ctx *e;      /* TU_FX_ENROLL: enrollment, no directory */
	/* frees the larger fixture's own parts, first; NULL: nothing to */
	void (*release)(tu_fixture *fx);
};

/* What tu_fixture_setup() makes besides the CA, in this order. */
#define TU_FX_AGENTS 0x1    /* the group's tu_agent_keys added as the
                               CA's recovery agents, threshold 2 */
#define TU_FX_ENROLL 0x2    /* e */
#define TU_FX_KEY    0x4    /* key */

/* Releases a fixture from tu_fixture_setup*(); NULL is fine. */
static inline void
tu_fixture_free(tu_fixture *fx)
{
	if (fx == NULL)
		return;
	if (fx->release != NULL)
		fx->release(fx);
	enroll_free(fx->e);
	EVP_PKEY_free(fx->key);
	tu_ca_free(fx->tmp, fx->dir, fx->ca, fx->db);
	free(fx);
}

/*
 * cmocka setup, of a group or of a test: allocates a zeroed fixture of
 * size bytes (a tu_fixture or a struct that starts with one) and fills its
 * tu_fixture: tu_ca_new(tag, opts, extra_conf), then what flags ask for.
 * Returns the fixture, also left in *state, or NULL with the reason on
 * stderr, everything undone and *state NULL.  The caller fills the rest
 * of a larger fixture; tu_fixture_teardown() releases it.
 */
static inline void *
tu_fixture_setup_opts(void **state, size_t size, const char *tag,
    const ca_init_opts *opts, const char *extra_conf, unsigned int flags)
{
	const tu_agent_keys *ak = *state;
	tu_fixture *fx = NULL;
	lb_err err = { 0 };

	*state = NULL;
	if (size < sizeof(*fx) || (fx = calloc(1, size)) == NULL)
		return NULL;
	if (tu_ca_new(tag, opts, extra_conf, &fx->tmp, &fx->dir, &fx->ca,
	    &fx->db) == -1)
		goto fail;
	if ((flags & TU_FX_AGENTS) != 0 && ak == NULL) {
		fprintf(stderr, "%s: no recovery agent keys: the group setup "
		    "makes them (tu_agent_keys_setup)\n", tag);
		goto fail;
	}
	if ((flags & TU_FX_AGENTS) != 0 &&
	    tu_agents_add(fx->ca, fx->db, ak->key, ak->n, 2) == -1)
		goto fail;
	if (((flags & TU_FX_ENROLL) != 0 &&
	    (fx->e = enroll_new(fx->ca, false, &err)) == NULL) ||
	    ((flags & TU_FX_KEY) != 0 &&
	    (fx->key = ca_keygen(CA_KEY_ECP256, &err)) == NULL)) {
		fprintf(stderr, "%s: setup: %s\n", tag, err.msg);
		goto fail;
	}
	*state = fx;
	return fx;
fail:
	tu_fixture_free(fx);
	return NULL;
}

/*
 * tu_fixture_setup_opts() for an EC P-256 CA named name (NULL: the
 * default name) with default settings.
 */
static inline void *
tu_fixture_setup(void **state, size_t size, const char *tag,
    const char *name, const char *extra_conf, unsigned int flags)
{
	ca_init_opts o;

	memset(&o, 0, sizeof(o));
	o.name = name;
	o.key_type = CA_KEY_ECP256;
	return tu_fixture_setup_opts(state, size, tag, &o, extra_conf, flags);
}

/*
 * Issues an smime-sign certificate for email to fx->key as actor: its
 * serial (malloc'ed), or NULL with the reason on stderr.
 */
static inline char *
tu_issue_serial(tu_fixture *fx, const char *email, const char *actor)
{
	ca_request req;
	lb_err err = { 0 };
	X509 *x;
	char *serial;

	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = email;
	req.pubkey = fx->key;
	if ((x = ca_issue(fx->ca, fx->db, &req, actor, &err)) == NULL) {
		fprintf(stderr, "ca_issue: %s\n", err.msg);
		return NULL;
	}
	serial = ca_cert_serial(x);
	X509_free(x);
	return serial;
}

/*
 * cmocka teardown for tu_fixture_setup*(): releases the fixture at *state
 * (NULL is fine), its own parts through release first.
 */
static inline int
tu_fixture_teardown(void **state)
{
	tu_fixture_free(*state);
	*state = NULL;
	return 0;
}

#endif /* LOCKBOX_TESTUTIL_H */
