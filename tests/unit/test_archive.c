/*
 * test_archive.c - unit tests of recovery (archive/recover.c,
 * archive/recovery.c, archive/wire.c, archive/client.c): the messages written by the
 * server's code and read by the operators' (request view, package,
 * approval), malformed and oversized ones, the agent's checks against a
 * substituted one-time certificate or credential;
 * Shamir subsets of every size against the threshold; a record built here
 * exactly as escrow.c builds it, opened through archive_record_open with
 * every field altered in turn (each refused with LB_EINVAL naming the
 * serial, never yielding a key); share rewrapping; and the server's rules
 * driven directly on a scratch CA: request, approvals, refusals, package,
 * deny and expiry, with their audit rows; the operators' clients over a
 * fake transport answering as the server does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <openssl/encoder.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "archive/archive_int.h"
#include "tests/unit/testutil.h"
#include "web/web_int.h"

#define EMAIL    "alice@example.org"
#define NAGENTS  3

/* RSA-3072 keys are slow to make: one set for the whole program. */
static EVP_PKEY *agent_key[NAGENTS], *onetime_key, *officer_key;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* A certificate for key, signed by signer (issuer's name), or self-signed. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, EVP_PKEY *signer, X509 *issuer)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char sn[16];
	BIGNUM *bn;

	assert_non_null(x);
	assert_int_equal(RAND_bytes(sn, sizeof(sn)), 1);
	sn[0] = (unsigned char)((sn[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(sn, sizeof(sn), NULL);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, n), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : n), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, signer != NULL ? signer : key,
	    EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

/* An escrow record as escrow.c makes it, with its plaintext shares. */
struct record {
	EVP_PKEY *key;
	X509 *cert;
	char *serial;
	unsigned char iv[ARCHIVE_IV_LEN], tag[ARCHIVE_TAG_LEN];
	unsigned char *ct;
	size_t ct_len;
	unsigned n, m;
	unsigned char shares[8][ARCHIVE_SHARE_LEN];
};

static void
record_make(struct record *r, unsigned n, unsigned m)
{
	unsigned char dkey[ARCHIVE_DATA_KEY_LEN], *der = NULL, *aad = NULL;
	size_t der_len = 0, aad_len = 0;
	OSSL_ENCODER_CTX *e;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	lb_err err = { 0 };
	int l = 0, fl = 0;

	memset(r, 0, sizeof(*r));
	r->n = n;
	r->m = m;
	r->key = ca_keygen(CA_KEY_ECP256, &err);
	assert_non_null(r->key);
	r->cert = make_cert(r->key, EMAIL, NULL, NULL);
	r->serial = ca_cert_serial(r->cert);
	e = OSSL_ENCODER_CTX_new_for_pkey(r->key, OSSL_KEYMGMT_SELECT_KEYPAIR,
	    "DER", "PrivateKeyInfo", NULL);
	assert_int_equal(OSSL_ENCODER_to_data(e, &der, &der_len), 1);
	OSSL_ENCODER_CTX_free(e);
	assert_int_equal(archive_record_aad(r->cert, EMAIL, &aad, &aad_len,
	    &err), 0);
	assert_int_equal(RAND_bytes(dkey, sizeof(dkey)), 1);
	assert_int_equal(RAND_bytes(r->iv, sizeof(r->iv)), 1);
	r->ct = malloc(der_len);
	assert_non_null(r->ct);
	assert_int_equal(EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), dkey, r->iv,
	    NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, aad, (int)aad_len), 1);
	assert_int_equal(EVP_EncryptUpdate(c, r->ct, &l, der, (int)der_len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, r->ct + l, &fl), 1);
	r->ct_len = (size_t)(l + fl);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
	    ARCHIVE_TAG_LEN, r->tag), 1);
	assert_int_equal(archive_shamir_split(dkey, n, m, r->shares, &err), 0);
	EVP_CIPHER_CTX_free(c);
	OPENSSL_clear_free(der, der_len);
	OPENSSL_cleanse(dkey, sizeof(dkey));
	free(aad);
}

static void
record_free(struct record *r)
{
	EVP_PKEY_free(r->key);
	X509_free(r->cert);
	free(r->serial);
	free(r->ct);
	OPENSSL_cleanse(r->shares, sizeof(r->shares));
}

/* CMS of the first count shares to cert, as rewrapped shares would be. */
struct wrapped {
	unsigned char *cms[8];
	size_t len[8];
	size_t n;
};

static void
wrap_shares(struct wrapped *w, const struct record *r, const unsigned *pick,
    size_t count, X509 *to)
{
	lb_err err = { 0 };
	size_t i;

	memset(w, 0, sizeof(*w));
	for (i = 0; i < count; i++)
		assert_int_equal(archive_cms_encrypt(to, r->shares[pick[i]],
		    ARCHIVE_SHARE_LEN, &w->cms[i], &w->len[i], &err), 0);
	w->n = count;
}

static void
wrapped_free(struct wrapped *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		OPENSSL_free(w->cms[i]);
	memset(w, 0, sizeof(*w));
}

/* archive_record_open with r's fields, some replaced. */
static EVP_PKEY *
open_with(const struct record *r, X509 *cert, const char *email,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, X509 *ot, const struct wrapped *w, lb_err *err)
{
	lb_err_clear(err);
	return archive_record_open(cert, email, iv, tag, ct, r->ct_len,
	    (int)r->m, onetime_key, ot, (const unsigned char *const *)w->cms,
	    w->len, w->n, err);
}

/* The call failed with LB_EINVAL naming the record's serial. */
static void
assert_refused(EVP_PKEY *k, const lb_err *err, const char *serial,
    const char *words)
{
	assert_null(k);
	assert_int_equal(err->code, LB_EINVAL);
	assert_non_null(strstr(err->msg, serial));
	if (words != NULL && strstr(err->msg, words) == NULL)
		fail_msg("'%s' lacks '%s'", err->msg, words);
}

static int
group_setup(void **state)
{
	lb_err err = { 0 };

	(void)state;
	if (tu_keygen_n(agent_key, NAGENTS, CA_KEY_RSA3072) == -1)
		return -1;
	if ((onetime_key = ca_keygen(CA_KEY_RSA3072, &err)) == NULL ||
	    (officer_key = ca_keygen(CA_KEY_ECP256, &err)) == NULL)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	tu_keys_free(agent_key, NAGENTS);
	EVP_PKEY_free(onetime_key);
	EVP_PKEY_free(officer_key);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Shamir                                                              */

/* Combines the shares whose bit is set in mask. */
static int
combine_mask(unsigned char (*shares)[ARCHIVE_SHARE_LEN], unsigned n,
    unsigned mask, unsigned char *out, unsigned *count)
{
	unsigned char sub[8][ARCHIVE_SHARE_LEN];
	lb_err err = { 0 };
	unsigned i, k = 0;
	int rc;

	for (i = 0; i < n; i++)
		if (mask & (1u << i))
			memcpy(sub[k++], shares[i], ARCHIVE_SHARE_LEN);
	*count = k;
	rc = archive_shamir_combine(sub, k, out, &err);
	OPENSSL_cleanse(sub, sizeof(sub));
	return rc;
}

static void
test_shamir_subsets(void **state)
{
	unsigned char secret[ARCHIVE_DATA_KEY_LEN], got[ARCHIVE_DATA_KEY_LEN];
	unsigned char shares[8][ARCHIVE_SHARE_LEN];
	static const unsigned nm[][2] = { { 5, 3 }, { 4, 2 }, { 3, 3 },
	    { 3, 1 }, { 7, 4 } };
	lb_err err = { 0 };
	unsigned t, mask, k, n, m;

	(void)state;
	for (t = 0; t < sizeof(nm) / sizeof(nm[0]); t++) {
		n = nm[t][0];
		m = nm[t][1];
		assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
		assert_int_equal(archive_shamir_split(secret, n, m, shares,
		    &err), 0);
		for (k = 0; k < n; k++)
			assert_int_equal(shares[k][0], k + 1);
		/* every non-empty subset: M or more reproduce, fewer never */
		for (mask = 1; mask < (1u << n); mask++) {
			assert_int_equal(combine_mask(shares, n, mask, got, &k),
			    0);
			if (k >= m)
				assert_memory_equal(got, secret, sizeof(got));
			else
				assert_memory_not_equal(got, secret,
				    sizeof(got));
		}
	}
	/* bad parameters and shares */
	assert_int_equal(archive_shamir_split(secret, 2, 3, shares, &err), -1);
	assert_int_equal(archive_shamir_split(secret, 0, 0, shares, &err), -1);
	assert_int_equal(archive_shamir_split(secret, 3, 2, shares, &err), 0);
	memcpy(shares[1], shares[0], ARCHIVE_SHARE_LEN);
	lb_err_clear(&err);
	assert_int_equal(archive_shamir_combine(shares, 2, got, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	shares[0][0] = 0;
	assert_int_equal(archive_shamir_combine(shares, 1, got, &err), -1);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(shares, sizeof(shares));
}

/* ------------------------------------------------------------------ */
/* The client side: rewrap and open                                    */

static void
test_share_rewrap(void **state)
{
	X509 *agent = make_cert(agent_key[0], "agent", NULL, NULL);
	X509 *other = make_cert(agent_key[1], "other", NULL, NULL);
	X509 *ot = make_cert(onetime_key, "lockbox recovery request", NULL,
	    NULL);
	unsigned char share[ARCHIVE_SHARE_LEN], *cms = NULL, *re = NULL;
	unsigned char *back = NULL, junk[10] = { 0 };
	size_t cl = 0, rl = 0, bl = 0;
	lb_err err = { 0 };

	(void)state;
	assert_int_equal(RAND_bytes(share, sizeof(share)), 1);
	share[0] = 3;
	assert_int_equal(archive_cms_encrypt(agent, share, sizeof(share), &cms,
	    &cl, &err), 0);
	/* round trip: agent -> one-time key */
	assert_int_equal(archive_share_rewrap(agent_key[0], agent, cms, cl, ot,
	    &re, &rl, &err), 0);
	assert_memory_not_equal(re, cms, rl < cl ? rl : cl);
	assert_int_equal(archive_cms_decrypt(onetime_key, ot, re, rl,
	    ARCHIVE_SHARE_LEN, &back, &bl, &err), 0);
	assert_int_equal(bl, ARCHIVE_SHARE_LEN);
	assert_memory_equal(back, share, bl);
	/* the agent's own key no longer opens the rewrapped share */
	OPENSSL_clear_free(back, bl);
	back = NULL;
	assert_int_equal(archive_cms_decrypt(agent_key[0], agent, re, rl,
	    ARCHIVE_SHARE_LEN, &back, &bl, &err), -1);
	OPENSSL_free(re);
	re = NULL;
	/* another agent's key cannot rewrap it */
	lb_err_clear(&err);
	assert_int_equal(archive_share_rewrap(agent_key[1], other, cms, cl, ot,
	    &re, &rl, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_null(re);
	/* garbage, truncated CMS and a plaintext of the wrong size */
	lb_err_clear(&err);
	assert_int_equal(archive_share_rewrap(agent_key[0], agent, junk,
	    sizeof(junk), ot, &re, &rl, &err), -1);
	assert_int_equal(archive_share_rewrap(agent_key[0], agent, cms, cl - 1,
	    ot, &re, &rl, &err), -1);
	OPENSSL_free(cms);
	assert_int_equal(archive_cms_encrypt(agent, junk, sizeof(junk), &cms,
	    &cl, &err), 0);
	lb_err_clear(&err);
	assert_int_equal(archive_share_rewrap(agent_key[0], agent, cms, cl, ot,
	    &re, &rl, &err), -1);
	assert_non_null(strstr(err.msg, "malformed"));
	assert_null(re);
	OPENSSL_free(cms);
	OPENSSL_cleanse(share, sizeof(share));
	X509_free(agent);
	X509_free(other);
	X509_free(ot);
}

static void
test_record_open(void **state)
{
	static const unsigned first[] = { 0, 1, 2, 3, 4 };
	static const unsigned other[] = { 4, 2, 0 };
	struct record r;
	struct wrapped w;
	X509 *ot = make_cert(onetime_key, "lockbox recovery request", NULL,
	    NULL);
	X509 *stranger = make_cert(agent_key[2], "stranger", NULL, NULL);
	X509 *othercert;
	unsigned char bad[ARCHIVE_TAG_LEN], *ct2;
	EVP_PKEY *k, *otherkey;
	lb_err err = { 0 };
	size_t i;

	(void)state;
	record_make(&r, 5, 3);
	/* exactly M shares, any M, and all N open it to the escrowed key */
	wrap_shares(&w, &r, first, 3, ot);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_eq(k, r.key), 1);
	EVP_PKEY_free(k);
	wrapped_free(&w);
	wrap_shares(&w, &r, other, 3, ot);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_non_null(k);
	EVP_PKEY_free(k);
	wrapped_free(&w);
	wrap_shares(&w, &r, first, 5, ot);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_non_null(k);
	EVP_PKEY_free(k);

	/* every altered field is refused, naming the serial */
	memcpy(bad, r.iv, ARCHIVE_IV_LEN);
	bad[0] ^= 1;
	k = open_with(&r, r.cert, EMAIL, bad, r.tag, r.ct, ot, &w, &err);
	assert_refused(k, &err, r.serial, "failed authentication: altered in "
	    "the database");
	memcpy(bad, r.tag, ARCHIVE_TAG_LEN);
	bad[ARCHIVE_TAG_LEN - 1] ^= 0x80;
	k = open_with(&r, r.cert, EMAIL, r.iv, bad, r.ct, ot, &w, &err);
	assert_refused(k, &err, r.serial, "failed authentication");
	ct2 = malloc(r.ct_len);
	assert_non_null(ct2);
	for (i = 0; i < r.ct_len; i += r.ct_len / 7 + 1) {
		memcpy(ct2, r.ct, r.ct_len);
		ct2[i] ^= 0x01;
		k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, ct2, ot, &w,
		    &err);
		assert_refused(k, &err, r.serial, "failed authentication");
	}
	free(ct2);
	k = open_with(&r, r.cert, "mallory@example.org", r.iv, r.tag, r.ct, ot,
	    &w, &err);
	assert_refused(k, &err, r.serial, "failed authentication");
	/* the record bound to another certificate */
	otherkey = ca_keygen(CA_KEY_ECP256, &err);
	othercert = make_cert(otherkey, EMAIL, NULL, NULL);
	k = open_with(&r, othercert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_null(k);
	assert_int_equal(err.code, LB_EINVAL);
	X509_free(othercert);
	EVP_PKEY_free(otherkey);
	wrapped_free(&w);

	/* fewer than M shares */
	wrap_shares(&w, &r, first, 2, ot);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_refused(k, &err, r.serial, "needs 3 shares");
	wrapped_free(&w);
	/* shares to another key than the one-time key */
	wrap_shares(&w, &r, first, 3, stranger);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_refused(k, &err, r.serial, "0 of the 3 shares");
	wrapped_free(&w);
	/* a wrong share among more than M is outvoted */
	r.shares[0][5] ^= 0xff;
	wrap_shares(&w, &r, first, 4, ot);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_eq(k, r.key), 1);
	EVP_PKEY_free(k);
	wrapped_free(&w);
	/* ... but not among exactly M */
	wrap_shares(&w, &r, first, 3, ot);
	k = open_with(&r, r.cert, EMAIL, r.iv, r.tag, r.ct, ot, &w, &err);
	assert_refused(k, &err, r.serial, "failed authentication");
	wrapped_free(&w);

	record_free(&r);
	X509_free(ot);
	X509_free(stranger);
}

/* ------------------------------------------------------------------ */
/* The server side, on a scratch CA                                    */

struct wf {
	char *tmp;
	ca_ctx *ca;
	sqlite3 *db;
	X509 *agent[NAGENTS], *officer, *alice_officer, *alice_cert, *ot;
	char *agent_serial[NAGENTS], *officer_serial, *alice_officer_serial;
	EVP_PKEY *alice_key, *alice_officer_key;
};

static int
wf_setup(void **state)
{
	struct wf *f = calloc(1, sizeof(*f));
	ca_init_opts o;
	ca_request req;
	lb_err err = { 0 };
	char email[64], *dir;
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	int i;

	if (f == NULL || (f->tmp = tu_mkdtemp("recovery")) == NULL)
		return -1;
	*state = f;
	memset(&o, 0, sizeof(o));
	o.key_type = CA_KEY_ECP256;
	o.admin_p12_pass_file = tu_pass_file(f->tmp);
	dir = tu_path(f->tmp, "ca");
	if (ca_init(dir, &o, &err) == -1 ||
	    (f->ca = ca_open(dir, 0, &err)) == NULL ||
	    (f->db = ca_db_open(f->ca, &err)) == NULL) {
		fprintf(stderr, "wf_setup: %s\n", err.msg);
		free(dir);
		return -1;
	}
	free(dir);
	for (i = 0; i < NAGENTS; i++) {
		snprintf(email, sizeof(email), "agent%d@example.org", i);
		if ((f->agent[i] = ca_operator_add(f->ca, f->db,
		    CA_ROLE_RECOVERY_AGENT, email, email, agent_key[i], "test",
		    &err)) == NULL)
			goto fail;
		f->agent_serial[i] = ca_cert_serial(f->agent[i]);
	}
	f->alice_officer_key = ca_keygen(CA_KEY_ECP256, &err);
	if ((f->officer = ca_operator_add(f->ca, f->db,
	    CA_ROLE_RECOVERY_OFFICER, "Officer", "officer@example.org",
	    officer_key, "test", &err)) == NULL ||
	    (f->alice_officer = ca_operator_add(f->ca, f->db,
	    CA_ROLE_RECOVERY_OFFICER, "Alice", EMAIL, f->alice_officer_key,
	    "test", &err)) == NULL)
		goto fail;
	/* the policy: the three agents and both officers, all signing */
	{
		EVP_PKEY *keys[NAGENTS + 2];
		X509 *certs[NAGENTS + 2];

		for (i = 0; i < NAGENTS; i++) {
			keys[i] = agent_key[i];
			certs[i] = f->agent[i];
		}
		keys[NAGENTS] = officer_key;
		certs[NAGENTS] = f->officer;
		keys[NAGENTS + 1] = f->alice_officer_key;
		certs[NAGENTS + 1] = f->alice_officer;
		if (tu_policy_sign_as(f->db, keys, certs, NAGENTS + 2, 2,
		    true) == -1)
			return -1;
	}
	f->officer_serial = ca_cert_serial(f->officer);
	f->alice_officer_serial = ca_cert_serial(f->alice_officer);
	f->alice_key = ca_keygen(CA_KEY_ECP256, &err);
	memset(&req, 0, sizeof(req));
	req.email = EMAIL;
	if ((f->alice_cert = archive_issue_enc(f->ca, f->db, &req, f->alice_key,
	    "test", &rcpt, &rlen, &err)) == NULL)
		goto fail;
	OPENSSL_free(rcpt);
	/* the one-time certificate, signed by the officer's credential */
	f->ot = make_cert(onetime_key, "lockbox recovery request", officer_key,
	    f->officer);
	return 0;
fail:
	fprintf(stderr, "wf_setup: %s\n", err.msg);
	return -1;
}

static int
wf_teardown(void **state)
{
	struct wf *f = *state;
	int i;

	for (i = 0; i < NAGENTS; i++) {
		X509_free(f->agent[i]);
		free(f->agent_serial[i]);
	}
	X509_free(f->officer);
	X509_free(f->alice_officer);
	X509_free(f->alice_cert);
	X509_free(f->ot);
	free(f->officer_serial);
	free(f->alice_officer_serial);
	EVP_PKEY_free(f->alice_key);
	EVP_PKEY_free(f->alice_officer_key);
	core_db_close(f->db);
	ca_free(f->ca);
	tu_rmtree(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static archive_caller
officer(const struct wf *f)
{
	archive_caller c = { f->officer_serial, "officer@example.org",
	    CA_ROLE_RECOVERY_OFFICER };

	return c;
}

static archive_caller
agent(const struct wf *f, int i)
{
	static char email[NAGENTS][32];
	archive_caller c;

	snprintf(email[i], sizeof(email[i]), "agent%d@example.org", i);
	c.serial = f->agent_serial[i];
	c.email = email[i];
	c.roles = CA_ROLE_RECOVERY_AGENT;
	return c;
}

static long long
shares_of(struct wf *f, const char *id)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM recovery_shares "
	    "WHERE request_id = '%s'", id);
	return tu_sql_int(f->db, sql);
}

static long long
audits(struct wf *f, const char *action, const char *id)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE action = "
	    "'%s' AND object = '%s'", action, id);
	return tu_sql_int(f->db, sql);
}

/* The officer signs the statement of request rq, for one-time key ot,
 * and hands it in, as the officer's client does. */
static void
sign_statement(struct wf *f, X509 *ot, const archive_recovery *rq)
{
	archive_caller o = officer(f);
	archive_statement st;
	X509 *certs[8];
	unsigned char *sig = NULL;
	size_t sig_len = 0, i;
	char expires[32], *b64 = NULL, *text;
	json_t *body;
	lb_err err = { 0 };

	assert_true(rq->nrecords <= 8);
	for (i = 0; i < rq->nrecords; i++) {
		certs[i] = ca_cert_parse(rq->records[i].cert,
		    rq->records[i].cert_len, &err);
		assert_non_null(certs[i]);
	}
	core_time_fmt(rq->expires, expires, sizeof(expires));
	assert_int_equal(archive_statement_of(rq->id, EMAIL, rq->reason, ot,
	    expires, certs, rq->nrecords, &st, &err), 0);
	assert_int_equal(archive_signed_make(st.text, st.text_len, officer_key,
	    f->officer, &sig, &sig_len, &err), 0);
	assert_int_equal(core_b64_encode(sig, sig_len, 0, &b64, NULL), 0);
	body = json_pack("{s:s, s:s}", "statement", st.text, "cms", b64);
	text = json_dumps(body, JSON_COMPACT);
	if (archive_recovery_statement(f->db, &o, rq->id, text, strlen(text),
	    &err) == -1)
		fail_msg("archive_recovery_statement: %s", err.msg);
	free(text);
	json_decref(body);
	free(b64);
	OPENSSL_free(sig);
	archive_statement_clear(&st);
	for (i = 0; i < rq->nrecords; i++)
		X509_free(certs[i]);
}

static void
open_request(struct wf *f, X509 *ot, archive_recovery *rq)
{
	archive_caller o = officer(f);
	unsigned char *der = NULL;
	int len = i2d_X509(ot, &der);
	lb_err err = { 0 };

	assert_true(len > 0);
	if (archive_recovery_open(f->ca, f->db, &o, EMAIL, NULL, "lost laptop",
	    der, (size_t)len, rq, &err) == -1)
		fail_msg("archive_recovery_open: %s", err.msg);
	OPENSSL_free(der);
	sign_statement(f, ot, rq);
}

/* open_request with f's one-time certificate, keeping only the id. */
static void
open_request_id(struct wf *f, char id[ARCHIVE_REQUEST_ID_LEN + 1])
{
	archive_recovery rq;

	open_request(f, f->ot, &rq);
	memcpy(id, rq.id, ARCHIVE_REQUEST_ID_LEN + 1);
	archive_recovery_clear(&rq);
}

/* Agent i reads request id and approves with its rewrapped share. */
static int
approve(struct wf *f, int i, const char *id, bool *expired, lb_err *err)
{
	archive_caller a = agent(f, i);
	archive_recovery rq;
	archive_share_in in[4];
	unsigned char *re[4] = { NULL };
	size_t n = 0, k;
	int rc;

	if (archive_recovery_get(f->db, &a, id, &rq, expired, err) == -1)
		return -1;
	for (k = 0; k < rq.nrecords && n < 4; k++) {
		if (rq.records[k].share == NULL)
			continue;
		assert_int_equal(archive_share_rewrap(agent_key[i], f->agent[i],
		    rq.records[k].share, rq.records[k].share_len, f->ot, &re[n],
		    &in[n].cms_len, err), 0);
		in[n].record_id = rq.records[k].record_id;
		in[n].cms = re[n];
		n++;
	}
	rc = archive_recovery_approve(f->db, &a, id, in, n, expired, err);
	for (k = 0; k < n; k++)
		OPENSSL_free(re[k]);
	archive_recovery_clear(&rq);
	return rc;
}

static void
test_workflow(void **state)
{
	struct wf *f = *state;
	archive_caller o = officer(f), a0 = agent(f, 0);
	archive_caller ao = { f->alice_officer_serial, EMAIL,
	    CA_ROLE_RECOVERY_OFFICER };
	archive_recovery rq, pkg, *list = NULL;
	unsigned char *der = NULL;
	X509 *selfsigned, *cert;
	EVP_PKEY *k;
	size_t n = 0;
	bool expired = false;
	lb_err err = { 0 };
	char id[ARCHIVE_REQUEST_ID_LEN + 1];
	int len;

	/* refusals at the door, each audited */
	len = i2d_X509(f->ot, &der);
	assert_int_equal(archive_recovery_open(f->ca, f->db, &ao, EMAIL, NULL,
	    "mine", der, (size_t)len, &rq, &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_open(f->ca, f->db, &a0, EMAIL, NULL,
	    "x", der, (size_t)len, &rq, &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_open(f->ca, f->db, &o,
	    "bob@example.org", NULL, "x", der, (size_t)len, &rq, &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_open(f->ca, f->db, &o, EMAIL, NULL,
	    "", der, (size_t)len, &rq, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	OPENSSL_free(der);
	der = NULL;
	selfsigned = make_cert(onetime_key, "x", NULL, NULL);
	len = i2d_X509(selfsigned, &der);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_open(f->ca, f->db, &o, EMAIL, NULL,
	    "x", der, (size_t)len, &rq, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "not signed by your credential"));
	OPENSSL_free(der);
	X509_free(selfsigned);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'recovery.request_refused'"), 5);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_requests"), 0);

	open_request(f, f->ot, &rq);
	memcpy(id, rq.id, sizeof(id));
	assert_true(archive_request_id_valid(id));
	assert_string_equal(rq.status, "pending");
	assert_int_equal(rq.nrecords, 1);
	assert_int_equal(rq.threshold, 2);
	assert_int_equal(rq.expires - rq.created, ARCHIVE_REQUEST_TTL_DEFAULT);
	archive_recovery_clear(&rq);
	assert_int_equal(audits(f, "recovery.request", id), 1);

	/* awaiting agent 0; the officer cannot list "awaiting" */
	assert_int_equal(archive_recovery_list(f->db, &a0, true, 0, &list, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, id);
	archive_recovery_list_free(list, n);
	assert_int_equal(archive_recovery_list(f->db, &o, true, 0, &list, &n,
	    &err), -1);

	/* the officer cannot approve nor, before M approvals, fetch */
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_approve(f->db, &o, id, NULL, 0,
	    &expired, &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	lb_err_clear(&err);
	assert_int_equal(approve(f, 0, id, &expired, &err), 0);
	lb_err_clear(&err);
	assert_int_equal(approve(f, 0, id, &expired, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_false(expired);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_package(f->db, &o, id, &pkg,
	    &expired, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "1 of 2 approvals"));
	assert_int_equal(audits(f, "recovery.fetch_refused", id), 1);
	/* agent 0 has acted: no longer awaiting it */
	assert_int_equal(archive_recovery_list(f->db, &a0, true, 0, &list, &n,
	    &err), 0);
	assert_int_equal(n, 0);
	archive_recovery_list_free(list, n);

	lb_err_clear(&err);
	assert_int_equal(approve(f, 1, id, &expired, &err), 0);
	assert_int_equal(audits(f, "recovery.approve", id), 2);
	assert_int_equal(audits(f, "recovery.approve_refused", id), 2);
	/* another officer is not the requester */
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_package(f->db, &ao, id, &pkg,
	    &expired, &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	assert_int_equal(archive_recovery_package(f->db, &o, id, &pkg,
	    &expired, &err), 0);
	assert_string_equal(pkg.status, "fetched");
	assert_int_equal(pkg.nrecords, 1);
	assert_int_equal(pkg.records[0].nshares, 2);
	cert = ca_cert_parse(pkg.records[0].cert, pkg.records[0].cert_len,
	    &err);
	assert_non_null(cert);
	k = archive_record_open(cert, pkg.records[0].email, pkg.records[0].iv,
	    pkg.records[0].tag, pkg.records[0].ciphertext,
	    pkg.records[0].ciphertext_len, pkg.records[0].threshold,
	    onetime_key, f->ot,
	    (const unsigned char *const *)pkg.records[0].shares,
	    pkg.records[0].share_lens, pkg.records[0].nshares, &err);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_eq(k, f->alice_key), 1);
	EVP_PKEY_free(k);
	X509_free(cert);
	archive_recovery_clear(&pkg);
	assert_int_equal(audits(f, "recovery.fetch", id), 1);
	/* re-fetch until expiry; deny no longer applies */
	assert_int_equal(archive_recovery_package(f->db, &o, id, &pkg,
	    &expired, &err), 0);
	archive_recovery_clear(&pkg);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_deny(f->db, &a0, id, "late",
	    &expired, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);

	/* collected: only by the requester; then the shares are gone and
	 * nothing more is released */
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_collect(f->db, &ao, id, &expired,
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	assert_int_equal(shares_of(f, id), 2);
	assert_int_equal(audits(f, "recovery.collect_refused", id), 1);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_collect(f->db, &o, id, &expired,
	    &err), 0);
	assert_int_equal(shares_of(f, id), 0);
	assert_int_equal(audits(f, "recovery.collect", id), 1);
	assert_int_equal(archive_recovery_get(f->db, &o, id, &rq, &expired,
	    &err), 0);
	assert_string_equal(rq.status, "collected");
	archive_recovery_clear(&rq);
	expired = false;
	assert_int_equal(archive_recovery_package(f->db, &o, id, &pkg,
	    &expired, &err), -1);
	assert_true(expired);
	assert_non_null(strstr(err.msg, "collected"));
	lb_err_clear(&err);
	expired = false;
	assert_int_equal(archive_recovery_collect(f->db, &o, id, &expired,
	    &err), -1);
	assert_true(expired);
	assert_int_equal(audits(f, "recovery.collect", id), 1);

	/* a denied request releases nothing */
	open_request_id(f, id);
	assert_int_equal(approve(f, 0, id, &expired, &err), 0);
	assert_int_equal(archive_recovery_deny(f->db, &a0, id, "no ticket",
	    &expired, &err), 0);
	lb_err_clear(&err);
	assert_int_equal(approve(f, 1, id, &expired, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_package(f->db, &o, id, &pkg,
	    &expired, &err), -1);
	assert_non_null(strstr(err.msg, "denied by agent0@example.org"));
	assert_int_equal(audits(f, "recovery.deny", id), 1);
	/* agent 0's shares went with the denial */
	assert_int_equal(shares_of(f, id), 0);

	/* an expired request releases nothing and is marked once */
	open_request_id(f, id);
	assert_int_equal(approve(f, 0, id, &expired, &err), 0);
	assert_int_equal(approve(f, 1, id, &expired, &err), 0);
	assert_int_equal(sqlite3_exec(f->db, "UPDATE recovery_requests SET "
	    "expires = 1", NULL, NULL, NULL), SQLITE_OK);
	lb_err_clear(&err);
	assert_int_equal(archive_recovery_package(f->db, &o, id, &pkg,
	    &expired, &err), -1);
	assert_true(expired);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_int_equal(audits(f, "recovery.expire", id), 1);
	assert_int_equal(shares_of(f, id), 0);
	lb_err_clear(&err);
	expired = false;
	assert_int_equal(approve(f, 2, id, &expired, &err), -1);
	assert_true(expired);
	assert_int_equal(audits(f, "recovery.expire", id), 1);
	/* listing touches every request: the collected one stays
	 * collected, the denied one denied */
	assert_int_equal(archive_recovery_list(f->db, &o, false, 0, &list, &n,
	    &err), 0);
	assert_int_equal(n, 3);
	archive_recovery_list_free(list, n);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_requests WHERE status = 'expired'"), 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'recovery.expire'"), 1);

	{
		int64_t rows = 0, bad = 0;
		char why[128];

		assert_int_equal(core_audit_verify(f->db, &rows, &bad, why,
		    sizeof(why), &err), 0);
	}
}

/* ------------------------------------------------------------------ */
/* The messages, both ends (wire.c), and the operators' side           */

/* j as text, then read back by a reader of wire.c. */
static char *
dump(json_t *j)
{
	char *s;

	assert_non_null(j);
	assert_non_null(s = json_dumps(j, JSON_COMPACT));
	json_decref(j);
	return s;
}

/* Agent i's view of request id, as its client reads it off the wire. */
static void
agent_view(struct wf *f, int i, const char *id, archive_view *v)
{
	archive_caller a = agent(f, i);
	archive_recovery rq;
	lb_err err = { 0 };
	char *text;

	assert_int_equal(archive_recovery_get(f->db, &a, id, &rq, NULL, &err),
	    0);
	text = dump(archive_request_json(&rq, true));
	archive_recovery_clear(&rq);
	assert_int_equal(archive_view_parse(text, strlen(text), v, &err), 0);
	free(text);
}

/* Agent i approves through the codecs: view, check, rewrap, body. */
static void
approve_over_the_wire(struct wf *f, int i, const char *id,
    const char *ca_file)
{
	archive_caller a = agent(f, i);
	archive_approval ap, back;
	archive_view v;
	lb_err err = { 0 };
	bool expired = false;
	char *text;

	agent_view(f, i, id, &v);
	assert_string_equal(v.id, id);
	assert_string_equal(v.status, "pending");
	assert_string_equal(v.requester_email, "officer@example.org");
	assert_int_equal(v.nshares, 1);
	assert_int_equal(archive_view_check(&v, ca_file, &err), 0);
	assert_int_equal(archive_view_rewrap(&v, agent_key[i], f->agent[i],
	    &ap, &err), 0);
	text = dump(archive_approval_json(&ap));
	assert_int_equal(archive_approval_parse((const unsigned char *)text,
	    strlen(text), &back, &err), 0);
	free(text);
	assert_int_equal(back.nshares, ap.nshares);
	assert_memory_equal(back.shares[0].cms, ap.shares[0].cms,
	    ap.shares[0].cms_len);
	if (archive_recovery_approve(f->db, &a, id, back.shares,
	    back.nshares, &expired, &err) == -1)
		fail_msg("approve: %s", err.msg);
	archive_approval_clear(&back);
	archive_approval_clear(&ap);
	archive_view_clear(&v);
}

static void
test_codecs_end_to_end(void **state)
{
	struct wf *f = *state;
	archive_caller o = officer(f);
	archive_recovery rq;
	archive_package pkg;
	archive_opened keys;
	bool expired = false;
	lb_err err = { 0 };
	char id[ARCHIVE_REQUEST_ID_LEN + 1], *text, *ca_file;

	ca_file = tu_path(ca_get0_dir(f->ca), "ca.pem");
	open_request_id(f, id);
	approve_over_the_wire(f, 0, id, ca_file);
	approve_over_the_wire(f, 1, id, ca_file);
	assert_int_equal(archive_recovery_package(f->db, &o, id, &rq,
	    &expired, &err), 0);
	text = dump(archive_package_json(&rq, ca_get0_chain(f->ca)));
	archive_recovery_clear(&rq);
	assert_int_equal(archive_package_parse(text, strlen(text), &pkg,
	    &err), 0);
	free(text);
	assert_string_equal(pkg.email, EMAIL);
	assert_int_equal(pkg.nrecords, 1);
	assert_int_equal(pkg.records[0].nshares, 2);
	assert_int_equal(sk_X509_num(pkg.chain), 1);
	/* a serial the package does not hold */
	assert_int_equal(archive_package_open(&pkg, "0123", onetime_key,
	    f->ot, &keys, &err), -1);
	assert_non_null(strstr(err.msg, "covers no key with serial 0123"));
	assert_int_equal(keys.n, 0);
	lb_err_clear(&err);
	assert_int_equal(archive_package_open(&pkg, NULL, onetime_key, f->ot,
	    &keys, &err), 0);
	assert_int_equal(keys.n, 1);
	assert_int_equal(EVP_PKEY_eq(keys.keys[0], f->alice_key), 1);
	assert_int_equal(X509_cmp(keys.certs[0], f->alice_cert), 0);
	assert_non_null(strstr(keys.names[0], EMAIL));
	archive_opened_clear(&keys);
	/* the wrong one-time key opens nothing */
	lb_err_clear(&err);
	assert_int_equal(archive_package_open(&pkg, NULL, officer_key, f->ot,
	    &keys, &err), -1);
	assert_int_equal(keys.n, 0);
	archive_package_clear(&pkg);
	free(ca_file);
}

/* The server (or whoever writes the view it sends) swaps the one-time
 * certificate, or the requester's credential, for one of its own: the
 * agent's client refuses before any share is decrypted. */
static void
test_agent_refuses_a_substituted_request(void **state)
{
	struct wf *f = *state;
	archive_view v;
	EVP_PKEY *mallory = ca_keygen(CA_KEY_RSA3072, NULL);
	X509 *fake;
	lb_err err = { 0 };
	char id[ARCHIVE_REQUEST_ID_LEN + 1], *ca_file;

	assert_non_null(mallory);
	ca_file = tu_path(ca_get0_dir(f->ca), "ca.pem");
	open_request_id(f, id);

	/* a one-time certificate of another key, not the officer's */
	agent_view(f, 0, id, &v);
	X509_free(v.request_cert);
	v.request_cert = make_cert(mallory, "lockbox recovery request",
	    mallory, NULL);
	assert_int_equal(archive_view_check(&v, ca_file, &err), -1);
	assert_non_null(strstr(err.msg, "refusing to release a share"));
	archive_view_clear(&v);

	/* a one-time certificate "signed by the officer" under a name the
	 * server made: a credential that does not chain to the CA */
	agent_view(f, 0, id, &v);
	fake = make_cert(mallory, "Officer", NULL, NULL);
	X509_free(v.requester_cert);
	v.requester_cert = fake;
	X509_free(v.request_cert);
	v.request_cert = make_cert(onetime_key, "lockbox recovery request",
	    mallory, fake);
	lb_err_clear(&err);
	assert_int_equal(archive_view_check(&v, ca_file, &err), -1);
	assert_non_null(strstr(err.msg, "does not verify against"));
	archive_view_clear(&v);

	/* another operator's real credential, claimed for the officer */
	agent_view(f, 0, id, &v);
	X509_free(v.requester_cert);
	v.requester_cert = X509_dup(f->alice_officer);
	lb_err_clear(&err);
	assert_int_equal(archive_view_check(&v, ca_file, &err), -1);
	assert_non_null(strstr(err.msg, "is not officer@example.org's"));
	archive_view_clear(&v);

	/* a view without its certificates */
	agent_view(f, 0, id, &v);
	X509_free(v.request_cert);
	v.request_cert = NULL;
	lb_err_clear(&err);
	assert_int_equal(archive_view_check(&v, ca_file, &err), -1);
	archive_view_clear(&v);
	/* nothing was approved */
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_approvals"), 0);
	EVP_PKEY_free(mallory);
	free(ca_file);
}

static void
test_view_and_package_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "nonsense", "[]", "{}", "{\"id\": \"x\"}",
		"{\"id\": \"0123456789abcdef0123456789abcdef\"}",
		"{\"id\": \"0123456789abcdef0123456789abcdef\", \"status\": "
		    "\"pending\", \"shares\": [{\"record_id\": 0, \"serial\": "
		    "\"AB\", \"cms\": \"AA==\"}]}",
		"{\"id\": \"0123456789abcdef0123456789abcdef\", \"status\": "
		    "\"pending\", \"shares\": [{\"record_id\": 1, \"serial\": "
		    "\"AB\", \"cms\": \"not base64\"}]}",
		"{\"id\": \"0123456789abcdef0123456789abcdef\", \"status\": "
		    "\"pending\", \"shares\": {}}",
	};
	archive_view v;
	archive_package p;
	lb_err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lb_err_clear(&err);
		assert_int_equal(archive_view_parse(bad[i], strlen(bad[i]), &v,
		    &err), -1);
		assert_null(v.shares);
		assert_null(v.status);
		lb_err_clear(&err);
		assert_int_equal(archive_package_parse(bad[i], strlen(bad[i]),
		    &p, &err), -1);
		assert_null(p.records);
		assert_null(p.chain);
	}
	/* a package without its CA chain */
	lb_err_clear(&err);
	{
		static const char nochain[] = "{\"id\": \"0123456789abcdef"
		    "0123456789abcdef\", \"records\": []}";

		assert_int_equal(archive_package_parse(nochain,
		    strlen(nochain), &p, &err), -1);
	}
	assert_non_null(strstr(err.msg, "no CA chain"));
	/* oversized */
	lb_err_clear(&err);
	assert_int_equal(archive_view_parse("{}", ARCHIVE_MESSAGE_MAX + 1, &v,
	    &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	assert_int_equal(archive_package_parse("{}", ARCHIVE_MESSAGE_MAX + 1,
	    &p, &err), -1);
}

/* ------------------------------------------------------------------ */
/* The approval body                                                   */

static int
parse_str(const char *s, archive_approval *a, lb_err *err)
{
	lb_err_clear(err);
	return archive_approval_parse((const unsigned char *)s, strlen(s),
	    a, err);
}

static void
test_approve_parse(void **state)
{
	archive_approval a;
	lb_err err;

	(void)state;
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": 7, \"cms\": "
	    "\"AAECAw==\"}, {\"cms\": \"/w==\", \"record_id\": 9}]}", &a, &err),
	    0);
	assert_int_equal(a.nshares, 2);
	assert_int_equal(a.shares[0].record_id, 7);
	assert_int_equal(a.shares[0].cms_len, 4);
	assert_memory_equal(a.shares[0].cms, "\x00\x01\x02\x03", 4);
	assert_int_equal(a.shares[1].record_id, 9);
	assert_int_equal(a.shares[1].cms_len, 1);
	archive_approval_clear(&a);
	assert_int_equal(parse_str("{\"shares\": []}", &a, &err), 0);
	assert_int_equal(a.nshares, 0);
	archive_approval_clear(&a);

	assert_int_equal(parse_str("", &a, &err), -1);
	assert_int_equal(parse_str("[]", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [], \"x\": 1}", &a, &err), -1);
	assert_non_null(strstr(err.msg, "unknown field 'x'"));
	assert_int_equal(parse_str("{\"shares\": [], \"shares\": []}", &a,
	    &err), -1);
	assert_int_equal(parse_str("{\"shares\": {}}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [1]}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": 0, \"cms\": "
	    "\"AA==\"}]}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": \"1\", "
	    "\"cms\": \"AA==\"}]}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": 1, \"cms\": "
	    "\"A\"}]}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": 1, \"cms\": "
	    "\"%%%%\"}]}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": 1, \"cms\": "
	    "\"AA==\", \"agent\": 2}]}", &a, &err), -1);
	assert_int_equal(parse_str("{\"shares\": [{\"record_id\": 1, \"cms\": "
	    "\"AA==\"}, 5]}", &a, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_null(a.shares);
}

/* ------------------------------------------------------------------ */
/* The operators' clients (archive/client.c) over a fake transport     */

/*
 * The server's side of the four routes the clients call, as
 * web/api_recovery.c answers them, for the caller who; substitute, when
 * set, replaces the one-time certificate of the request view the agent
 * reads (a compromised server).
 */
struct fake {
	struct wf *f;
	archive_caller who;
	X509 *substitute;
	int posts;
};

static int
fake_reply(json_t *j, core_http_reply *r, lb_err *err)
{
	char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (text == NULL)
		return lb_err_set(err, LB_EINTERNAL, "no answer");
	r->status = 200;
	r->len = strlen(text);
	r->cap = r->len + 1;
	r->body = OPENSSL_malloc(r->cap);
	assert_non_null(r->body);
	memcpy(r->body, text, r->cap);
	free(text);
	return 0;
}

static int
fake_api(void *h, const char *method, const char *path, json_t *body,
    core_http_reply *r, lb_err *err)
{
	struct fake *fk = h;
	struct wf *f = fk->f;
	archive_recovery rq;
	archive_opening op;
	archive_approval ap;
	bool expired = false;
	char id[ARCHIVE_REQUEST_ID_LEN + 1], *text = NULL;
	const char *rest;
	json_t *j = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&rq, 0, sizeof(rq));
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		assert_non_null(text);
		fk->posts++;
	}
	if (strncmp(path, "/api/v1/escrow/", 15) == 0) {
		archive_policy_local l = { f->db, "test" };

		free(text);
		return archive_policy_local_api(&l, method, path, body, r, err);
	}
	if (strcmp(path, ARCHIVE_API) == 0) {
		assert_string_equal(method, "POST");
		assert_int_equal(archive_opening_parse((unsigned char *)text,
		    strlen(text), &op, err), 0);
		rc = archive_recovery_open(f->ca, f->db, &fk->who, op.email,
		    op.serial, op.reason, (const unsigned char *)
		    op.request_cert, strlen(op.request_cert), &rq, err);
		archive_opening_clear(&op);
		if (rc == 0)
			j = archive_request_json(&rq, true);
		goto out;
	}
	assert_int_equal(strncmp(path, ARCHIVE_API "/", strlen(ARCHIVE_API)
	    + 1), 0);
	memcpy(id, path + strlen(ARCHIVE_API) + 1, ARCHIVE_REQUEST_ID_LEN);
	id[ARCHIVE_REQUEST_ID_LEN] = '\0';
	rest = path + strlen(ARCHIVE_API) + 1 + ARCHIVE_REQUEST_ID_LEN;
	if (strcmp(rest, "/package") == 0) {
		rc = archive_recovery_package(f->db, &fk->who, id, &rq,
		    &expired, err);
		if (rc == 0)
			j = archive_package_json(&rq, ca_get0_chain(f->ca));
		goto out;
	}
	if (strcmp(rest, "/statement") == 0) {
		rc = archive_recovery_statement(f->db, &fk->who, id, text,
		    strlen(text), err);
		if (rc == -1)
			goto out;
	} else if (strcmp(rest, "/approve") == 0) {
		assert_int_equal(archive_approval_parse((unsigned char *)text,
		    strlen(text), &ap, err), 0);
		rc = archive_recovery_approve(f->db, &fk->who, id, ap.shares,
		    ap.nshares, &expired, err);
		archive_approval_clear(&ap);
		if (rc == -1)
			goto out;
	} else {
		assert_string_equal(rest, "");
	}
	rc = archive_recovery_get(f->db, &fk->who, id, &rq, NULL, err);
	if (rc == 0)
		j = archive_request_json(&rq, body == NULL);
	if (rc == 0 && body == NULL && fk->substitute != NULL) {
		unsigned char *der = NULL;
		int len = i2d_X509(fk->substitute, &der);

		assert_true(len > 0);
		assert_int_equal(ca_json_put(j, "request_cert",
		    ca_json_pem(der, (size_t)len)), 0);
		OPENSSL_free(der);
	}
out:
	archive_recovery_clear(&rq);
	free(text);
	return rc == -1 ? -1 : fake_reply(j, r, err);
}

struct reviewed {
	int shown, asked;
	bool answer;
};

static void
review_show(void *arg, const archive_view *v, const archive_checked *c,
    const archive_policy *p)
{
	struct reviewed *rv = arg;

	/* what is shown is the officer's statement, checked */
	assert_string_equal(v->requester_email, "officer@example.org");
	assert_non_null(c);
	assert_non_null(p);
	assert_string_equal(c->officer->email, "officer@example.org");
	assert_string_equal(c->s.owner, EMAIL);
	assert_string_equal(c->s.reason, "lost laptop");
	rv->shown++;
}

static bool
review_confirm(void *arg, const archive_view *v, const char *fp)
{
	struct reviewed *rv = arg;

	assert_string_equal(v->reason, "lost laptop");
	assert_int_equal(strlen(fp), ARCHIVE_FINGERPRINT_LEN - 1);
	rv->asked++;
	return rv->answer;
}

/* Agent i approves through archive_client_approve; its return. */
static int
client_approve(struct wf *f, int i, const char *id, X509 *substitute,
    struct reviewed *seen, archive_client_approved *res, lb_err *err)
{
	struct fake fk = { f, agent(f, i), substitute, 0 };
	archive_transport t = { &fk, fake_api, agent_key[i], f->agent[i] };
	archive_review rv = { seen, review_show, review_confirm };
	char *ca_file = tu_path(ca_get0_dir(f->ca), "ca.pem");
	int rc;

	char name[16], *home, *trust;

	snprintf(name, sizeof(name), "home%d", i);
	home = tu_path(f->tmp, name);
	(void)mkdir(home, 0700);
	/* the policy the agent signed, as its pin would name it */
	trust = tu_sql_text(f->db, "SELECT hash FROM escrow_policies WHERE "
	    "status = 'in_force'");
	lb_err_clear(err);
	rc = archive_client_approve(&t, id, ca_file, home, trust, &rv, res,
	    err);
	free(trust);
	free(ca_file);
	free(home);
	return rc;
}

/* Officer's request, agents' approvals, officer's fetch: the whole
 * workflow through the clients, each a refusal where it must be one. */
static void
test_clients_end_to_end(void **state)
{
	struct wf *f = *state;
	struct fake fk = { f, officer(f), NULL, 0 };
	archive_transport t = { &fk, fake_api, officer_key, f->officer };
	archive_client_opened op;
	archive_client_approved res;
	archive_package pkg;
	archive_opened keys;
	struct reviewed seen = { 0, 0, true };
	lb_err err = { 0 };
	char *dir = tu_path(f->tmp, "onetime");
	struct stat st;

	/* a directory that is not there keeps no key: nothing is opened */
	assert_int_equal(archive_client_request(&t, dir, EMAIL, NULL,
	    "lost laptop", &op, &err), -1);
	assert_int_equal(fk.posts, 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	lb_err_clear(&err);
	assert_int_equal(archive_client_request(&t, dir, EMAIL, NULL,
	    "lost laptop", &op, &err), 0);
	assert_true(archive_request_id_valid(op.id));
	assert_int_equal(stat(op.key_path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	assert_int_equal(strlen(op.fingerprint), ARCHIVE_FINGERPRINT_LEN - 1);
	assert_string_equal(json_string_value(json_object_get(op.reply,
	    "status")), "pending");

	/* an agent who says no hands in nothing */
	seen.answer = false;
	assert_int_equal(client_approve(f, 2, op.id, NULL, &seen, &res,
	    &err), -1);
	assert_non_null(strstr(err.msg, "not approved"));
	assert_int_equal(seen.shown, 1);
	assert_int_equal(seen.asked, 1);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_approvals"), 0);

	/* fetching before the approvals opens nothing and writes nothing */
	lb_err_clear(&err);
	assert_int_equal(archive_client_fetch(&t, dir, op.id, NULL, &pkg,
	    &keys, &err), -1);
	assert_int_equal(keys.n, 0);

	seen.answer = true;
	assert_int_equal(client_approve(f, 0, op.id, NULL, &seen, &res,
	    &err), 0);
	assert_int_equal(res.nshares, 1);
	assert_int_equal(res.approvals, 1);
	assert_string_equal(res.status, "pending");
	assert_int_equal(client_approve(f, 1, op.id, NULL, &seen, &res,
	    &err), 0);
	assert_string_equal(res.status, "approved");

	lb_err_clear(&err);
	assert_int_equal(archive_client_fetch(&t, dir, op.id, NULL, &pkg,
	    &keys, &err), 0);
	assert_int_equal(keys.n, 1);
	assert_int_equal(EVP_PKEY_eq(keys.keys[0], f->alice_key), 1);
	assert_int_equal(X509_cmp(keys.certs[0], f->alice_cert), 0);
	archive_opened_clear(&keys);
	archive_package_clear(&pkg);

	/* another directory holds no one-time key for the request */
	free(dir);
	dir = tu_path(f->tmp, "ca");
	lb_err_clear(&err);
	assert_int_equal(archive_client_fetch(&t, dir, op.id, NULL, &pkg,
	    &keys, &err), -1);
	assert_int_equal(keys.n, 0);
	archive_client_opened_clear(&op);
	free(dir);
}

/* A compromised server hands the agent's client a one-time certificate
 * of its own: the client refuses before it asks, and posts nothing. */
static void
test_client_agent_refuses_a_substituted_certificate(void **state)
{
	struct wf *f = *state;
	archive_client_approved res;
	struct reviewed seen = { 0, 0, true };
	EVP_PKEY *mallory = ca_keygen(CA_KEY_ECP256, NULL);
	X509 *fake;
	lb_err err = { 0 };
	char id[ARCHIVE_REQUEST_ID_LEN + 1];

	assert_non_null(mallory);
	open_request_id(f, id);
	fake = make_cert(mallory, "lockbox recovery request", mallory, NULL);
	assert_int_equal(client_approve(f, 0, id, fake, &seen, &res, &err),
	    -1);
	assert_non_null(strstr(err.msg, "refusing to release a share"));
	/* refused before anything is shown: the statement names another key */
	assert_int_equal(seen.shown, 0);
	assert_int_equal(seen.asked, 0);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_approvals"), 0);
	X509_free(fake);
	EVP_PKEY_free(mallory);
}

/*
 * Attack 1: whoever holds the state directory mints a credential with the
 * officer's e-mail and signs the request's statement with it: the agent's
 * client knows the officer by the key its pinned policy names.
 */
static void
test_client_agent_refuses_a_statement_by_another_key(void **state)
{
	struct wf *f = *state;
	archive_recovery rq;
	archive_client_approved res;
	archive_statement st;
	struct reviewed seen = { 0, 0, true };
	EVP_PKEY *mallory = ca_keygen(CA_KEY_ECP256, NULL);
	X509 *minted;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	sqlite3_stmt *up = NULL;
	lb_err err = { 0 };
	char id[ARCHIVE_REQUEST_ID_LEN + 1];

	assert_non_null(mallory);
	open_request_id(f, id);
	assert_int_equal(archive_recovery_get(f->db, &(archive_caller){
	    f->officer_serial, "officer@example.org",
	    CA_ROLE_RECOVERY_OFFICER }, id, &rq, NULL, &err), 0);
	assert_int_equal(archive_statement_parse(rq.statement,
	    strlen(rq.statement), &st, &err), 0);
	minted = make_cert(mallory, "Officer", mallory, NULL);
	assert_int_equal(archive_signed_make(st.text, st.text_len, mallory,
	    minted, &sig, &sig_len, &err), 0);
	assert_int_equal(sqlite3_prepare_v2(f->db, "UPDATE recovery_requests "
	    "SET statement_cms = ? WHERE id = ?", -1, &up, NULL), SQLITE_OK);
	sqlite3_bind_blob(up, 1, sig, (int)sig_len, SQLITE_STATIC);
	sqlite3_bind_text(up, 2, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(up), SQLITE_DONE);
	sqlite3_finalize(up);
	assert_int_equal(client_approve(f, 0, id, NULL, &seen, &res, &err),
	    -1);
	assert_non_null(strstr(err.msg, "not signed by a recovery officer of "
	    "escrow policy v1"));
	assert_int_equal(seen.asked, 0);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_approvals"), 0);
	OPENSSL_free(sig);
	X509_free(minted);
	EVP_PKEY_free(mallory);
	archive_statement_clear(&st);
	archive_recovery_clear(&rq);
}

/*
 * Attack 3: the server shows the agent a request for alice and hands it
 * its share of bob's key under alice's serial: the share's plaintext
 * names bob's record, and the agent's client refuses.
 */
static void
test_client_agent_refuses_a_share_of_another_record(void **state)
{
	struct wf *f = *state;
	archive_client_approved res;
	struct reviewed seen = { 0, 0, true };
	EVP_PKEY *bk = ca_keygen(CA_KEY_ECP256, NULL);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	ca_request req;
	lb_err err = { 0 };
	char sql[512], id[ARCHIVE_REQUEST_ID_LEN + 1], *bob, *alice;
	X509 *bc;

	memset(&req, 0, sizeof(req));
	req.email = "bob@example.org";
	bc = archive_issue_enc(f->ca, f->db, &req, bk, "test", &rcpt, &rlen,
	    &err);
	assert_non_null(bc);
	bob = ca_cert_serial(bc);
	alice = ca_cert_serial(f->alice_cert);
	open_request_id(f, id);
	snprintf(sql, sizeof(sql), "UPDATE escrow_shares SET cms = (SELECT "
	    "s.cms FROM escrow_shares s JOIN escrow_records r ON r.id = "
	    "s.record_id WHERE r.serial = '%s' AND s.agent_serial = '%s') "
	    "WHERE agent_serial = '%s' AND record_id = (SELECT id FROM "
	    "escrow_records WHERE serial = '%s')", bob, f->agent_serial[0],
	    f->agent_serial[0], alice);
	assert_int_equal(sqlite3_exec(f->db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(client_approve(f, 0, id, NULL, &seen, &res, &err),
	    -1);
	assert_non_null(strstr(err.msg, "belongs to another record"));
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_shares"), 0);
	free(bob);
	free(alice);
	X509_free(bc);
	OPENSSL_free(rcpt);
	EVP_PKEY_free(bk);
}

/*
 * Attack 3, the words: whoever holds the database rewrites the reason of
 * a signed request ("lost laptop" becomes "court order, approve now") to
 * sway the agents.  The reason is in the officer's statement: the agent's
 * client sees that the server's differs and releases nothing.
 */
static void
test_client_agent_refuses_a_reason_the_officer_did_not_sign(void **state)
{
	struct wf *f = *state;
	archive_client_approved res;
	struct reviewed seen = { 0, 0, true };
	lb_err err = { 0 };
	char sql[256], id[ARCHIVE_REQUEST_ID_LEN + 1];

	open_request_id(f, id);
	snprintf(sql, sizeof(sql), "UPDATE recovery_requests SET reason = "
	    "'court order, approve now' WHERE id = '%s'", id);
	assert_int_equal(sqlite3_exec(f->db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(client_approve(f, 0, id, NULL, &seen, &res, &err),
	    -1);
	assert_non_null(strstr(err.msg, "another reason for this request "
	    "than its officer signed"));
	assert_int_equal(seen.shown, 0);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_approvals"), 0);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_shares"), 0);
}

/*
 * The admin removes agents one by one (or revokes their credentials) to
 * make alice's key unrecoverable: the first removal leaves 2 of 3, at the
 * threshold; the second is refused, by removal and by every revocation
 * reason but keyCompromise, and changes nothing.  keyCompromise goes
 * through, warning with the record to reshare.
 */
static void
test_agent_going_never_strands_an_escrow(void **state)
{
	struct wf *f = *state;
	static const int reasons[] = { 3, 4, 5, 9 };
	archive_leave_warning w = { "" };
	archive_status st;
	char *alice = ca_cert_serial(f->alice_cert);
	lb_err err = { 0 };
	int audit0, i;

	assert_int_equal(ca_operator_remove_guarded(f->db, f->agent_serial[0],
	    "test", archive_agent_leave, NULL, &err), 0);
	audit0 = tu_sql_int(f->db, "SELECT count(*) FROM audit");
	lb_err_clear(&err);
	assert_int_equal(ca_operator_remove_guarded(f->db, f->agent_serial[1],
	    "test", archive_agent_leave, NULL, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, alice));
	assert_non_null(strstr(err.msg, "1 of 2"));
	for (i = 0; i < 4; i++) {
		lb_err_clear(&err);
		assert_int_equal(ca_revoke_guarded(f->db, f->agent_serial[1],
		    reasons[i], 0, "test", archive_agent_leave, &w, &err), -1);
		assert_int_equal(err.code, LB_ECONFLICT);
	}
	/* nothing changed: still an active agent, no audit row */
	assert_true((ca_operator_roles(f->db, f->agent_serial[1], NULL, &err) &
	    CA_ROLE_RECOVERY_AGENT) != 0);
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM audit"),
	    audit0);
	/* revoking anything else is not held up */
	lb_err_clear(&err);
	assert_int_equal(ca_revoke_guarded(f->db, alice, 4, 0, "test",
	    archive_agent_leave, &w, &err), 0);
	assert_string_equal(w.text, "");
	/* a compromised credential always goes, with the warning */
	assert_int_equal(ca_revoke_guarded(f->db, f->agent_serial[1], 1, 0,
	    "test", archive_agent_leave, &w, &err), 0);
	assert_non_null(strstr(w.text, alice));
	assert_non_null(strstr(w.text, "lockbox escrow reshare"));
	assert_int_equal(ca_operator_roles(f->db, f->agent_serial[1], NULL,
	    &err) & CA_ROLE_RECOVERY_AGENT, 0);
	/* and escrow status says so */
	assert_int_equal(archive_escrow_status(f->db, &st, &err), 0);
	assert_int_equal(st.npolicies, 1);
	assert_int_equal(st.policies[0].records, 1);
	assert_int_equal(st.policies[0].recoverable, 0);
	assert_int_equal(st.policies[0].nlost, 1);
	assert_string_equal(st.policies[0].lost[0], alice);
	archive_status_clear(&st);
	free(alice);
}

/* An agent's client releases to a one-time key once, whatever request
 * the key comes with. */
static void
test_client_agent_releases_to_a_one_time_key_once(void **state)
{
	struct wf *f = *state;
	archive_client_approved res;
	struct reviewed seen = { 0, 0, true };
	lb_err err = { 0 };
	char id[ARCHIVE_REQUEST_ID_LEN + 1];

	open_request_id(f, id);
	assert_int_equal(client_approve(f, 0, id, NULL, &seen, &res, &err),
	    0);
	/* the same one-time key again, with a new request */
	open_request_id(f, id);
	assert_int_equal(client_approve(f, 0, id, NULL, &seen, &res, &err),
	    -1);
	assert_non_null(strstr(err.msg, "released shares to this request's "
	    "one-time key before"));
	assert_int_equal(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "recovery_approvals"), 1);
}

/* A statement is read in its one text form only; anything else, or more
 * than 64 KiB, is refused. */
static void
test_statement_parse_bad(void **state)
{
	static const char good[] = "lockbox recovery statement v2\n"
	    "request: 0123456789abcdef0123456789abcdef\n"
	    "owner: alice@example.org\n"
	    "reason: laptop lost\n"
	    "one-time-key: "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	    "expires: 2026-12-14T15:00:00Z\n"
	    "record: 4CCB4DAF "
	    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n";
	static const char *const bad[] = {
		"", "lockbox recovery statement v2\n",
		/* the first version, without the reason */
		"lockbox recovery statement v1\nrequest: "
		"0123456789abcdef0123456789abcdef\nowner: a@example.org\n"
		"one-time-key: "
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		"\nexpires: 2026-12-14T15:00:00Z\nrecord: 4CCB4DAF "
		"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
		"\n",
		/* a reason with a control character */
		"lockbox recovery statement v2\nrequest: "
		"0123456789abcdef0123456789abcdef\nowner: a@example.org\n"
		"reason: lost\tlaptop\none-time-key: "
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		"\nexpires: 2026-12-14T15:00:00Z\nrecord: 4CCB4DAF "
		"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
		"\n",
		/* no record */
		"lockbox recovery statement v2\nrequest: "
		"0123456789abcdef0123456789abcdef\nowner: a@example.org\n"
		"reason: lost laptop\none-time-key: "
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
		"\nexpires: 2026-12-14T15:00:00Z\n",
	};
	archive_statement s;
	lb_err err = { 0 };
	char *edit, *big;
	size_t i;

	(void)state;
	assert_int_equal(archive_statement_parse(good, strlen(good), &s, &err),
	    0);
	assert_int_equal(s.nrecords, 1);
	assert_non_null(archive_statement_find(&s, "4CCB4DAF"));
	assert_null(archive_statement_find(&s, "4ccb4daf"));
	archive_statement_clear(&s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lb_err_clear(&err);
		assert_int_equal(archive_statement_parse(bad[i], strlen(bad[i]),
		    &s, &err), -1);
		assert_int_equal(err.code, LB_EINVAL);
	}
	/* one byte changed where the form is fixed: a lower-case serial, a
	 * missing final newline, a space at the end */
	edit = strdup(good);
	*strstr(edit, "4CCB") = 'c';
	lb_err_clear(&err);
	assert_int_equal(archive_statement_parse(edit, strlen(edit), &s, &err),
	    -1);
	lb_err_clear(&err);
	assert_int_equal(archive_statement_parse(good, strlen(good) - 1, &s,
	    &err), -1);
	free(edit);
	big = calloc(1, 70000);
	memcpy(big, good, strlen(good));
	memset(big + strlen(good), 'x', 70000 - strlen(good) - 1);
	lb_err_clear(&err);
	assert_int_equal(archive_statement_parse(big, 69999, &s, &err), -1);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shamir_subsets),
		cmocka_unit_test(test_share_rewrap),
		cmocka_unit_test(test_record_open),
		cmocka_unit_test(test_approve_parse),
		cmocka_unit_test(test_view_and_package_parse_bad),
		cmocka_unit_test(test_statement_parse_bad),
		cmocka_unit_test_setup_teardown(test_codecs_end_to_end,
		    wf_setup, wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_agent_refuses_a_substituted_request, wf_setup,
		    wf_teardown),
		cmocka_unit_test_setup_teardown(test_workflow, wf_setup,
		    wf_teardown),
		cmocka_unit_test_setup_teardown(test_clients_end_to_end,
		    wf_setup, wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_client_agent_refuses_a_substituted_certificate,
		    wf_setup, wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_client_agent_refuses_a_statement_by_another_key,
		    wf_setup, wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_client_agent_refuses_a_share_of_another_record,
		    wf_setup, wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_client_agent_refuses_a_reason_the_officer_did_not_sign,
		    wf_setup, wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_agent_going_never_strands_an_escrow, wf_setup,
		    wf_teardown),
		cmocka_unit_test_setup_teardown(
		    test_client_agent_releases_to_a_one_time_key_once,
		    wf_setup, wf_teardown),
	};

	log_init("test_archive", false);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
