/*
 * enroll.c - the enrollment context and what an EST request does once its
 * caller is known: entitlement, approval, the certificate (signed with
 * the identity of the caller, never that of the CSR), escrow for the
 * encryption profile, renewal and supersession, token spending and the
 * directory publication queue, all in the transaction that stores the
 * certificate.  Also the server's policy document for a user; manual
 * approval is in approval.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "archive/archive.h"
#include "enroll/enroll_int.h"

#define DEFAULT_RENEW_PERCENT 80
#define DEFAULT_RENEW_DAYS    30
#define DEFAULT_KEYPOOL       8
#define DEFAULT_FAIL_LIMIT    5
/* What a 202 asks a client to wait before it asks again, seconds. */
#define APPROVAL_RETRY_AFTER  300

static const char *const subscriber_profiles[] = {
	"smime-sign", "smime-enc",
};
#define NSUBSCRIBER (sizeof(subscriber_profiles) / \
    sizeof(subscriber_profiles[0]))

/* ------------------------------------------------------------------ */
/* The context                                                         */

static int
parse_groups(struct enroll_profile *p, const char *v, lb_err *err)
{
	const char *s = v, *end;
	size_t len;

	/* DNs hold commas: groups are separated by ';' */
	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == ';')
			s++;
		if (*s == '\0')
			break;
		end = strchr(s, ';');
		len = end != NULL ? (size_t)(end - s) : strlen(s);
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (p->ngroups == ENROLL_MAX_GROUPS)
			return lb_err_set(err, LB_EINVAL, "lockbox.conf: "
			    "[profile.%s] groups: at most %d groups", p->name,
			    ENROLL_MAX_GROUPS);
		if (len == 0 || len > 1024)
			return lb_err_set(err, LB_EINVAL, "lockbox.conf: "
			    "[profile.%s] groups: a group DN is empty or too "
			    "long", p->name);
		if ((p->groups[p->ngroups] = strndup(s, len)) == NULL)
			return lb_err_set(err, LB_EINTERNAL, "out of memory");
		p->ngroups++;
		s += len;
	}
	return 0;
}

static int
load_profile(enroll_ctx *e, struct enroll_profile *p, const char *name,
    lb_err *err)
{
	const core_conf *conf = ca_get0_conf(e->ca);
	char section[96];
	const char *v;
	bool sign_publish = false;

	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(section, sizeof(section), "profile.%s", name);
	if ((p->ca = ca_profile_get(e->ca, name)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "profile %s is missing",
		    name);
	p->escrow = ca_profile_needs_escrow(p->ca);
	if ((v = core_conf_get(conf, section, "groups", NULL)) != NULL &&
	    parse_groups(p, v, err) == -1)
		return -1;
	v = core_conf_get(conf, section, "approval", "auto");
	if (strcmp(v, "manual") == 0)
		p->manual = true;
	else if (strcmp(v, "auto") == 0)
		p->manual = false;
	else
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [%s] "
		    "approval must be auto or manual, not '%s'", section, v);
	if (core_conf_get_long(conf, section, "renew_percent",
	    DEFAULT_RENEW_PERCENT, 1, 99, &p->renew_percent, err) == -1 ||
	    core_conf_get_long(conf, section, "renew_days",
	    DEFAULT_RENEW_DAYS, 0, 825, &p->renew_days, err) == -1)
		return -1;
	v = core_conf_get(conf, section, "keygen_type", "rsa-3072");
	p->keygen_type = ca_key_type_parse(v);
	if (p->keygen_type == CA_KEY_NONE ||
	    (ca_profile_key_types(p->ca) & (1u << p->keygen_type)) == 0)
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [%s] "
		    "keygen_type '%s' is not a key type the profile allows",
		    section, v);
	if (core_conf_get_bool(conf, "enroll", "publish_signing", false,
	    &sign_publish, err) == -1)
		return -1;
	p->publish = p->escrow || sign_publish;
	return 0;
}

static void
profiles_free(enroll_ctx *e)
{
	size_t i, g;

	/*
	 * nprofiles counts up only once profiles is allocated; the analyzer
	 * forgets calloc's zero once &e->fail_limit is passed out.
	 */
	for (i = 0; i < e->nprofiles; i++) {
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		for (g = 0; g < e->profiles[i].ngroups; g++)
			free(e->profiles[i].groups[g]);
		enroll_keypool_free(e->profiles[i].pool);
	}
	free(e->profiles);
	e->profiles = NULL;
	e->nprofiles = 0;
}

enroll_ctx *
enroll_new(ca_ctx *ca, bool with_threads, lb_err *err)
{
	const core_conf *conf = ca_get0_conf(ca);
	enroll_ctx *e;
	sqlite3 *db;
	lb_err derr;
	long pool;
	size_t i;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	e->ca = ca;
	pthread_mutex_init(&e->dir_lock, NULL);
	if (core_conf_get_long(conf, "enroll", "fail_limit",
	    DEFAULT_FAIL_LIMIT, 1, 1000, &e->fail_limit, err) == -1 ||
	    core_conf_get_long(conf, "enroll", "keypool", DEFAULT_KEYPOOL, 0,
	    1024, &pool, err) == -1)
		goto fail;
	if ((e->profiles = calloc(NSUBSCRIBER, sizeof(*e->profiles))) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	for (i = 0; i < NSUBSCRIBER; i++) {
		e->nprofiles++;
		if (load_profile(e, &e->profiles[i], subscriber_profiles[i],
		    err) == -1)
			goto fail;
	}
	if ((e->rl = enroll_rl_new(e->fail_limit)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	lb_err_clear(&derr);
	e->dir = directory_open_at(conf, ca_get0_dir(ca), &derr);
	if (e->dir == NULL && derr.code != LB_ENOTFOUND) {
		lb_err_set(err, derr.code, "%s", derr.msg);
		goto fail;
	}
	if (!with_threads)
		return e;
	for (i = 0; i < e->nprofiles; i++) {
		if (!e->profiles[i].escrow)
			continue;
		e->profiles[i].pool = enroll_keypool_new(
		    e->profiles[i].keygen_type, (size_t)pool, err);
		if (e->profiles[i].pool == NULL)
			goto fail;
	}
	if ((db = ca_db_open(ca, err)) == NULL ||
	    (e->committer = core_committer_new(db, err)) == NULL)
		goto fail;
	if (e->dir != NULL) {
		lb_err_clear(&derr);
		e->pub = enroll_publisher_start(ca, conf, &derr);
		if (e->pub == NULL && derr.code != LB_ENOTFOUND) {
			lb_err_set(err, derr.code, "%s", derr.msg);
			goto fail;
		}
	}
	return e;
fail:
	enroll_free(e);
	return NULL;
}

void
enroll_free(enroll_ctx *e)
{
	if (e == NULL)
		return;
	enroll_publisher_stop(e->pub);
	core_committer_free(e->committer);
	profiles_free(e);
	enroll_rl_free(e->rl);
	directory_free(e->dir);
	pthread_mutex_destroy(&e->dir_lock);
	free(e);
}

void
enroll_wake_publisher(enroll_ctx *e)
{
	if (e != NULL && e->pub != NULL)
		enroll_publisher_wake(e->pub);
}

bool
enroll_profile_known(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < NSUBSCRIBER; i++)
		if (strcmp(subscriber_profiles[i], name) == 0)
			return true;
	return false;
}

const struct enroll_profile *
enroll_profile_find(const enroll_ctx *e, const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < e->nprofiles; i++)
		if (strcmp(e->profiles[i].name, name) == 0)
			return &e->profiles[i];
	return NULL;
}

void
enroll_result_clear(enroll_result *res)
{
	X509_free(res->cert);
	EVP_PKEY_free(res->key);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------ */
/* The identity a renewal must keep                                    */

/* The UTF-8 value of the first nid entry of name, malloc'ed, or NULL. */
static char *
name_entry(const X509_NAME *name, int nid)
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	unsigned char *utf8 = NULL;
	char *s;
	int n;

	if (i < 0)
		return NULL;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
	    X509_NAME_get_entry(name, i)));
	if (n < 0)
		return NULL;
	s = strndup((char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return s;
}

/* Whether every value of nid in name equals want (case-insensitively
 * for e-mail). */
static bool
name_entries_are(const X509_NAME *name, int nid, const char *want,
    bool icase)
{
	int i = -1;
	unsigned char *utf8;
	bool ok = true;
	int n;

	while (ok && (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) {
		utf8 = NULL;
		n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
		    X509_NAME_get_entry(name, i)));
		ok = n >= 0 && want != NULL && strlen(want) == (size_t)n &&
		    (icase ? strncasecmp((char *)utf8, want, (size_t)n) :
		    strncmp((char *)utf8, want, (size_t)n)) == 0;
		OPENSSL_free(utf8);
	}
	return ok;
}

/*
 * A renewal's CSR may leave its subject and SAN empty (the identity comes
 * from the certificate renewed) but may not name anyone else.
 */
static int
csr_names_match(X509_REQ *req, const char *email, const char *given,
    const char *surname, lb_err *err)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(req);
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *san = NULL;
	char full[512];
	char *cn;
	bool ok = true;
	int i;

	if (!name_entries_are(subj, NID_pkcs9_emailAddress, email, true) ||
	    (given != NULL && !name_entries_are(subj, NID_givenName, given,
	    false)) || (surname != NULL && !name_entries_are(subj,
	    NID_surname, surname, false)))
		ok = false;
	if (ok && (cn = name_entry(subj, NID_commonName)) != NULL) {
		snprintf(full, sizeof(full), "%s %s", given != NULL ? given :
		    "", surname != NULL ? surname : "");
		ok = strcasecmp(cn, email) == 0 || strcmp(cn, full) == 0;
		free(cn);
		if (ok && !name_entries_are(subj, NID_commonName, NULL,
		    false) && X509_NAME_get_index_by_NID(subj,
		    NID_commonName, X509_NAME_get_index_by_NID(subj,
		    NID_commonName, -1)) >= 0)
			ok = false; /* several CNs */
	}
	if (!ok)
		return lb_err_set(err, LB_EINVAL, "the CSR's subject names "
		    "another identity than the certificate being renewed "
		    "(%s)", email);
	if ((exts = X509_REQ_get_extensions(req)) != NULL) {
		san = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	for (i = 0; san != NULL && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
		const ASN1_IA5STRING *m;

		if (g->type != GEN_EMAIL) {
			ok = false;
			break;
		}
		m = g->d.rfc822Name;
		if ((size_t)ASN1_STRING_length(m) != strlen(email) ||
		    strncasecmp((const char *)ASN1_STRING_get0_data(m), email,
		    strlen(email)) != 0) {
			ok = false;
			break;
		}
	}
	GENERAL_NAMES_free(san);
	ERR_clear_error();
	if (!ok)
		return lb_err_set(err, LB_EINVAL, "the CSR's subjectAltName "
		    "names another identity than the certificate being renewed "
		    "(%s)", email);
	return 0;
}

/* ------------------------------------------------------------------ */
/* What lands with the certificate                                     */

/*
 * The enrollment transaction, enroll's own job: the certificate, with
 * what must be durable with it or not at all, each part through the
 * function of the module that owns its table: the certificate
 * (ca_store_cert), its escrow record (archive_escrow_store), the token
 * spent (enroll_token_spend), the certificates it supersedes
 * (ca_cert_supersede...), an approved request now issued, the
 * publication queued (enroll_publish_enqueue) and the audit row.
 */
struct enroll_tx {
	const enroll_ctx *e;
	X509 *cert;
	const ca_request *req;
	const enroll_identity *id;
	const struct enroll_profile *prof;
	enum enroll_op op;
	const char *renewed;       /* serial superseded by a renewal */
	const char *request_id;    /* an approved request now issued */
	archive_sealed *sealed;    /* serverkeygen: the escrow to store */
	char actor[300];
};

static int
enroll_tx_job(sqlite3 *db, void *arg, lb_err *err)
{
	struct enroll_tx *x = arg;
	const enroll_identity *id = x->id;
	char *serial;
	char detail[512];
	int rc = -1;

	if ((serial = ca_cert_serial(x->cert)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (ca_store_cert(db, x->cert, x->req->profile, x->req->email,
	    x->actor, err) == -1)
		goto out;
	if (x->sealed != NULL && archive_escrow_store(db, x->sealed, x->actor,
	    err) == -1)
		goto out;
	if (id->how == ENROLL_AUTH_TOKEN && enroll_token_spend(db,
	    id->token_id, x->prof->name, serial, err) == -1)
		goto out;
	if (x->renewed != NULL && ca_cert_supersede(db, x->renewed, serial,
	    err) == -1)
		goto out;
	/* an encryption key renewed: the user's older encryption
	 * certificates step aside (their keys stay escrowed) */
	if (x->op == ENROLL_SERVERKEYGEN && id->how == ENROLL_AUTH_CERT &&
	    ca_cert_supersede_others(db, id->email, x->prof->name, serial,
	    err) == -1)
		goto out;
	if (x->request_id != NULL && enroll_request_issued(db, x->request_id,
	    serial,
	    err) == -1)
		goto out;
	if (x->prof->publish && x->e->dir != NULL &&
	    enroll_publish_enqueue(db, serial, id->email, id->user_dn,
	    err) == -1)
		goto out;
	snprintf(detail, sizeof(detail), "%s for %s by %s%s%s",
	    x->op == ENROLL_RENEW ? "simplereenroll" :
	    x->op == ENROLL_SERVERKEYGEN ? "serverkeygen" : "simpleenroll",
	    x->prof->name, x->actor, x->renewed != NULL ? ", renews " : "",
	    x->renewed != NULL ? x->renewed : "");
	if (core_audit_append(db, x->actor, "enroll.issue", serial, detail,
	    err) == -1)
		goto out;
	rc = 0;
out:
	free(serial);
	return rc;
}

/*
 * Signs req's certificate and runs the enrollment transaction (with key,
 * its escrow too): through the group committer when there is one, so
 * that concurrent enrollments share a commit.  The escrow's cryptography
 * runs before, outside any transaction; only its rows go in.
 */
static X509 *
issue(enroll_ctx *e, sqlite3 *db, const ca_request *req, EVP_PKEY *key,
    struct enroll_tx *x, lb_err *err)
{
	X509 *cert;
	int rc;

	if (ca_key_use_check(db, req->pubkey, req->profile, err) == -1 ||
	    (cert = ca_sign_cert(e->ca, req, err)) == NULL)
		return NULL;
	if (key != NULL && (x->sealed = archive_escrow_seal(e->ca, db, cert,
	    key, req->email, err)) == NULL)
		goto fail;
	x->cert = cert;
	x->req = req;
	rc = e->committer != NULL ? core_committer_run(e->committer,
	    enroll_tx_job, x, err) : core_tx_run(db, enroll_tx_job, x, err);
	archive_sealed_free(x->sealed);
	x->sealed = NULL;
	if (rc == -1)
		goto fail;
	return cert;
fail:
	X509_free(cert);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Enrollment                                                          */

/* The names a renewal keeps: those of the certificate renewed. */
static int
renewed_names(sqlite3 *db, const enroll_identity *id, char **given,
    char **surname, lb_err *err)
{
	ca_cert_info ci;
	const unsigned char *p;
	X509 *old;

	memset(&ci, 0, sizeof(ci));
	if (ca_cert_get(db, id->cert_serial, &ci, err) == -1)
		return -1;
	p = ci.der;
	old = d2i_X509(NULL, &p, (long)ci.der_len);
	ca_cert_info_clear(&ci);
	if (old == NULL)
		return lb_err_set(err, LB_EINTERNAL, "stored certificate %s "
		    "cannot be parsed", id->cert_serial);
	*given = name_entry(X509_get_subject_name(old), NID_givenName);
	*surname = name_entry(X509_get_subject_name(old), NID_surname);
	X509_free(old);
	return 0;
}

int
enroll_do(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    enum enroll_op op, const char *profile, X509_REQ *req,
    enroll_result *res, lb_err *err)
{
	const struct enroll_profile *prof = enroll_profile_find(e, profile);
	struct enroll_tx x;
	ca_request creq;
	char *given = NULL, *surname = NULL;
	X509 *issued = NULL;
	EVP_PKEY *key = NULL;
	int rc = -1, ap;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	if (prof == NULL)
		return lb_err_set(err, LB_ENOTFOUND, "no enrollment profile "
		    "'%s' (smime-sign, smime-enc)", profile);
	if (enroll_entitled(e, db, id, profile, err) == -1)
		return -1;
	if (prof->escrow && op != ENROLL_SERVERKEYGEN)
		return lb_err_set(err, LB_EINVAL, "profile %s escrows its "
		    "keys: the server generates them; use serverkeygen "
		    "(/.well-known/est/%s/serverkeygen)", profile, profile);
	if (!prof->escrow && op == ENROLL_SERVERKEYGEN)
		return lb_err_set(err, LB_EINVAL, "profile %s keeps its "
		    "private key on the client: use simpleenroll with a CSR of "
		    "your own key", profile);
	if (op == ENROLL_RENEW) {
		if (id->how != ENROLL_AUTH_CERT)
			return lb_err_set(err, LB_EUNAUTH, "simplereenroll "
			    "needs the certificate being renewed as the TLS "
			    "client certificate");
		if (id->cert_profile == NULL ||
		    strcmp(id->cert_profile, profile) != 0)
			return lb_err_set(err, LB_EINVAL, "the client "
			    "certificate is of profile %s, not %s: renew it "
			    "under its own label", id->cert_profile != NULL ?
			    id->cert_profile : "?", profile);
	}
	x.e = e;
	x.id = id;
	x.prof = prof;
	x.op = op;
	enroll_identity_actor(id, x.actor, sizeof(x.actor));
	memset(&creq, 0, sizeof(creq));
	creq.profile = profile;
	creq.email = id->email;
	creq.given_name = id->given_name;
	creq.surname = id->surname;
	if (op == ENROLL_RENEW) {
		/* the renewed certificate's subject, whatever the directory
		 * says now */
		if (renewed_names(db, id, &given, &surname, err) == -1)
			goto out;
		if (given != NULL)
			creq.given_name = given;
		if (surname != NULL)
			creq.surname = surname;
	}
	if (op == ENROLL_RENEW) {
		if (csr_names_match(req, id->email, creq.given_name,
		    creq.surname, err) == -1)
			goto out;
		x.renewed = id->cert_serial;
	}
	if (prof->manual) {
		ap = enroll_approval_check(db, id, profile, req,
		    res->request_id,
		    &issued, err);
		if (ap == -1)
			goto out;
		if (issued != NULL) {
			res->cert = issued;
			res->request_id[0] = '\0';
			rc = 0;
			goto out;
		}
		if (ap == ENROLL_APPROVAL_PENDING) {
			res->retry_after = APPROVAL_RETRY_AFTER;
			rc = 0;
			goto out;
		}
		x.request_id = res->request_id;
	}
	if (op == ENROLL_SERVERKEYGEN) {
		key = prof->pool != NULL ? enroll_keypool_take(prof->pool, err) :
		    ca_keygen(prof->keygen_type, err);
		if (key == NULL)
			goto out;
		creq.pubkey = key;
		res->cert = issue(e, db, &creq, key, &x, err);
	} else {
		creq.pubkey = X509_REQ_get0_pubkey(req);
		creq.spki = X509_REQ_get_X509_PUBKEY(req);
		if (creq.pubkey == NULL) {
			lb_err_set(err, LB_EINVAL, "the CSR's public key "
			    "cannot be read");
			goto out;
		}
		res->cert = issue(e, db, &creq, NULL, &x, err);
	}
	if (res->cert == NULL)
		goto out;
	res->request_id[0] = '\0';
	res->key = key;
	key = NULL;
	if (e->pub != NULL && prof->publish)
		enroll_publisher_wake(e->pub);
	rc = 0;
out:
	EVP_PKEY_free(key);
	free(given);
	free(surname);
	if (rc == -1) {
		X509_free(res->cert);
		res->cert = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* The policy document                                                 */

/* ca_cert_list's callback: one of the user's certificates of a profile. */
struct policy_certs {
	enroll_policy_profile *pp;
	const struct enroll_profile *prof;
	size_t cap;
	int failed;
};

static int
policy_cert(const ca_cert_info *ci, void *arg)
{
	struct policy_certs *pc = arg;
	enroll_policy_profile *pp = pc->pp;
	enroll_policy_cert *c, *grown;

	if (pp->ncerts == pc->cap) {
		size_t cap = pc->cap ? 2 * pc->cap : 4;

		if ((grown = realloc(pp->certs, cap * sizeof(*grown))) == NULL) {
			pc->failed = 1;
			return 1;
		}
		pp->certs = grown;
		pc->cap = cap;
	}
	c = &pp->certs[pp->ncerts++];
	memset(c, 0, sizeof(*c));
	c->not_before = ci->not_before;
	c->not_after = ci->not_after;
	c->renew_after = enroll_renew_after(ci->not_before, ci->not_after,
	    pc->prof->renew_percent, pc->prof->renew_days);
	if ((c->serial = strdup(ci->serial)) == NULL ||
	    (c->status = strdup(ci->status)) == NULL) {
		pc->failed = 1;
		return 1;
	}
	return 0;
}

/* The policy's view of profile prof for id. */
static int
policy_profile(sqlite3 *db, const enroll_identity *id,
    const struct enroll_profile *prof, const char *base_url,
    enroll_policy_profile *pp, lb_err *err)
{
	struct policy_certs pc;
	ca_cert_filter f;
	char url[512];
	int t, op;

	pp->enroll = pp->autoenroll = true;
	pp->escrow = prof->escrow;
	pp->manual = prof->manual;
	for (t = CA_KEY_RSA2048; t <= CA_KEY_ECP384; t++)
		if ((ca_profile_key_types(prof->ca) & (1u << t)) &&
		    pp->nkey_types < sizeof(pp->key_types) /
		    sizeof(pp->key_types[0]))
			pp->key_types[pp->nkey_types++] = (enum ca_key_type)t;
	pp->server_key_type = prof->escrow ? prof->keygen_type : CA_KEY_NONE;
	pp->validity_days = ca_profile_days(prof->ca);
	pp->renew_percent = prof->renew_percent;
	pp->renew_days = prof->renew_days;
	if ((pp->name = strdup(prof->name)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	for (op = 0; op < ENROLL_EST_NOPS; op++) {
		/* only what the profile answers: escrowed keys come from
		 * serverkeygen, the others from the client's own CSR */
		if (prof->escrow ? (op == ENROLL_EST_SIMPLEENROLL ||
		    op == ENROLL_EST_SIMPLEREENROLL) :
		    op == ENROLL_EST_SERVERKEYGEN)
			continue;
		snprintf(url, sizeof(url), "%s/.well-known/est/%s/%s", base_url,
		    prof->name, enroll_est_op_name((enum enroll_est_op)op));
		if ((pp->est[op] = strdup(url)) == NULL)
			return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	memset(&pc, 0, sizeof(pc));
	pc.pp = pp;
	pc.prof = prof;
	memset(&f, 0, sizeof(f));
	f.email = id->email;
	f.profile = prof->name;
	f.status = "valid";
	if (ca_cert_list(db, &f, policy_cert, &pc, err) == -1)
		return -1;
	if (pc.failed)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	return 0;
}

static int
dup_or_null(char **to, const char *from)
{
	*to = NULL;
	return from == NULL || (*to = strdup(from)) != NULL ? 0 : -1;
}

json_t *
enroll_policy(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    const char *base_url, lb_err *err)
{
	enroll_policy_doc doc;
	json_t *j = NULL;
	lb_err perr;
	size_t i;

	memset(&doc, 0, sizeof(doc));
	if (dup_or_null(&doc.email, id->email) == -1 ||
	    dup_or_null(&doc.given_name, id->given_name) == -1 ||
	    dup_or_null(&doc.surname, id->surname) == -1 ||
	    dup_or_null(&doc.dn, id->user_dn) == -1 ||
	    (e->nprofiles > 0 && (doc.profiles = calloc(e->nprofiles,
	    sizeof(*doc.profiles))) == NULL)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < e->nprofiles; i++) {
		const struct enroll_profile *prof = &e->profiles[i];

		lb_err_clear(&perr);
		if (enroll_entitled(e, db, id, prof->name, &perr) == -1) {
			if (perr.code == LB_EFORBIDDEN ||
			    perr.code == LB_EUNAUTH)
				continue;
			lb_err_set(err, perr.code, "%s", perr.msg);
			goto out;
		}
		if (policy_profile(db, id, prof, base_url,
		    &doc.profiles[doc.nprofiles++], err) == -1)
			goto out;
	}
	if ((j = enroll_policy_json(&doc)) == NULL)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	enroll_policy_clear(&doc);
	return j;
}

/* ------------------------------------------------------------------ */
/* Key transport for serverkeygen                                      */

struct kt_find {
	const unsigned char *skid;
	size_t len;
	X509 *found;
};

static int
kt_each(const ca_cert_info *ci, void *arg)
{
	struct kt_find *f = arg;
	const unsigned char *p = ci->der;
	const ASN1_OCTET_STRING *kid;
	X509 *x;

	if ((x = d2i_X509(NULL, &p, (long)ci->der_len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	kid = X509_get0_subject_key_id(x);
	if (kid != NULL && (size_t)ASN1_STRING_length(kid) == f->len &&
	    memcmp(ASN1_STRING_get0_data(kid), f->skid, f->len) == 0 &&
	    EVP_PKEY_is_a(X509_get0_pubkey(x), "RSA") &&
	    (X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT) != 0) {
		f->found = x;
		return 1;
	}
	X509_free(x);
	return 0;
}

X509 *
enroll_key_transport_cert(sqlite3 *db, const char *email,
    const unsigned char *skid, size_t len, lb_err *err)
{
	struct kt_find f = { skid, len, NULL };
	ca_cert_filter flt;

	memset(&flt, 0, sizeof(flt));
	flt.email = email;
	flt.status = "valid";
	if (ca_cert_list(db, &flt, kt_each, &f, err) == -1)
		return NULL;
	if (f.found == NULL)
		lb_err_set(err, LB_EINVAL, "the CSR's "
		    "AsymmetricDecryptKeyIdentifier names no valid certificate "
		    "of %s with an RSA key-transport key", email);
	return f.found;
}
