/*
 * test_policy.c - the escrow policy is a document its members sign
 * (archive/policy.c, policy_db.c, policy_client.c): its one text form,
 * the rule that puts it in force, the server's refusals, and the members'
 * clients, which trust their pins and the signatures rather than the
 * server - tried as the administrator with write access to lockbox.db
 * would try them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <sys/stat.h>

#include "archive/archive_int.h"
#include "tests/unit/testutil.h"

#define NAGENTS 4

struct fx {
	tu_fixture tu;
	EVP_PKEY *const *key;       /* the group's agent keys */
	X509 *agent[NAGENTS];
	EVP_PKEY *okey;             /* a recovery officer's */
	X509 *officer;
	char *home;                 /* a member client's pin folder */
};

static int
group_setup(void **state)
{
	return tu_agent_keys_setup(state, NAGENTS);
}

static void
release(tu_fixture *tu)
{
	struct fx *f = (struct fx *)tu;
	int i;

	for (i = 0; i < NAGENTS; i++)
		X509_free(f->agent[i]);
	X509_free(f->officer);
	EVP_PKEY_free(f->okey);
	free(f->home);
}

/* A CA with agents 0..2 (agent 3's key is kept for later). */
static int
setup(void **state)
{
	const tu_agent_keys *ak = *state;
	lb_err err = { 0 };
	char email[64];
	struct fx *f;
	int i;

	if (ak == NULL || (f = tu_fixture_setup(state, sizeof(*f), "policy",
	    NULL, NULL, 0)) == NULL)
		return -1;
	f->tu.release = release;
	f->key = ak->key;
	for (i = 0; i < 3; i++) {
		snprintf(email, sizeof(email), "agent%d@example.org", i);
		if ((f->agent[i] = ca_operator_add(f->tu.ca, f->tu.db,
		    CA_ROLE_RECOVERY_AGENT, "Agent", email, f->key[i], "test",
		    &err)) == NULL)
			return -1;
	}
	if ((f->okey = ca_keygen(CA_KEY_ECP256, &err)) == NULL ||
	    (f->officer = ca_operator_add(f->tu.ca, f->tu.db,
	    CA_ROLE_RECOVERY_OFFICER, "Officer", "officer@example.org",
	    f->okey, "test", &err)) == NULL ||
	    (f->home = tu_path(f->tu.tmp, "home")) == NULL ||
	    mkdir(f->home, 0700) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	return tu_fixture_teardown(state);
}

/* Agent i's signature over p, added as a member's client would. */
static int
sign_as(struct fx *f, EVP_PKEY *key, X509 *cert, const archive_policy *p,
    bool *in_force, lb_err *err)
{
	unsigned char *sig = NULL;
	size_t len = 0;
	int rc;

	if (archive_policy_sign(p, key, cert, &sig, &len, err) == -1)
		return -1;
	rc = archive_policy_signature_add(f->tu.db, p->hash, sig, len, NULL,
	    "test", in_force, err);
	OPENSSL_free(sig);
	return rc;
}

static void
propose(struct fx *f, int m, archive_policy *p)
{
	lb_err err = { 0 };

	assert_int_equal(archive_policy_propose(f->tu.db, m, NULL, 0, NULL, 0,
	    "local:admin", p, &err), 0);
}

/* The first policy, in force: agents 0..2 and the officer signed it. */
static void
genesis(struct fx *f, archive_policy *p)
{
	lb_err err = { 0 };
	bool in_force = false;
	int i;

	propose(f, 2, p);
	for (i = 0; i < 3; i++)
		assert_int_equal(sign_as(f, f->key[i], f->agent[i], p,
		    &in_force, &err), 0);
	assert_false(in_force);
	assert_int_equal(sign_as(f, f->okey, f->officer, p, &in_force, &err),
	    0);
	assert_true(in_force);
}

static int
policy_count(struct fx *f, const char *status)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM escrow_policies "
	    "WHERE status = '%s'", status);
	return (int)tu_sql_int(f->tu.db, sql);
}

/* ------------------------------------------------------------------ */
/* The document                                                        */

static void
test_document_one_text_form(void **state)
{
	struct fx *f = *state;
	archive_policy p, q;
	lb_err err = { 0 };
	char *doc;
	size_t len;

	propose(f, 2, &p);
	assert_int_equal(p.version, 1);
	assert_string_equal(p.previous, "");
	assert_int_equal(archive_policy_count(&p, ARCHIVE_MEMBER_AGENT), 3);
	assert_int_equal(archive_policy_count(&p, ARCHIVE_MEMBER_OFFICER), 1);
	assert_non_null(strstr(p.doc, "\nthreshold: 2\n"));
	assert_int_equal(archive_policy_parse(p.doc, p.doc_len, &q, &err), 0);
	assert_string_equal(q.hash, p.hash);
	archive_policy_clear(&q);
	/* any other spelling of the same content is not the document */
	doc = strdup(p.doc);
	len = strlen(doc);
	doc[len - 1] = ' ';
	assert_int_equal(archive_policy_parse(doc, len, &q, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	memcpy(strstr(doc, "threshold: 2"), "threshold: 1", 12);
	doc[len - 1] = '\n';
	lb_err_clear(&err);
	assert_int_equal(archive_policy_parse(doc, len, &q, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "at least 2"));
	free(doc);
	assert_int_equal(archive_policy_parse(p.doc, p.doc_len - 1, &q, &err),
	    -1);
	assert_int_equal(archive_policy_parse(p.doc, ARCHIVE_POLICY_MAX + 1,
	    &q, &err), -1);
	archive_policy_clear(&p);
}

static void
test_document_rules(void **state)
{
	struct fx *f = *state;
	archive_policy p;
	lb_err err = { 0 };
	char *e0;

	propose(f, 2, &p);
	p.threshold = 1;
	assert_int_equal(archive_policy_render(&p, &err), -1);
	assert_non_null(strstr(err.msg, "at least 2"));
	p.threshold = 3;   /* 3 of 3: one lost agent would lose every key */
	lb_err_clear(&err);
	assert_int_equal(archive_policy_render(&p, &err), -1);
	assert_non_null(strstr(err.msg, "at least 4 agents"));
	p.threshold = 2;
	/* a case-variant of a member's e-mail is the same person */
	e0 = p.members[1].email;
	p.members[1].email = strdup(p.members[0].email);
	p.members[1].email[0] = (char)toupper((unsigned char)
	    p.members[1].email[0]);
	lb_err_clear(&err);
	assert_int_equal(archive_policy_render(&p, &err), -1);
	assert_non_null(strstr(err.msg, "stands twice"));
	free(p.members[1].email);
	p.members[1].email = e0;
	/* one key, one member */
	memcpy(p.members[1].spki, p.members[0].spki, 65);
	lb_err_clear(&err);
	assert_int_equal(archive_policy_render(&p, &err), -1);
	assert_non_null(strstr(err.msg, "one key stands twice"));
	archive_policy_clear(&p);
}

/* ------------------------------------------------------------------ */
/* The server's rule                                                   */

static void
test_threshold_one_is_never_proposed(void **state)
{
	struct fx *f = *state;
	archive_policy p;
	lb_err err = { 0 };

	assert_int_equal(archive_policy_propose(f->tu.db, 1, NULL, 0, NULL, 0,
	    "local:admin", &p, &err), -1);
	assert_int_equal(policy_count(f, "proposed"), 0);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM audit "
	    "WHERE action = 'escrow.policy_propose'"), 0);
}

static void
test_first_policy_needs_every_member(void **state)
{
	struct fx *f = *state;
	archive_policy p;
	lb_err err = { 0 };
	bool in_force = true;
	int i;

	propose(f, 2, &p);
	for (i = 0; i < 3; i++) {
		assert_int_equal(sign_as(f, f->key[i], f->agent[i], &p,
		    &in_force, &err), 0);
		assert_false(in_force);
	}
	assert_int_equal(policy_count(f, "in_force"), 0);
	assert_int_equal(sign_as(f, f->okey, f->officer, &p, &in_force, &err),
	    0);
	assert_true(in_force);
	assert_int_equal(policy_count(f, "in_force"), 1);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM audit "
	    "WHERE action = 'escrow.policy_in_force'"), 1);
	archive_policy_clear(&p);
}

static void
test_outsider_signature_refused(void **state)
{
	struct fx *f = *state;
	archive_policy p;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	X509 *x;
	bool in_force;

	propose(f, 2, &p);
	/* the administrator's own operator credential is no member */
	x = ca_operator_add(f->tu.ca, f->tu.db, CA_ROLE_ADMIN, "Admin",
	    "mallory@example.org", k, "test", &err);
	assert_non_null(x);
	assert_int_equal(sign_as(f, k, x, &p, &in_force, &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_policy_signatures"), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	archive_policy_clear(&p);
}

static void
test_signature_over_another_document_refused(void **state)
{
	struct fx *f = *state;
	archive_policy p, other;
	unsigned char *sig = NULL;
	size_t len = 0;
	lb_err err = { 0 };
	bool in_force;

	propose(f, 2, &p);
	assert_int_equal(archive_policy_parse(p.doc, p.doc_len, &other, &err),
	    0);
	other.nmembers--;            /* no officer: 3 agents, M = 2 */
	assert_int_equal(archive_policy_render(&other, &err), 0);
	assert_int_equal(archive_policy_sign(&other, f->key[0], f->agent[0],
	    &sig, &len, &err), 0);
	assert_int_equal(archive_policy_signature_add(f->tu.db, p.hash, sig,
	    len, NULL, "test", &in_force, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_policy_signatures"), 0);
	OPENSSL_free(sig);
	other.nmembers++;
	archive_policy_clear(&other);
	archive_policy_clear(&p);
}

static void
test_one_successor(void **state)
{
	struct fx *f = *state;
	archive_policy p, q;
	lb_err err = { 0 };

	propose(f, 2, &p);
	assert_int_equal(archive_policy_propose(f->tu.db, 2, NULL, 0, NULL, 0,
	    "local:admin", &q, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "one successor"));
	/* the database refuses a second first policy by itself too */
	assert_int_not_equal(sqlite3_exec(f->tu.db, "INSERT INTO "
	    "escrow_policies (hash, version, previous, threshold, document, "
	    "status, proposed_by, created) VALUES ('x', 1, NULL, 2, 'd', "
	    "'proposed', 'sql', 0)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(archive_policy_withdraw(f->tu.db, p.hash, "local:a",
	    &err), 0);
	propose(f, 2, &q);
	assert_string_not_equal(q.hash, p.hash);
	archive_policy_clear(&p);
	archive_policy_clear(&q);
}

static void
add_agent3(struct fx *f)
{
	lb_err err = { 0 };

	f->agent[3] = ca_operator_add(f->tu.ca, f->tu.db,
	    CA_ROLE_RECOVERY_AGENT, "Agent", "agent3@example.org", f->key[3],
	    "test", &err);
	assert_non_null(f->agent[3]);
}

/* The administrator adds himself as an agent and asks for M = 2 of a
 * new set: M agents of the policy in force must agree, and he must. */
static void
test_successor_needs_m_agents_and_the_added(void **state)
{
	struct fx *f = *state;
	archive_policy g, p;
	lb_err err = { 0 };
	bool in_force = false;

	genesis(f, &g);
	add_agent3(f);
	propose(f, 2, &p);
	assert_int_equal(p.version, 2);
	assert_string_equal(p.previous, g.hash);
	/* the added agent alone */
	assert_int_equal(sign_as(f, f->key[3], f->agent[3], &p, &in_force,
	    &err), 0);
	assert_false(in_force);
	/* one agent of v1 is not M */
	assert_int_equal(sign_as(f, f->key[0], f->agent[0], &p, &in_force,
	    &err), 0);
	assert_false(in_force);
	assert_int_equal(policy_count(f, "in_force"), 1);
	assert_int_equal(sign_as(f, f->key[1], f->agent[1], &p, &in_force,
	    &err), 0);
	assert_true(in_force);
	assert_int_equal(policy_count(f, "superseded"), 1);
	archive_policy_clear(&g);
	archive_policy_clear(&p);
}

static void
test_escrow_goes_to_the_policy_agents(void **state)
{
	struct fx *f = *state;
	archive_policy g;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	ca_request req;
	char *serial, sql[256], *a3;
	X509 *x;

	genesis(f, &g);
	/* an agent added after the policy receives no share */
	add_agent3(f);
	memset(&req, 0, sizeof(req));
	req.email = "alice@example.org";
	x = archive_issue_enc(f->tu.ca, f->tu.db, &req, k, "test", &rcpt,
	    &rlen, &err);
	assert_non_null(x);
	serial = ca_cert_serial(x);
	a3 = ca_cert_serial(f->agent[3]);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM escrow_records "
	    "WHERE serial = '%s' AND policy_hash = '%s' AND nshares = 3",
	    serial, g.hash);
	assert_int_equal(tu_sql_int(f->tu.db, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM escrow_shares WHERE "
	    "agent_serial = '%s'", a3);
	assert_int_equal(tu_sql_int(f->tu.db, sql), 0);
	free(a3);
	free(serial);
	X509_free(x);
	OPENSSL_free(rcpt);
	EVP_PKEY_free(k);
	archive_policy_clear(&g);
}

/* A key sealed for the agents of a policy is not stored when one of
 * them lost its credential meanwhile: the escrow would go to a key that
 * may be gone. */
static void
test_escrow_refused_when_an_agent_went_meanwhile(void **state)
{
	struct fx *f = *state;
	archive_policy g;
	archive_sealed *sealed;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	ca_request req;
	char *a2;
	X509 *x;

	genesis(f, &g);
	memset(&req, 0, sizeof(req));
	req.profile = "smime-enc";
	req.email = "alice@example.org";
	req.pubkey = k;
	x = ca_sign_cert(f->tu.ca, &req, &err);
	assert_non_null(x);
	sealed = archive_escrow_seal(f->tu.ca, f->tu.db, x, k,
	    "alice@example.org", &err);
	assert_non_null(sealed);
	a2 = ca_cert_serial(f->agent[2]);
	assert_int_equal(ca_operator_remove(f->tu.db, a2, "test", &err), 0);
	assert_int_equal(core_db_begin(f->tu.db, &err), 0);
	assert_int_equal(archive_escrow_store(f->tu.db, sealed, "test", &err),
	    -1);
	core_db_rollback(f->tu.db);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "agent agent2@example.org of escrow "
	    "policy v1 has no active credential"));
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_records"), 0);
	archive_sealed_free(sealed);
	/* and the next seal reads the agents afresh: refused at once */
	memset(&err, 0, sizeof(err));
	assert_null(archive_escrow_seal(f->tu.ca, f->tu.db, x, k,
	    "alice@example.org", &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "has no active credential"));
	free(a2);
	X509_free(x);
	EVP_PKEY_free(k);
	archive_policy_clear(&g);
}

/* The agents an earlier escrow read are kept between escrows; an agent
 * removed since must still receive nothing: the escrow is refused and
 * nothing is stored. */
static void
test_escrow_kept_agents_never_outlive_a_removal(void **state)
{
	struct fx *f = *state;
	archive_policy g;
	lb_err err = { 0 };
	EVP_PKEY *k1 = ca_keygen(CA_KEY_ECP256, &err);
	EVP_PKEY *k2 = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	ca_request req;
	char *a1;
	X509 *x;

	genesis(f, &g);
	memset(&req, 0, sizeof(req));
	req.email = "alice@example.org";
	x = archive_issue_enc(f->tu.ca, f->tu.db, &req, k1, "test", &rcpt,
	    &rlen, &err);
	assert_non_null(x);
	X509_free(x);
	OPENSSL_free(rcpt);
	rcpt = NULL;
	a1 = ca_cert_serial(f->agent[1]);
	assert_int_equal(ca_operator_remove(f->tu.db, a1, "test", &err), 0);
	req.email = "bob@example.org";
	assert_null(archive_issue_enc(f->tu.ca, f->tu.db, &req, k2, "test",
	    &rcpt, &rlen, &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "agent agent1@example.org of escrow "
	    "policy v1 has no active credential"));
	assert_null(rcpt);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_records"), 1);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "certificates WHERE email = 'bob@example.org'"), 0);
	free(a1);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	archive_policy_clear(&g);
}

/* ------------------------------------------------------------------ */
/* The members' clients                                                */

/* A transport answered from the fixture's database, as `--dir` does,
 * counting the signatures it is sent. */
struct local {
	struct fx *f;
	int posts;
};

static int
local_api(void *h, const char *method, const char *path, json_t *body,
    core_http_reply *r, lb_err *err)
{
	struct local *l = h;
	archive_policy_local db = { l->f->tu.db, "local:test" };

	l->posts += strcmp(method, "POST") == 0;
	return archive_policy_local_api(&db, method, path, body, r, err);
}

static archive_transport
transport(struct local *l, int agent)
{
	return (archive_transport){ l, local_api, l->f->key[agent],
	    l->f->agent[agent] };
}

static void
test_client_refuses_a_hash_it_was_not_told(void **state)
{
	struct fx *f = *state;
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 0);
	archive_policy p;
	char other[65];
	lb_err err = { 0 };
	bool in_force;
	archive_pin pin;
	bool found;

	propose(f, 2, &p);
	memcpy(other, p.hash, 65);
	other[0] = other[0] == 'a' ? 'b' : 'a';
	assert_int_equal(archive_client_policy_sign(&t, f->home, other, NULL,
	    NULL, &in_force, &err), -1);
	assert_non_null(strstr(err.msg, "check the hash read out"));
	assert_int_equal(l.posts, 0);
	assert_int_equal(archive_pin_load(f->home, &pin, &found, &err), 0);
	assert_false(found);
	/* the right hash: signed, and the pin is that policy */
	assert_int_equal(archive_client_policy_sign(&t, f->home, p.hash, NULL,
	    NULL, &in_force, &err), 0);
	assert_int_equal(archive_pin_load(f->home, &pin, &found, &err), 0);
	assert_true(found);
	assert_string_equal(pin.first, p.hash);
	archive_policy_clear(&p);
}

/* The administrator proposes a first policy that lists agent 0's e-mail
 * with a key of his own: agent 0's client refuses to sign it. */
static void
test_client_refuses_its_name_with_another_key(void **state)
{
	struct fx *f = *state;
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 0);
	archive_policy p;
	lb_err err = { 0 };
	bool in_force;
	const char *v[4];
	char *spki0;
	size_t i;

	propose(f, 2, &p);
	archive_policy_withdraw(f->tu.db, p.hash, "local:a", &err);
	/* rewrite agent 0's key, keep its e-mail */
	for (i = 0; strcmp(p.members[i].email, "agent0@example.org") != 0; i++)
		;
	spki0 = strdup(p.members[i].spki);
	memcpy(p.members[i].spki, "00000000", 8);
	assert_int_equal(archive_policy_render(&p, &err), 0);
	v[0] = p.hash;
	v[1] = p.doc;
	assert_int_equal(core_db_run(f->tu.db, "INSERT INTO escrow_policies "
	    "(hash, version, previous, threshold, document, status, "
	    "proposed_by, created) VALUES (?, 1, NULL, 2, ?, 'proposed', "
	    "'sql', 0)", v, 2, "insert", &err), 0);
	assert_int_equal(archive_client_policy_sign(&t, f->home, p.hash, NULL,
	    NULL, &in_force, &err), -1);
	assert_non_null(strstr(err.msg, "with another key"));
	assert_int_equal(l.posts, 0);
	free(spki0);
	archive_policy_clear(&p);
}

/* Agent 2 on a fresh machine, left out of v2: without a pin it signs
 * only a proposal naming its own key, unless told which policy to trust
 * (by another member, never the server); then it signs as a v1 agent. */
static void
test_client_without_pin_signs_only_its_own(void **state)
{
	struct fx *f = *state;
	static const char *const agents[] = { "agent0@example.org",
	    "agent1@example.org", "agent3@example.org" };
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 2);
	archive_policy g, p;
	lb_err err = { 0 };
	bool in_force = false;

	genesis(f, &g);
	add_agent3(f);
	assert_int_equal(archive_policy_propose(f->tu.db, 2, agents, 3, NULL,
	    0, "local:admin", &p, &err), 0);
	assert_null(archive_policy_member_find(&p, "x"));
	assert_int_equal(archive_client_policy_sign(&t, f->home, p.hash, NULL,
	    NULL, &in_force, &err), -1);
	assert_non_null(strstr(err.msg, "--trust-policy"));
	assert_int_equal(l.posts, 0);
	lb_err_clear(&err);
	assert_int_equal(archive_client_policy_sign(&t, f->home, p.hash,
	    g.hash, NULL, &in_force, &err), 0);
	assert_int_equal(l.posts, 1);
	assert_false(in_force);     /* agent 3 has not proved its key yet */
	archive_policy_clear(&g);
	archive_policy_clear(&p);
}

/* The administrator writes a policy of his own into lockbox.db, in
 * force, after the one the members signed: their clients refuse it. */
static void
test_client_catches_a_rewritten_policy_row(void **state)
{
	struct fx *f = *state;
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 0);
	archive_verified v;
	archive_policy g, p;
	lb_err err = { 0 };
	bool in_force;
	const char *sv[2];

	genesis(f, &g);
	/* agent 0's client pins v1 */
	assert_int_equal(archive_client_policy_verify(&t, f->home, g.hash, &v,
	    &err), 0);
	assert_int_equal(v.in_force, 0);
	archive_verified_clear(&v);
	/* mallory's v2: threshold 2 of agents 0, 1 and his agent 3 */
	add_agent3(f);
	propose(f, 2, &p);
	assert_int_equal(sign_as(f, f->key[3], f->agent[3], &p, &in_force,
	    &err), 0);
	sv[0] = p.hash;
	sv[1] = g.hash;
	assert_int_equal(core_db_run(f->tu.db, "UPDATE escrow_policies SET "
	    "status = CASE hash WHEN ? THEN 'in_force' ELSE 'superseded' END "
	    "WHERE hash IN (?1, ?2)", sv, 2, "rewrite", &err), 0);
	assert_int_equal(policy_count(f, "in_force"), 1);
	lb_err_clear(&err);
	assert_int_equal(archive_client_policy_verify(&t, f->home, NULL, &v,
	    &err), -1);
	assert_non_null(strstr(err.msg, "do not put it in force"));
	/* the pin still names v1 */
	{
		archive_pin pin;
		bool found;

		assert_int_equal(archive_pin_load(f->home, &pin, &found, &err),
		    0);
		assert_string_equal(pin.newest, g.hash);
	}
	archive_policy_clear(&g);
	archive_policy_clear(&p);
}

/* A client that verified v2 notices when v2 disappears. */
static void
test_client_catches_a_rolled_back_chain(void **state)
{
	struct fx *f = *state;
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 0);
	archive_verified v;
	archive_policy g, p;
	lb_err err = { 0 };
	bool in_force;
	const char *sv[2];

	genesis(f, &g);
	add_agent3(f);
	propose(f, 2, &p);
	assert_int_equal(sign_as(f, f->key[3], f->agent[3], &p, &in_force,
	    &err), 0);
	assert_int_equal(sign_as(f, f->key[1], f->agent[1], &p, &in_force,
	    &err), 0);
	assert_int_equal(sign_as(f, f->key[2], f->agent[2], &p, &in_force,
	    &err), 0);
	assert_true(in_force);
	assert_int_equal(archive_client_policy_verify(&t, f->home, g.hash, &v,
	    &err), 0);
	assert_int_equal(v.in_force, 1);
	archive_verified_clear(&v);
	/* back to v1 behind the members' backs */
	sv[0] = p.hash;
	sv[1] = g.hash;
	assert_int_equal(core_db_run(f->tu.db, "DELETE FROM "
	    "escrow_policy_signatures WHERE policy_hash = ?", sv, 1, "d",
	    &err), 0);
	assert_int_equal(core_db_run(f->tu.db, "DELETE FROM escrow_policies "
	    "WHERE hash = ?", sv, 1, "d", &err), 0);
	assert_int_equal(core_db_run(f->tu.db, "UPDATE escrow_policies SET "
	    "status = 'in_force' WHERE hash = ?", sv + 1, 1, "u", &err), 0);
	assert_int_equal(archive_client_policy_verify(&t, f->home, NULL, &v,
	    &err), -1);
	assert_non_null(strstr(err.msg, "rewritten"));
	archive_policy_clear(&g);
	archive_policy_clear(&p);
}

/* A genesis proposal with another hash than the one read out: the
 * server shows agent 0 a member list of its choosing. */
static void
test_client_refuses_a_differing_genesis(void **state)
{
	struct fx *f = *state;
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 0);
	archive_policy p, shown;
	lb_err err = { 0 };
	bool in_force;
	const char *v[2];
	char read_out[65];

	propose(f, 2, &p);
	memcpy(read_out, p.hash, 65);
	/* behind the ceremony's back: the officer replaced by nobody */
	assert_int_equal(archive_policy_parse(p.doc, p.doc_len, &shown, &err),
	    0);
	shown.nmembers--;
	assert_int_equal(archive_policy_render(&shown, &err), 0);
	v[0] = shown.hash;
	v[1] = shown.doc;
	assert_int_equal(core_db_run(f->tu.db, "UPDATE escrow_policies SET "
	    "hash = ?1, document = ?2", v, 2, "swap", &err), 0);
	assert_int_equal(archive_client_policy_sign(&t, f->home, read_out,
	    NULL, NULL, &in_force, &err), -1);
	assert_non_null(strstr(err.msg, "check the hash read out"));
	assert_int_equal(l.posts, 0);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_policy_signatures"), 0);
	shown.nmembers++;
	archive_policy_clear(&shown);
	archive_policy_clear(&p);
}

/* The audit of one page, as the server lists it: clean, then with a share
 * moved to another agent's slot, then malformed. */
static void
test_audit_page(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"", "[]", "{}", "{\"records\": {}, \"certs\": {}}",
		"{\"records\": [], \"certs\": []}",
		"{\"records\": [{\"id\": 0}], \"certs\": {}}",
		"{\"records\": [{\"id\": 2}, {\"id\": 2}], \"certs\": {}}",
	};
	struct local l = { f, 0 };
	archive_transport t = transport(&l, 0);
	archive_verified v;
	archive_policy g;
	archive_audit a;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0, n = 0, i;
	int64_t last = 0;
	ca_request req;
	json_t *page;
	char *text;
	X509 *x;

	genesis(f, &g);
	memset(&req, 0, sizeof(req));
	req.email = "alice@example.org";
	x = archive_issue_enc(f->tu.ca, f->tu.db, &req, k, "test", &rcpt,
	    &rlen, &err);
	assert_non_null(x);
	assert_int_equal(archive_client_policy_verify(&t, f->home, g.hash, &v,
	    &err), 0);
	page = archive_escrow_list_json(f->tu.db, 0, 10, &err);
	assert_non_null(page);
	text = json_dumps(page, JSON_COMPACT);
	memset(&a, 0, sizeof(a));
	assert_int_equal(archive_audit_page(&v, &t, text, strlen(text), &a,
	    &last, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(a.records, 1);
	assert_int_equal(a.nproblems, 0);
	assert_int_equal(a.own_shares, 1);
	archive_audit_clear(&a);
	free(text);
	/* two shares trade places: each is filed under the wrong agent */
	{
		json_t *sh = json_object_get(json_array_get(json_object_get(page,
		    "records"), 0), "shares");
		json_t *c0 = json_object_get(json_array_get(sh, 0), "cms");
		json_t *c1 = json_object_get(json_array_get(sh, 1), "cms");
		char *s0 = strdup(json_string_value(c0));

		json_string_set(c0, json_string_value(c1));
		json_string_set(c1, s0);
		free(s0);
	}
	text = json_dumps(page, JSON_COMPACT);
	last = 0;
	assert_int_equal(archive_audit_page(&v, &t, text, strlen(text), &a,
	    &last, &n, &err), 0);
	assert_int_equal(a.nproblems, 2);
	assert_non_null(strstr(a.problems[0], "not the agent certificate"));
	archive_audit_clear(&a);
	free(text);
	json_decref(page);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lb_err_clear(&err);
		last = 0;
		assert_int_equal(archive_audit_page(&v, &t, bad[i],
		    strlen(bad[i]), &a, &last, &n, &err), -1);
		assert_int_equal(err.code, LB_EINVAL);
		archive_audit_clear(&a);
	}
	lb_err_clear(&err);
	assert_int_equal(archive_audit_page(&v, &t, "{}",
	    ARCHIVE_MESSAGE_MAX + 1, &a, &last, &n, &err), -1);
	archive_verified_clear(&v);
	X509_free(x);
	OPENSSL_free(rcpt);
	EVP_PKEY_free(k);
	archive_policy_clear(&g);
}

static void
test_chain_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{}", "{\"policies\": 1}",
		"{\"policies\": [{}]}",
		"{\"policies\": [{\"hash\": \"x\", \"status\": \"in_force\", "
		"\"document\": \"lockbox escrow policy v1\\n\", "
		"\"signatures\": []}]}",
	};
	archive_chain c;
	lb_err err = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lb_err_clear(&err);
		assert_int_equal(archive_chain_parse(bad[i], strlen(bad[i]), &c,
		    &err), -1);
		assert_int_equal(err.code, LB_EINVAL);
		assert_int_equal(c.n, 0);
	}
	assert_int_equal(archive_chain_parse("{}", ARCHIVE_MESSAGE_MAX + 1, &c,
	    &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_document_one_text_form),
		T(test_document_rules),
		T(test_threshold_one_is_never_proposed),
		T(test_first_policy_needs_every_member),
		T(test_outsider_signature_refused),
		T(test_signature_over_another_document_refused),
		T(test_one_successor),
		T(test_successor_needs_m_agents_and_the_added),
		T(test_escrow_goes_to_the_policy_agents),
		T(test_escrow_refused_when_an_agent_went_meanwhile),
		T(test_escrow_kept_agents_never_outlive_a_removal),
		T(test_client_refuses_a_hash_it_was_not_told),
		T(test_client_refuses_its_name_with_another_key),
		T(test_client_without_pin_signs_only_its_own),
		T(test_client_catches_a_rewritten_policy_row),
		T(test_client_catches_a_rolled_back_chain),
		T(test_client_refuses_a_differing_genesis),
		T(test_audit_page),
		cmocka_unit_test(test_chain_parse_malformed),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, tu_agent_keys_teardown);
}
