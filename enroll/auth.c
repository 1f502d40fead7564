/*
 * auth.c - who an EST caller is and what they may enroll: HTTP Basic
 * checked as a one-time token (token.c) or by a directory bind as the
 * user, a TLS client certificate for renewal, entitlement to a profile,
 * and the failure counters that slow down password guessing.
 *
 * What went wrong in a failed authentication goes to the audit log only:
 * the client learns "authentication failed", never whether the user
 * exists, the password was wrong or the token spent.
 *
 * The failure counters are kept in memory per user and per client address
 * in a table of bounded size (the oldest entry makes room), so that an
 * attacker cycling through names or addresses cannot grow the daemon; the
 * price is that such an attacker can push a victim's count out, which the
 * per-address counter of the attacker's own address still catches.
 */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "enroll/enroll_int.h"

#define RL_MAX_ENTRIES 4096
#define RL_MAX_WINDOW_MS (900 * 1000L)  /* the backoff's ceiling */
#define RL_FORGET_MS (3600 * 1000L)     /* quiet this long: count forgotten */
#define LOGIN_MAX 256                   /* bytes of a login we look at */
/* What a client is told to wait while the directory is down, seconds. */
#define DIRECTORY_RETRY_AFTER 30

/* One counter: keyed by the SHA-256 of "u:LOGIN" or "a:ADDRESS". */
struct rl_entry {
	unsigned char key[32];
	long failures;
	int64_t last_ms;                /* monotonic time of the last failure */
};

struct enroll_ratelimit {
	pthread_mutex_t lock;
	long fail_limit;
	struct rl_entry *v;
	size_t n, cap;
};

void
enroll_identity_clear(enroll_identity *id)
{
	if (id == NULL)
		return;
	free(id->login);
	free(id->email);
	free(id->given_name);
	free(id->surname);
	free(id->user_dn);
	free(id->cert_serial);
	free(id->cert_profile);
	memset(id, 0, sizeof(*id));
}

void
enroll_identity_actor(const enroll_identity *id, char *out, size_t n)
{
	if (out == NULL || n == 0)
		return;
	if (id == NULL) {
		snprintf(out, n, "anonymous");
		return;
	}
	switch (id->how) {
	case ENROLL_AUTH_DIRECTORY:
		snprintf(out, n, "directory:%s", id->user_dn != NULL ?
		    id->user_dn : id->login != NULL ? id->login : "?");
		break;
	case ENROLL_AUTH_TOKEN:
		snprintf(out, n, "token:%" PRId64, id->token_id);
		break;
	case ENROLL_AUTH_CERT:
		snprintf(out, n, "cert:%s", id->cert_serial != NULL ?
		    id->cert_serial : "?");
		break;
	default:
		snprintf(out, n, "anonymous");
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Failure counters                                                    */

struct enroll_ratelimit *
enroll_rl_new(long fail_limit)
{
	struct enroll_ratelimit *rl;

	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl);
		return NULL;
	}
	rl->fail_limit = fail_limit < 1 ? 1 : fail_limit;
	return rl;
}

void
enroll_rl_free(struct enroll_ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->v);
	free(rl);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The key of a counter: SHA-256 of kind ('u', 'a') and the name. Logins
 * are case-folded (directories match them without case). */
static void
rl_key(char kind, const char *name, unsigned char key[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char buf[LOGIN_MAX + 3];
	size_t i, n = strnlen(name, LOGIN_MAX);
	unsigned int len = 0;

	buf[0] = kind;
	buf[1] = ':';
	for (i = 0; i < n; i++)
		buf[2 + i] = kind == 'u' ? (char)tolower((unsigned char)name[i]) :
		    name[i];
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, buf, n + 2) != 1 ||
	    EVP_DigestFinal_ex(md, key, &len) != 1) {
		/* no digest: fall back to the (truncated) name itself */
		memset(key, 0, 32);
		memcpy(key, buf, n + 2 < 32 ? n + 2 : 32);
	}
	EVP_MD_CTX_free(md);
}

/* The entry of key, or NULL; under rl->lock. */
static struct rl_entry *
rl_find(struct enroll_ratelimit *rl, const unsigned char key[32])
{
	size_t i;

	for (i = 0; i < rl->n; i++)
		if (memcmp(rl->v[i].key, key, 32) == 0)
			return &rl->v[i];
	return NULL;
}

/* Milliseconds until e may try again (0: now); under rl->lock. */
static int64_t
rl_wait(const struct enroll_ratelimit *rl, const struct rl_entry *e,
    int64_t now)
{
	long extra;
	int64_t window;

	if (e == NULL || e->failures < rl->fail_limit)
		return 0;
	extra = e->failures - rl->fail_limit;
	window = extra >= 10 ? RL_MAX_WINDOW_MS : (int64_t)1000 << extra;
	if (window > RL_MAX_WINDOW_MS)
		window = RL_MAX_WINDOW_MS;
	return e->last_ms + window > now ? e->last_ms + window - now : 0;
}

/* Drops entries quiet for RL_FORGET_MS; under rl->lock. */
static void
rl_expire(struct enroll_ratelimit *rl, int64_t now)
{
	size_t i = 0;

	while (i < rl->n) {
		if (now - rl->v[i].last_ms >= RL_FORGET_MS)
			rl->v[i] = rl->v[--rl->n];
		else
			i++;
	}
}

/*
 * Seconds the caller must wait before user or addr may try again, 0 when
 * they may now.
 */
static unsigned
rl_check(struct enroll_ratelimit *rl, const char *user, const char *addr)
{
	unsigned char ku[32], ka[32];
	int64_t now = now_ms(), wu, wa, w;

	if (rl == NULL)
		return 0;
	rl_key('u', user, ku);
	rl_key('a', addr, ka);
	pthread_mutex_lock(&rl->lock);
	rl_expire(rl, now);
	wu = rl_wait(rl, rl_find(rl, ku), now);
	wa = rl_wait(rl, rl_find(rl, ka), now);
	pthread_mutex_unlock(&rl->lock);
	w = wu > wa ? wu : wa;
	return w == 0 ? 0 : (unsigned)((w + 999) / 1000);
}

/* Counts a failure for key; under rl->lock. */
static void
rl_bump(struct enroll_ratelimit *rl, const unsigned char key[32],
    int64_t now)
{
	struct rl_entry *e, *nv;
	size_t i, oldest = 0, cap;

	if ((e = rl_find(rl, key)) == NULL) {
		if (rl->n == rl->cap && rl->cap < RL_MAX_ENTRIES) {
			cap = rl->cap == 0 ? 64 : rl->cap * 2;
			if (cap > RL_MAX_ENTRIES)
				cap = RL_MAX_ENTRIES;
			if ((nv = realloc(rl->v, cap * sizeof(*nv))) != NULL) {
				rl->v = nv;
				rl->cap = cap;
			}
		}
		if (rl->n < rl->cap) {
			e = &rl->v[rl->n++];
		} else if (rl->n > 0) {
			/* full: the entry quiet for longest makes room */
			for (i = 1; i < rl->n; i++)
				if (rl->v[i].last_ms < rl->v[oldest].last_ms)
					oldest = i;
			e = &rl->v[oldest];
		} else {
			return;
		}
		memcpy(e->key, key, 32);
		e->failures = 0;
	}
	e->failures++;
	e->last_ms = now;
}

static void
rl_fail(struct enroll_ratelimit *rl, const char *user, const char *addr)
{
	unsigned char ku[32], ka[32];
	int64_t now = now_ms();

	if (rl == NULL)
		return;
	rl_key('u', user, ku);
	rl_key('a', addr, ka);
	pthread_mutex_lock(&rl->lock);
	rl_bump(rl, ku, now);
	rl_bump(rl, ka, now);
	pthread_mutex_unlock(&rl->lock);
}

static void
rl_clear_user(struct enroll_ratelimit *rl, const char *user)
{
	unsigned char ku[32];
	struct rl_entry *e;

	if (rl == NULL)
		return;
	rl_key('u', user, ku);
	pthread_mutex_lock(&rl->lock);
	if ((e = rl_find(rl, ku)) != NULL)
		*e = rl->v[--rl->n];
	pthread_mutex_unlock(&rl->lock);
}

/* ------------------------------------------------------------------ */
/* Authentication                                                      */

/* A copy of untrusted text fit for the audit log: at most LOGIN_MAX
 * bytes, control characters and non-ASCII replaced by '?'. */
static void
sanitize(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in != NULL && in[i] != '\0' && i + 1 < outlen &&
	    i < LOGIN_MAX; i++)
		out[i] = (unsigned char)in[i] < 0x20 ||
		    (unsigned char)in[i] >= 0x7f ? '?' : in[i];
	out[i] = '\0';
}

/*
 * Records a failed authentication (in its own transaction unless the
 * caller has one open).  A failure to audit is logged: the caller refuses
 * the attempt either way.
 */
static void
audit_fail(sqlite3 *db, const char *actor, const char *object,
    const char *why)
{
	lb_err aerr = { 0 };
	bool own = sqlite3_get_autocommit(db) != 0;

	if ((own && core_db_begin(db, &aerr) == -1) ||
	    core_audit_append(db, actor, "enroll.auth_fail", object, why,
	    &aerr) == -1 || (own && core_db_commit(db, &aerr) == -1)) {
		if (own)
			core_db_rollback(db);
		log_warnx("audit of a failed authentication: %s", aerr.msg);
	}
}

/* Counts, audits and refuses a failed Basic authentication. */
static int
basic_fail(enroll_ctx *e, sqlite3 *db, const char *addr, const char *user,
    const char *why, lb_err *err)
{
	char actor[LOGIN_MAX + 8], login[LOGIN_MAX + 1], a[LOGIN_MAX + 1];

	rl_fail(e->rl, user, addr);
	sanitize(addr, a, sizeof(a));
	sanitize(user, login, sizeof(login));
	snprintf(actor, sizeof(actor), "est:%s", a);
	audit_fail(db, actor, login, why);
	log_info("enroll: authentication of '%s' from %s failed: %s", login,
	    a, why);
	return lb_err_set(err, LB_EUNAUTH, "authentication failed");
}

static int
dup_or_null(char **dst, const char *src)
{
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL ? 0 : -1;
}

int
enroll_auth_basic(enroll_ctx *e, sqlite3 *db, const char *addr,
    const char *user, const char *password, const char *profile,
    enroll_identity *id, unsigned *retry_after, lb_err *err)
{
	directory_user *u = NULL;
	enroll_identity nid;
	lb_err derr = { 0 };
	char why[LOGIN_MAX + 160];
	unsigned wait;
	int rc = -1;

	memset(&nid, 0, sizeof(nid));
	if (retry_after != NULL)
		*retry_after = 0;
	if (addr == NULL)
		addr = "unknown";
	if (user == NULL)
		user = "";
	if ((wait = rl_check(e->rl, user, addr)) > 0) {
		if (retry_after != NULL)
			*retry_after = wait;
		lb_err_set(err, LB_ETHROTTLED, "too many failed attempts: try "
		    "again in %u seconds", wait);
		goto out;
	}
	if (user[0] == '\0' || password == NULL || password[0] == '\0') {
		basic_fail(e, db, addr, user, "empty user or password", err);
		goto out;
	}
	if (strnlen(user, LOGIN_MAX + 1) > LOGIN_MAX) {
		basic_fail(e, db, addr, user, "user name too long", err);
		goto out;
	}
	if (strncmp(password, ENROLL_TOKEN_PREFIX,
	    sizeof(ENROLL_TOKEN_PREFIX) - 1) == 0) {
		why[0] = '\0';
		if (enroll_token_verify(db, user, password, &nid, why,
		    sizeof(why), &derr) == 0) {
			/* spent for this profile is as wrong as a bad secret */
			if (profile != NULL && !enroll_token_allows(db,
			    nid.token_id, profile)) {
				snprintf(why, sizeof(why), "token %lld is spent "
				    "or not valid for profile %.64s",
				    (long long)nid.token_id, profile);
				basic_fail(e, db, addr, user, why, err);
				goto out;
			}
			rc = 0;
			goto ok;
		}
		if (derr.code != LB_EUNAUTH) {
			/* the database failed: nothing the caller did */
			lb_err_set(err, derr.code, "%s", derr.msg);
			goto out;
		}
		basic_fail(e, db, addr, user, why[0] != '\0' ? why :
		    "token refused", err);
		goto out;
	}
	if (e->dir == NULL) {
		basic_fail(e, db, addr, user, "not a token, and no directory "
		    "is configured", err);
		goto out;
	}
	pthread_mutex_lock(&e->dir_lock);
	u = directory_user_authenticate(e->dir, user, password, &derr);
	pthread_mutex_unlock(&e->dir_lock);
	if (u == NULL) {
		if (directory_err_transient(&derr) ||
		    derr.code == LB_EINTERNAL) {
			log_warnx("enroll: %s", derr.msg);
			if (retry_after != NULL)
				*retry_after = DIRECTORY_RETRY_AFTER;
			lb_err_set(err, LB_EINTERNAL, "directory unavailable");
			goto out;
		}
		basic_fail(e, db, addr, user, derr.msg, err);
		goto out;
	}
	nid.how = ENROLL_AUTH_DIRECTORY;
	if (dup_or_null(&nid.login, user) == -1 ||
	    dup_or_null(&nid.email, u->mail) == -1 ||
	    dup_or_null(&nid.given_name, u->given_name) == -1 ||
	    dup_or_null(&nid.surname, u->surname) == -1 ||
	    dup_or_null(&nid.user_dn, u->dn) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
ok:
	rl_clear_user(e->rl, user);
	*id = nid;
	memset(&nid, 0, sizeof(nid));
out:
	directory_user_free(u);
	enroll_identity_clear(&nid);
	return rc;
}

/* A name attribute of a certificate's subject (malloc'ed), or NULL. */
static char *
subject_attr(X509 *cert, int nid)
{
	X509_NAME *name = X509_get_subject_name(cert);
	X509_NAME_ENTRY *ne;
	unsigned char *utf8 = NULL;
	char *s = NULL;
	int i, len;

	if (name == NULL || (i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0 ||
	    (ne = X509_NAME_get_entry(name, i)) == NULL ||
	    (len = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(ne))) < 0)
		return NULL;
	if ((s = malloc((size_t)len + 1)) != NULL) {
		memcpy(s, utf8, (size_t)len);
		s[len] = '\0';
	}
	OPENSSL_free(utf8);
	return s;
}

/* Audits and refuses a certificate authentication. */
static int
cert_fail(sqlite3 *db, const char *serial, const char *object,
    const char *why, lb_err *err)
{
	char actor[160];

	snprintf(actor, sizeof(actor), "cert:%s", serial != NULL ? serial :
	    "?");
	audit_fail(db, actor, object != NULL ? object : "-", why);
	log_info("enroll: certificate %s refused: %s", serial != NULL ?
	    serial : "?", why);
	return lb_err_set(err, LB_EUNAUTH, "authentication failed: the "
	    "client certificate is not accepted for enrollment");
}

int
enroll_auth_cert(enroll_ctx *e, sqlite3 *db, X509 *cert,
    enroll_identity *id, lb_err *err)
{
	ca_cert_info ci;
	enroll_identity nid;
	directory_user *u = NULL;
	const ca_profile *p;
	lb_err derr = { 0 };
	unsigned char *der = NULL;
	char *serial = NULL;
	char why[256];
	int len, rc = -1;
	time_t now = time(NULL);

	memset(&ci, 0, sizeof(ci));
	memset(&nid, 0, sizeof(nid));
	if (cert == NULL || (serial = ca_cert_serial(cert)) == NULL) {
		cert_fail(db, NULL, NULL, "no certificate serial", err);
		goto out;
	}
	if (ca_cert_get(db, serial, &ci, &derr) == -1) {
		if (derr.code != LB_ENOTFOUND) {
			lb_err_set(err, LB_EINTERNAL, "%s", derr.msg);
			goto out;
		}
		cert_fail(db, serial, NULL, "certificate not issued by this "
		    "CA's database", err);
		goto out;
	}
	if ((len = i2d_X509(cert, &der)) <= 0) {
		log_openssl("i2d_X509");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the certificate");
		goto out;
	}
	if ((size_t)len != ci.der_len ||
	    CRYPTO_memcmp(der, ci.der, ci.der_len) != 0) {
		cert_fail(db, serial, ci.email, "the certificate presented "
		    "differs from the one stored under its serial", err);
		goto out;
	}
	if (strcmp(ci.status, "valid") != 0 || ci.not_after < now ||
	    ci.not_before > now) {
		snprintf(why, sizeof(why), "certificate status %s",
		    strcmp(ci.status, "valid") == 0 ? "not yet valid" :
		    ci.status);
		cert_fail(db, serial, ci.email, why, err);
		goto out;
	}
	if ((p = ca_profile_get(e->ca, ci.profile)) == NULL ||
	    !ca_profile_is_subscriber(p) || ci.email == NULL ||
	    !core_email_valid(ci.email)) {
		snprintf(why, sizeof(why), "profile %s is not a subscriber "
		    "profile with an e-mail", ci.profile);
		cert_fail(db, serial, ci.email, why, err);
		goto out;
	}
	nid.how = ENROLL_AUTH_CERT;
	if (dup_or_null(&nid.login, ci.email) == -1 ||
	    dup_or_null(&nid.email, ci.email) == -1 ||
	    dup_or_null(&nid.cert_serial, serial) == -1 ||
	    dup_or_null(&nid.cert_profile, ci.profile) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (e->dir != NULL) {
		pthread_mutex_lock(&e->dir_lock);
		u = directory_user_lookup(e->dir, ci.email, &derr);
		pthread_mutex_unlock(&e->dir_lock);
		if (u == NULL) {
			if (directory_err_transient(&derr) ||
			    derr.code == LB_EINTERNAL) {
				log_warnx("enroll: %s", derr.msg);
				lb_err_set(err, LB_EINTERNAL, "directory "
				    "unavailable");
				goto out;
			}
			cert_fail(db, serial, ci.email, derr.msg, err);
			goto out;
		}
		if (dup_or_null(&nid.user_dn, u->dn) == -1 ||
		    dup_or_null(&nid.given_name, u->given_name) == -1 ||
		    dup_or_null(&nid.surname, u->surname) == -1) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
	} else {
		/* no directory: the names the certificate already carries */
		nid.given_name = subject_attr(cert, NID_givenName);
		nid.surname = subject_attr(cert, NID_surname);
	}
	*id = nid;
	memset(&nid, 0, sizeof(nid));
	rc = 0;
out:
	directory_user_free(u);
	enroll_identity_clear(&nid);
	ca_cert_info_clear(&ci);
	OPENSSL_free(der);
	free(serial);
	return rc;
}

/* Whether the directory user id is in one of the profile's groups. */
static int
in_groups(enroll_ctx *e, const enroll_identity *id,
    const struct enroll_profile *ep, lb_err *err)
{
	lb_err derr;
	bool member = false;
	size_t i;

	if (e->dir == NULL || id->user_dn == NULL)
		return lb_err_set(err, LB_EFORBIDDEN, "no directory entry to "
		    "check the groups of profile '%s' against", ep->name);
	for (i = 0; i < ep->ngroups && !member; i++) {
		lb_err_clear(&derr);
		pthread_mutex_lock(&e->dir_lock);
		if (directory_user_in_group(e->dir, id->user_dn, ep->groups[i],
		    &member, &derr) == -1)
			member = false;
		pthread_mutex_unlock(&e->dir_lock);
		if (derr.code == LB_OK || derr.code == LB_ENOTFOUND) {
			if (derr.code == LB_ENOTFOUND)
				log_warnx("enroll: profile '%s': %s",
				    ep->name, derr.msg);
			continue;
		}
		log_warnx("enroll: %s", derr.msg);
		return lb_err_set(err, LB_EINTERNAL, "directory unavailable");
	}
	if (!member)
		return lb_err_set(err, LB_EFORBIDDEN, "you are not in a group "
		    "entitled to profile '%s': ask your administrator",
		    ep->name);
	return 0;
}

int
enroll_entitled(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    const char *profile, lb_err *err)
{
	const ca_profile *p;
	const struct enroll_profile *ep;

	if (profile == NULL || (p = ca_profile_get(e->ca, profile)) == NULL)
		return lb_err_set(err, LB_ENOTFOUND, "unknown profile '%s'",
		    profile != NULL ? profile : "");
	if (!ca_profile_is_subscriber(p))
		return lb_err_set(err, LB_EFORBIDDEN, "profile '%s' is not "
		    "open to enrollment", profile);
	if (id == NULL || id->how == ENROLL_AUTH_NONE)
		return lb_err_set(err, LB_EFORBIDDEN, "not authenticated");
	if (id->email == NULL || !core_email_valid(id->email))
		return lb_err_set(err, LB_EFORBIDDEN, "your account has no "
		    "e-mail address to certify: ask your administrator");
	switch (id->how) {
	case ENROLL_AUTH_DIRECTORY:
		ep = enroll_profile_find(e, profile);
		if (ep == NULL || ep->ngroups == 0)
			return 0;
		return in_groups(e, id, ep, err);
	case ENROLL_AUTH_TOKEN:
		if (!enroll_token_allows(db, id->token_id, profile))
			return lb_err_set(err, LB_EFORBIDDEN, "the token does "
			    "not allow profile '%s' (not listed, already "
			    "used or expired)", profile);
		return 0;
	case ENROLL_AUTH_CERT:
		if (strcmp(profile, "smime-sign") != 0 &&
		    strcmp(profile, "smime-enc") != 0)
			return lb_err_set(err, LB_EFORBIDDEN, "a certificate "
			    "does not entitle to profile '%s': authenticate "
			    "with a password or a token", profile);
		if (id->cert_profile == NULL ||
		    strcmp(id->cert_profile, "smime-sign") != 0)
			return lb_err_set(err, LB_EFORBIDDEN, "only a signing "
			    "certificate (smime-sign) authenticates renewal");
		return 0;
	default:
		return lb_err_set(err, LB_EFORBIDDEN, "not authenticated");
	}
}
