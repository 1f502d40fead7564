/*
 * test_enroll_client.c - unit tests of the enrollment client and its
 * formats: the policy document (enroll/policy.c) written by the server's
 * code and read back by the client's, malformed and oversized documents,
 * the one renewal rule, state.json (enroll/stage.c), and the client
 * workflow (enroll/client.c) driven through an in-process transport that
 * answers with lockbox's own server functions (enroll_auth_*,
 * enroll_policy, enroll_do and the EST encoders) on a throwaway CA: first
 * enrollment, already enrolled, --auto up to date and renewing, an
 * interrupted update, a refused token and an approval pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "archive/archive.h"
#include "enroll/enroll_int.h"
#include "tests/unit/testutil.h"

#define NAGENTS 3
#define BASE    "https://ca.test:8443"

static int
group_setup(void **state)
{
	return tu_agent_keys_setup(state, NAGENTS);
}

/* ------------------------------------------------------------------ */
/* The renewal rule and the policy document                            */

static void
test_renew_after_rule(void **state)
{
	(void)state;
	/* 80% of 1000 s */
	assert_int_equal((long long)enroll_renew_after(0, 1000, 80, 0), 800);
	/* 100 days: 80% is day 80, 30 days before the end is day 70 */
	assert_int_equal((long long)enroll_renew_after(0, 100 * 86400, 80, 30),
	    70LL * 86400);
	/* a year from 2026-01-01: day 292 (80%) beats 30 days before */
	assert_int_equal((long long)enroll_renew_after(1767225600,
	    1767225600 + 365LL * 86400, 80, 30), 1767225600LL + 292 * 86400);
	/* no rounding away: 7 s at 50% is 3 s, as the server says */
	assert_int_equal((long long)enroll_renew_after(10, 17, 50, 0), 13);
}

/* A document with two profiles, as the server fills it. */
static void
sample_doc(enroll_policy_doc *d)
{
	enroll_policy_profile *p;

	memset(d, 0, sizeof(*d));
	d->email = strdup("gina@example.org");
	d->given_name = strdup("Gina");
	d->surname = NULL;
	d->dn = strdup("uid=gina,ou=People,dc=example,dc=org");
	d->nprofiles = 2;
	d->profiles = calloc(2, sizeof(*d->profiles));
	assert_non_null(d->profiles);
	p = &d->profiles[0];
	p->name = strdup("smime-sign");
	p->enroll = p->autoenroll = true;
	p->key_types[0] = CA_KEY_RSA3072;
	p->key_types[1] = CA_KEY_ECP256;
	p->nkey_types = 2;
	p->validity_days = 365;
	p->renew_percent = 80;
	p->renew_days = 30;
	p->est[ENROLL_EST_SIMPLEENROLL] = strdup(BASE "/.well-known/est/"
	    "smime-sign/simpleenroll");
	p->est[ENROLL_EST_CACERTS] = strdup(BASE "/.well-known/est/"
	    "smime-sign/cacerts");
	p->ncerts = 1;
	p->certs = calloc(1, sizeof(*p->certs));
	p->certs[0].serial = strdup("0A1B2C");
	p->certs[0].status = strdup("valid");
	p->certs[0].not_before = 1767225600;
	p->certs[0].not_after = 1767225600 + 365 * 86400;
	p->certs[0].renew_after = 1767225600 + 292 * 86400;
	p = &d->profiles[1];
	p->name = strdup("smime-enc");
	p->enroll = true;
	p->escrow = p->manual = true;
	p->server_key_type = CA_KEY_RSA3072;
	p->renew_percent = 50;
	p->renew_days = 10;
	p->est[ENROLL_EST_SERVERKEYGEN] = strdup("/.well-known/est/smime-enc/"
	    "serverkeygen");
}

static int
parse_str(const char *s, enroll_policy_doc *d, lb_err *err)
{
	return enroll_policy_parse(s, strlen(s), d, err);
}

static void
test_policy_roundtrip(void **state)
{
	enroll_policy_doc d, back;
	json_t *j;
	char *text;
	lb_err err = { 0 };
	const enroll_policy_profile *p;

	(void)state;
	sample_doc(&d);
	assert_non_null(j = enroll_policy_json(&d));
	assert_non_null(text = json_dumps(j, JSON_COMPACT));
	json_decref(j);
	assert_int_equal(parse_str(text, &back, &err), 0);
	free(text);
	assert_string_equal(back.email, "gina@example.org");
	assert_string_equal(back.given_name, "Gina");
	assert_null(back.surname);
	assert_string_equal(back.dn, d.dn);
	assert_int_equal(back.nprofiles, 2);
	p = &back.profiles[0];
	assert_int_equal(p->problem.code, LB_OK);
	assert_string_equal(p->name, "smime-sign");
	assert_true(p->enroll && p->autoenroll && !p->escrow && !p->manual);
	assert_int_equal(p->nkey_types, 2);
	assert_int_equal(p->key_types[0], CA_KEY_RSA3072);
	assert_int_equal(enroll_policy_key_type(p), CA_KEY_ECP256);
	assert_int_equal(p->validity_days, 365);
	assert_string_equal(p->est[ENROLL_EST_SIMPLEENROLL],
	    d.profiles[0].est[ENROLL_EST_SIMPLEENROLL]);
	assert_null(p->est[ENROLL_EST_SERVERKEYGEN]);
	assert_int_equal(p->ncerts, 1);
	assert_string_equal(p->certs[0].serial, "0A1B2C");
	assert_int_equal((long long)p->certs[0].renew_after,
	    (long long)d.profiles[0].certs[0].renew_after);
	assert_int_equal((long long)p->certs[0].not_after,
	    (long long)d.profiles[0].certs[0].not_after);
	p = &back.profiles[1];
	assert_true(p->escrow && p->manual && !p->autoenroll);
	assert_int_equal(p->server_key_type, CA_KEY_RSA3072);
	assert_int_equal(p->renew_percent, 50);
	assert_int_equal(p->renew_days, 10);
	/* no key type named: P-256 */
	assert_int_equal(enroll_policy_key_type(p), CA_KEY_ECP256);
	enroll_policy_clear(&back);
	enroll_policy_clear(&d);
}

static void
test_policy_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "not json", "[]", "{}", "{\"profiles\": {}}",
		"{\"profiles\": [], \"profiles\": []}", "null",
	};
	enroll_policy_doc d;
	lb_err err;
	char *big;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lb_err_clear(&err);
		assert_int_equal(parse_str(bad[i], &d, &err), -1);
		assert_int_equal(d.nprofiles, 0);
		assert_null(d.profiles);
	}
	/* oversized: refused before it is parsed */
	n = ENROLL_POLICY_MAX + 1;
	assert_non_null(big = malloc(n));
	memset(big, ' ', n);
	memcpy(big, "{\"profiles\": []}", 16);
	lb_err_clear(&err);
	assert_int_equal(enroll_policy_parse(big, n, &d, &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	/* too many profiles */
	strcpy(big, "{\"profiles\": [");
	for (i = 0; i <= ENROLL_POLICY_PROFILES_MAX; i++)
		strcat(big, i ? ", {}" : "{}");
	strcat(big, "]}");
	lb_err_clear(&err);
	assert_int_equal(parse_str(big, &d, &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	free(big);
}

static void
test_policy_profile_problems(void **state)
{
	enroll_policy_doc d;
	lb_err err = { 0 };

	(void)state;
	assert_int_equal(parse_str("{\"user\": {\"email\": 7}, \"profiles\": ["
	    "{\"name\": \"../../evil\", \"enroll\": true},"
	    "{\"name\": \"w\", \"enroll\": true, \"renew_percent\": 100},"
	    "{\"name\": \"d\", \"enroll\": true, \"renew_days\": -1},"
	    "{\"name\": \"c\", \"enroll\": true, \"certificates\": {}},"
	    "{\"name\": \"e\", \"enroll\": true, \"certificates\": [7]},"
	    "{\"name\": \"ok\", \"enroll\": true, \"key_types\": [\"rsa-2048\","
	    " 5, \"nonsense\"], \"est\": {\"simpleenroll\": 9}, "
	    "\"certificates\": [{\"serial\": \"AB\", \"renew_after\": "
	    "\"2026-13-01T00:00:00Z\"}]},"
	    "7]}", &d, &err), 0);
	assert_null(d.email);
	assert_int_equal(d.nprofiles, 7);
	assert_int_equal(d.profiles[0].problem.code, LB_EINVAL);
	assert_non_null(strstr(d.profiles[0].problem.msg, "names a profile"));
	assert_false(enroll_policy_name_ok(d.profiles[0].name));
	assert_non_null(strstr(d.profiles[1].problem.msg, "renewal window"));
	assert_non_null(strstr(d.profiles[2].problem.msg, "renewal window"));
	assert_non_null(strstr(d.profiles[3].problem.msg, "certificates"));
	assert_non_null(strstr(d.profiles[4].problem.msg, "certificates"));
	assert_int_equal(d.profiles[5].problem.code, LB_OK);
	assert_int_equal(d.profiles[5].nkey_types, 1);
	assert_int_equal(enroll_policy_key_type(&d.profiles[5]),
	    CA_KEY_RSA2048);
	assert_null(d.profiles[5].est[ENROLL_EST_SIMPLEENROLL]);
	assert_int_equal(d.profiles[5].renew_percent, 80);
	assert_int_equal(d.profiles[5].renew_days, 30);
	assert_int_equal(d.profiles[5].ncerts, 1);
	/* a date that does not parse: 0, for the client to refuse */
	assert_int_equal((long long)d.profiles[5].certs[0].renew_after, 0);
	assert_int_equal(d.profiles[6].problem.code, LB_EINVAL);
	enroll_policy_clear(&d);
}

static void
test_state_codec(void **state)
{
	static const char *const bad[] = {
		"", "{}", "[]", "nonsense",
		"{\"server\": \"http://x\", \"ca_cert\": \"/c\", \"user\": \"u\"}",
		"{\"server\": \"https://x\", \"ca_cert\": \"\", \"user\": \"u\"}",
		"{\"server\": \"https://x\", \"ca_cert\": \"/c\"}",
		"{\"server\": \"https://x\", \"ca_cert\": \"/c\", \"user\": 1}",
		"{\"server\": \"https://x\", \"server\": \"https://y\", "
		    "\"ca_cert\": \"/c\", \"user\": \"u\"}",
	};
	enroll_state st;
	lb_err err;
	char *text;
	size_t i;

	(void)state;
	assert_non_null(text = enroll_state_text("https://ca.test:8443",
	    "/home/u/.lockbox/server-ca.pem", "u@example.org"));
	lb_err_clear(&err);
	assert_int_equal(enroll_state_parse(text, strlen(text), &st, &err), 0);
	assert_string_equal(st.server, "https://ca.test:8443");
	assert_string_equal(st.ca_cert, "/home/u/.lockbox/server-ca.pem");
	assert_string_equal(st.email, "u@example.org");
	/* the file keeps its first version's name for the e-mail */
	assert_non_null(strstr(text, "\"user\": \"u@example.org\""));
	enroll_state_clear(&st);
	free(text);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lb_err_clear(&err);
		assert_int_equal(enroll_state_parse(bad[i], strlen(bad[i]), &st,
		    &err), -1);
		assert_null(st.server);
	}
	assert_int_equal(enroll_state_parse("{}", ENROLL_STATE_MAX + 1, &st,
	    &err), -1);
}

/* ------------------------------------------------------------------ */
/* The workflow, against lockbox's own server functions                */

struct fx {
	tu_fixture tu;          /* the CA, its agents and enrollment */
	char *home;
	/* what the client set on the transport */
	char *login, *secret, *cert_file;
	int requests;
	/* the reports of the last run */
	char lines[16][640];
	int nlines;
};

static void *
f_open(void *ctx, const char *server, const char *ca_file, lb_err *err)
{
	struct fx *f = ctx;

	(void)err;
	assert_string_equal(server, BASE);
	/* the client trusts its own copy of --ca-cert */
	assert_non_null(strstr(ca_file, "server-ca.pem"));
	return f;
}

static void
f_close(void *h)
{
	(void)h;
}

static const char *
f_server(const void *h)
{
	(void)h;
	return BASE;
}

static int
f_basic(void *h, const char *login, const char *password, lb_err *err)
{
	struct fx *f = h;

	(void)err;
	free(f->login);
	core_secret_free(f->secret);
	f->login = strdup(login);
	f->secret = strdup(password);
	return 0;
}

static int
f_cert_files(void *h, const char *cert, const char *key, lb_err *err)
{
	struct fx *f = h;

	(void)key;
	(void)err;
	free(f->cert_file);
	f->cert_file = strdup(cert);
	return 0;
}

static void
answer(core_http_reply *r, long status, const char *ctype, char *body,
    size_t len)
{
	r->status = status;
	snprintf(r->ctype, sizeof(r->ctype), "%s", ctype);
	r->body = body;
	r->len = len;
	r->cap = len + 1;
}

/* Who the caller is: the certificate it shows, else HTTP Basic. */
static int
caller(struct fx *f, const char *profile, enroll_identity *id, lb_err *err)
{
	X509 *cert;
	unsigned retry = 0;
	int rc;

	memset(id, 0, sizeof(*id));
	if (f->cert_file != NULL) {
		if ((cert = enroll_read_cert(f->cert_file, err)) == NULL)
			return -1;
		rc = enroll_auth_cert(f->tu.e, f->tu.db, cert, id, err);
		X509_free(cert);
		return rc;
	}
	return enroll_auth_basic(f->tu.e, f->tu.db, "127.0.0.1", f->login,
	    f->secret, profile, id, &retry, err);
}

/* An EST POST: /.well-known/est/PROFILE/OP */
static void
est_post(struct fx *f, const char *path, const void *body, size_t len,
    core_http_reply *r)
{
	char profile[64], op[32], *cb64 = NULL, *kb64 = NULL, *mp = NULL;
	char *ctype = NULL;
	size_t clen = 0, klen = 0, mlen = 0;
	enroll_identity id;
	enroll_result res;
	enroll_part parts[2];
	X509_REQ *req;
	X509 *certs[1];
	lb_err err = { 0 };
	enum enroll_op eop;

	assert_int_equal(sscanf(path, "/.well-known/est/%63[^/]/%31s",
	    profile, op), 2);
	eop = strcmp(op, "simpleenroll") == 0 ? ENROLL_SIMPLE :
	    strcmp(op, "simplereenroll") == 0 ? ENROLL_RENEW :
	    ENROLL_SERVERKEYGEN;
	memset(&res, 0, sizeof(res));
	assert_non_null(req = enroll_est_csr_decode(body, len, &err));
	if (caller(f, profile, &id, &err) == -1 ||
	    enroll_do(f->tu.e, f->tu.db, &id, eop, profile, req, &res,
	    &err) == -1) {
		answer(r, lb_err_http_status(err.code), "text/plain",
		    strdup(err.msg), strlen(err.msg));
		goto out;
	}
	if (res.cert == NULL) {
		answer(r, 202, "text/plain", strdup("pending"), 7);
		snprintf(r->retry_after, sizeof(r->retry_after), "%u",
		    res.retry_after);
		goto out;
	}
	certs[0] = res.cert;
	assert_int_equal(enroll_est_certs_only(certs, 1, &cb64, &clen, &err),
	    0);
	if (res.key == NULL) {
		answer(r, 200, "application/pkcs7-mime; smime-type=certs-only",
		    cb64, clen);
		goto out;
	}
	assert_int_equal(enroll_est_key_pkcs8(res.key, &kb64, &klen, &err), 0);
	parts[0].content_type = "application/pkcs8";
	parts[0].body = kb64;
	parts[0].len = klen;
	parts[1].content_type = "application/pkcs7-mime; smime-type=certs-only";
	parts[1].body = cb64;
	parts[1].len = clen;
	assert_int_equal(enroll_est_multipart(parts, 2, &mp, &mlen, &ctype,
	    &err), 0);
	answer(r, 200, ctype, mp, mlen);
	free(cb64);
	OPENSSL_clear_free(kb64, klen);
	free(ctype);
out:
	enroll_identity_clear(&id);
	enroll_result_clear(&res);
	X509_REQ_free(req);
}

static int
f_request(void *h, const char *method, const char *path,
    const char *const *headers, const void *body, size_t len, size_t max,
    core_http_reply *r, lb_err *err)
{
	struct fx *f = h;
	enroll_identity id;
	lb_err e2 = { 0 };
	json_t *doc;
	char *s;
	X509 *ca[1];
	size_t n;

	(void)headers;
	(void)max;
	(void)err;
	memset(r, 0, sizeof(*r));
	f->requests++;
	if (strcmp(method, "GET") == 0 && strcmp(path, "/api/v1/policy") ==
	    0) {
		if (caller(f, NULL, &id, &e2) == -1) {
			answer(r, lb_err_http_status(e2.code), "text/plain",
			    strdup(e2.msg), strlen(e2.msg));
			return 0;
		}
		doc = enroll_policy(f->tu.e, f->tu.db, &id, BASE, &e2);
		enroll_identity_clear(&id);
		assert_non_null(doc);
		s = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
		answer(r, 200, "application/json", s, strlen(s));
		return 0;
	}
	if (strcmp(method, "GET") == 0 && strstr(path, "/cacerts") != NULL) {
		ca[0] = (X509 *)ca_get0_cert(f->tu.ca);
		assert_int_equal(enroll_est_certs_only(ca, 1, &s, &n, &e2), 0);
		answer(r, 200, "application/pkcs7-mime", s, n);
		return 0;
	}
	assert_string_equal(method, "POST");
	est_post(f, path, body, len, r);
	return 0;
}

static void
f_report(const enroll_report *r, void *arg)
{
	struct fx *f = arg;
	const char *what[] = {
		"enrolled", "renewed", "pending", "already", "up-to-date",
		"failed",
	};

	assert_true(f->nlines < 16);
	snprintf(f->lines[f->nlines++], sizeof(f->lines[0]), "%s %s%s%s",
	    r->profile, what[r->outcome], r->err != NULL ? ": " : "",
	    r->err != NULL ? r->err->msg : "");
	if (r->outcome == ENROLL_OUT_ENROLLED ||
	    r->outcome == ENROLL_OUT_RENEWED)
		assert_non_null(r->serial);
}

/* Whether line starts a report of the last run. */
static bool
reported(const struct fx *f, const char *line)
{
	int i;

	for (i = 0; i < f->nlines; i++)
		if (strncmp(f->lines[i], line, strlen(line)) == 0)
			return true;
	return false;
}

static enroll_transport
transport(struct fx *f)
{
	enroll_transport t = {
		f, f_open, f_close, f_server, f_basic, f_cert_files, f_request,
	};

	return t;
}

/* The fixture's own parts (tu_fixture release). */
static void
release(tu_fixture *tu)
{
	struct fx *f = (struct fx *)tu;

	free(f->login);
	core_secret_free(f->secret);
	free(f->cert_file);
	free(f->home);
}

static int
setup_with(void **state, const char *extra)
{
	struct fx *f = tu_fixture_setup(state, sizeof(*f), "client", NULL,
	    extra, TU_FX_AGENTS | TU_FX_ENROLL);

	if (f == NULL)
		return -1;
	f->tu.release = release;
	f->home = tu_path(f->tu.tmp, "home");
	return mkdir(f->home, 0700) == -1 ? -1 : 0;
}

static int
setup(void **state)
{
	return setup_with(state, NULL);
}

/* every certificate due at once (800 days before the end of a year) */
static int
setup_due(void **state)
{
	return setup_with(state, "\n[profile.smime-sign]\n"
	    "renew_days = 800\n[profile.smime-enc]\nrenew_days = 800\n");
}

static int
setup_manual(void **state)
{
	return setup_with(state, "\n[profile.smime-sign]\n"
	    "approval = manual\n");
}

/* A token for email (smime-sign and smime-enc) in f->home/token. */
static char *
token_file(struct fx *f, const char *email)
{
	enroll_token_opts o;
	lb_err err = { 0 };
	char *secret = NULL, *line, *path = tu_path(f->home, "token");
	int64_t tid;

	memset(&o, 0, sizeof(o));
	o.email = email;
	o.profiles = "smime-sign,smime-enc";
	o.actor = "test";
	assert_int_equal(enroll_token_create(f->tu.ca, f->tu.db, &o, &secret,
	    &tid, &err), 0);
	/* a newline after it, as a file written by hand has */
	assert_non_null(line = malloc(strlen(secret) + 2));
	snprintf(line, strlen(secret) + 2, "%s\n", secret);
	assert_int_equal(tu_write(path, line, strlen(line)), 0);
	core_secret_free(line);
	core_secret_free(secret);
	return path;
}

static char *
cacert_file(struct fx *f)
{
	return tu_path(f->tu.dir, "ca.pem");
}

static int
first(struct fx *f, const char *email, const char *secret_file,
    lb_err *err)
{
	enroll_transport t = transport(f);
	enroll_client_opts o;
	char *ca = cacert_file(f);
	int rc;

	memset(&o, 0, sizeof(o));
	o.dir = f->home;
	o.server = BASE;
	o.ca_cert = ca;
	o.login = email;
	o.secret_file = secret_file;
	f->nlines = 0;
	rc = enroll_client_first(&t, &o, f_report, f, err);
	free(ca);
	return rc;
}

static int
run_auto(struct fx *f, lb_err *err)
{
	enroll_transport t = transport(f);

	f->nlines = 0;
	return enroll_client_auto(&t, f->home, f_report, f, err);
}

static bool
exists(struct fx *f, const char *name)
{
	char *p = tu_path(f->home, name);
	bool e = access(p, F_OK) == 0;

	free(p);
	return e;
}

static int
mode_of(struct fx *f, const char *name)
{
	char *p = tu_path(f->home, name);
	int m = tu_mode(p);

	free(p);
	return m;
}

/* The serial of f->home/NAME.crt (malloc'ed). */
static char *
serial_of(struct fx *f, const char *name)
{
	char *p = tu_path(f->home, name);
	lb_err err = { 0 };
	X509 *x = enroll_read_cert(p, &err);
	char *s;

	free(p);
	assert_non_null(x);
	s = ca_cert_serial(x);
	X509_free(x);
	return s;
}

static void
test_client_first_then_auto(void **state)
{
	struct fx *f = *state;
	char *tok = token_file(f, "gina@example.org");
	lb_err err = { 0 };
	enroll_state st;

	assert_int_equal(first(f, "gina@example.org", tok, &err), 0);
	assert_true(reported(f, "smime-sign enrolled"));
	assert_true(reported(f, "smime-enc enrolled"));
	assert_int_equal(f->nlines, 2);
	assert_int_equal(mode_of(f, "smime-sign.key"), 0600);
	assert_int_equal(mode_of(f, "smime-enc.key"), 0600);
	assert_int_equal(mode_of(f, "smime-sign.p12.pass"), 0600);
	assert_true(exists(f, "smime-sign.crt") && exists(f, "ca.pem") &&
	    exists(f, "server-ca.pem") && exists(f, "smime-enc.p12"));
	assert_false(exists(f, "smime-sign.crt.new"));
	/* the client's key is its own; the server's is escrowed */
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_records WHERE email = 'gina@example.org'"), 1);
	assert_int_equal(enroll_state_read(f->home, &st, &err), 0);
	assert_string_equal(st.server, BASE);
	assert_string_equal(st.email, "gina@example.org");
	enroll_state_clear(&st);
	/* again with the spent token: refused */
	assert_int_equal(first(f, "gina@example.org", tok, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* with a new one: both are there already, nothing is asked for */
	free(tok);
	tok = token_file(f, "gina@example.org");
	lb_err_clear(&err);
	assert_int_equal(first(f, "gina@example.org", tok, &err), 0);
	assert_true(reported(f, "smime-sign already"));
	assert_true(reported(f, "smime-enc already"));
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "certificates WHERE email = 'gina@example.org'"), 2);
	/* --auto: shows the signing certificate, nothing is due */
	lb_err_clear(&err);
	assert_int_equal(run_auto(f, &err), 0);
	assert_true(reported(f, "smime-sign up-to-date"));
	assert_true(reported(f, "smime-enc up-to-date"));
	assert_non_null(strstr(f->cert_file, "smime-sign.crt"));
	free(tok);
}

static void
test_client_auto_renews(void **state)
{
	struct fx *f = *state;
	char *tok = token_file(f, "hal@example.org"), *s1, *e1, *s2, *e2;
	char kept[128];
	lb_err err = { 0 };

	assert_int_equal(first(f, "hal@example.org", tok, &err), 0);
	s1 = serial_of(f, "smime-sign.crt");
	e1 = serial_of(f, "smime-enc.crt");
	assert_int_equal(run_auto(f, &err), 0);
	assert_true(reported(f, "smime-sign renewed"));
	assert_true(reported(f, "smime-enc renewed"));
	s2 = serial_of(f, "smime-sign.crt");
	e2 = serial_of(f, "smime-enc.crt");
	assert_string_not_equal(s1, s2);
	assert_string_not_equal(e1, e2);
	/* the old encryption pair is kept under its serial, 0600 */
	snprintf(kept, sizeof(kept), "smime-enc-%s.key", e1);
	assert_int_equal(mode_of(f, kept), 0600);
	snprintf(kept, sizeof(kept), "smime-sign-%s.key", s1);
	assert_false(exists(f, kept));
	/* the server superseded the old signing certificate */
	snprintf(kept, sizeof(kept), "SELECT status = 'superseded' FROM "
	    "certificates WHERE serial = '%s'", s1);
	assert_int_equal(tu_sql_int(f->tu.db, kept), 1);
	free(s1);
	free(e1);
	free(s2);
	free(e2);
	free(tok);
}

static void
test_client_interrupted(void **state)
{
	struct fx *f = *state;
	char *tok = token_file(f, "ida@example.org");
	char *to, *before, *after;
	lb_err err = { 0 };

	assert_int_equal(first(f, "ida@example.org", tok, &err), 0);
	before = serial_of(f, "smime-sign.crt");
	/* a staged key with no staged certificate: the run died early */
	to = tu_path(f->home, "smime-sign.key.new");
	assert_int_equal(tu_write(to, "junk", 4), 0);
	assert_int_equal(run_auto(f, &err), 0);
	assert_false(exists(f, "smime-sign.key.new"));
	assert_true(exists(f, "smime-sign.key"));
	after = serial_of(f, "smime-sign.crt");
	assert_string_equal(before, after);
	free(before);
	free(after);
	free(to);
	free(tok);
}

static void
test_client_refused(void **state)
{
	struct fx *f = *state;
	char *path = tu_path(f->home, "bad");
	lb_err err = { 0 };

	assert_int_equal(tu_write(path, "lbt-nope\n", 9), 0);
	assert_int_equal(first(f, "joe@example.org", path, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_non_null(strstr(err.msg, "refused the credentials for the "
	    "policy (HTTP 401)"));
	assert_false(exists(f, "smime-sign.key"));
	/* an empty secret file: refused before anything is sent */
	f->requests = 0;
	assert_int_equal(tu_write(path, " \n", 2), 0);
	lb_err_clear(&err);
	assert_int_equal(first(f, "joe@example.org", path, &err), -1);
	assert_non_null(strstr(err.msg, "empty"));
	assert_int_equal(f->requests, 0);
	/* --auto before any enrollment */
	lb_err_clear(&err);
	assert_int_equal(run_auto(f, &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "enroll first"));
	free(path);
}

static void
test_client_pending(void **state)
{
	struct fx *f = *state;
	char *tok = token_file(f, "kim@example.org");
	lb_err err = { 0 };

	assert_int_equal(first(f, "kim@example.org", tok, &err), 0);
	assert_true(reported(f, "smime-sign pending"));
	assert_true(reported(f, "smime-enc enrolled"));
	assert_false(exists(f, "smime-sign.crt"));
	assert_int_equal(mode_of(f, "smime-sign.pending.key"), 0600);
	free(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew_after_rule),
		cmocka_unit_test(test_policy_roundtrip),
		cmocka_unit_test(test_policy_parse_bad),
		cmocka_unit_test(test_policy_profile_problems),
		cmocka_unit_test(test_state_codec),
		cmocka_unit_test_setup_teardown(test_client_first_then_auto,
		    setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_auto_renews,
		    setup_due, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_interrupted,
		    setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_refused, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_client_pending,
		    setup_manual, tu_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup,
	    tu_agent_keys_teardown);
}
