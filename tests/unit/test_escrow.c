/*
 * test_escrow.c - unit tests of archival (archive/escrow.c, agent.c,
 * record.c, shamir.c): key/certificate matching, refusals that leave no
 * rows, and the stored record opened by hand - any M shares decrypted with
 * the agents' keys recombine into the data key that opens the PKCS#8 key
 * under the record's AAD; fewer shares, another AAD or an altered byte do
 * not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "archive/archive_int.h"
#include "tests/unit/testutil.h"

#define NAGENTS 3

struct fx {
	tu_fixture tu;              /* the CA */
	EVP_PKEY *const *agent_key; /* the group's (tu_agent_keys_setup) */
	X509 *agent_cert[NAGENTS];
};

/* RSA-3072 key generation is slow: one set of agent keys for all tests. */
static int
group_setup(void **state)
{
	return tu_agent_keys_setup(state, NAGENTS);
}

/* The fixture's own part (tu_fixture release). */
static void
release(tu_fixture *tu)
{
	struct fx *f = (struct fx *)tu;
	int i;

	for (i = 0; i < NAGENTS; i++)
		X509_free(f->agent_cert[i]);
}

static int
setup(void **state)
{
	const tu_agent_keys *ak = *state;
	struct fx *f;

	if (ak == NULL || (f = tu_fixture_setup(state, sizeof(*f), "escrow",
	    NULL, NULL, 0)) == NULL)
		return -1;
	f->tu.release = release;
	f->agent_key = ak->key;
	return 0;
}

static void
add_agents(struct fx *f)
{
	lb_err err = { 0 };
	char email[64], name[32];
	int i;

	for (i = 0; i < NAGENTS; i++) {
		snprintf(email, sizeof(email), "agent%d@example.org", i);
		snprintf(name, sizeof(name), "Agent %d", i);
		f->agent_cert[i] = ca_operator_add(f->tu.ca, f->tu.db,
		    CA_ROLE_RECOVERY_AGENT, name, email, f->agent_key[i], "test",
		    &err);
		assert_non_null(f->agent_cert[i]);
	}
	assert_int_equal(tu_policy_sign_all(f->tu.db, f->agent_key,
	    f->agent_cert, NAGENTS, 2), 0);
}

static X509 *
issue(struct fx *f, EVP_PKEY *key, const char *email, unsigned char **rcpt,
    size_t *rlen, lb_err *err)
{
	ca_request req;

	memset(&req, 0, sizeof(req));
	req.email = email;
	return archive_issue_enc(f->tu.ca, f->tu.db, &req, key, "test", rcpt,
	    rlen, err);
}

static void
test_key_matches(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k1 = ca_keygen(CA_KEY_ECP256, &err);
	EVP_PKEY *k2 = ca_keygen(CA_KEY_ECP256, &err);
	EVP_PKEY *r1 = ca_keygen(CA_KEY_RSA2048, &err);
	ca_request req;
	X509 *c1, *cr;

	memset(&req, 0, sizeof(req));
	req.profile = "smime-enc";
	req.email = "a@example.org";
	req.pubkey = k1;
	c1 = ca_sign_cert(f->tu.ca, &req, &err);
	req.pubkey = r1;
	cr = ca_sign_cert(f->tu.ca, &req, &err);
	assert_non_null(c1);
	assert_non_null(cr);
	assert_int_equal(archive_key_matches(c1, k1, &err), 0);
	assert_int_equal(archive_key_matches(cr, r1, &err), 0);
	lb_err_clear(&err);
	assert_int_equal(archive_key_matches(c1, k2, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(archive_key_matches(cr, k1, &err), -1);
	X509_free(c1);
	X509_free(cr);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(r1);
}

/* Until its members have signed a policy, no key is escrowed. */
static void
test_no_policy_no_escrow(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;

	assert_null(issue(f, k, "alice@example.org", &rcpt, &rlen, &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "lockbox escrow policy propose"));
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "certificates WHERE profile = 'smime-enc'"), 0);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_records"), 0);
	assert_null(rcpt);
	EVP_PKEY_free(k);
}

static void
test_signing_key_refused(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	ca_request req;
	X509 *sign;

	add_agents(f);
	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = "alice@example.org";
	req.pubkey = k;
	sign = ca_issue(f->tu.ca, f->tu.db, &req, "test", &err);
	assert_non_null(sign);
	assert_int_equal(core_db_begin(f->tu.db, &err), 0);
	assert_int_equal(archive_escrow_put(f->tu.ca, f->tu.db, sign, k,
	    "alice@example.org", "test", &rcpt, &rlen, &err), -1);
	core_db_rollback(f->tu.db);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "signs"));
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_records"), 0);
	X509_free(sign);
	EVP_PKEY_free(k);
}

/* key re-encoded: its public half through an SPKI with a compressed
 * point (EC), as a CSR made elsewhere might carry it */
static EVP_PKEY *
reencoded(EVP_PKEY *key)
{
	EVP_PKEY *dup = EVP_PKEY_dup(key), *pub = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int len;

	assert_non_null(dup);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(dup,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"), 1);
	assert_true((len = i2d_PUBKEY(dup, &der)) > 0);
	/* 0x02 or 0x03: the compressed form, 33 bytes for P-256 */
	assert_true(der[len - 33] == 0x02 || der[len - 33] == 0x03);
	p = der;
	assert_non_null(pub = d2i_PUBKEY(NULL, &p, len));
	OPENSSL_free(der);
	EVP_PKEY_free(dup);
	return pub;
}

static void
test_key_id_names_the_key_not_its_encoding(void **state)
{
	lb_err err = { 0 };
	EVP_PKEY *ec = ca_keygen(CA_KEY_ECP256, &err), *ec2, *other;
	EVP_PKEY *rsa = ca_keygen(CA_KEY_RSA2048, &err), *rsa_e3 = NULL;
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	BIGNUM *n = NULL, *e = BN_new();
	char a[65], c[65];

	(void)state;
	assert_non_null(ec);
	assert_non_null(rsa);
	other = ca_keygen(CA_KEY_ECP256, &err);
	ec2 = reencoded(ec);
	assert_int_equal(ca_key_id(ec, a), 0);
	assert_int_equal(ca_key_id(ec2, c), 0);
	assert_string_equal(a, c);
	assert_int_equal(ca_key_id(other, c), 0);
	assert_string_not_equal(a, c);
	/* RSA: the modulus is the key; another exponent is the same key */
	assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n),
	    1);
	assert_int_equal(BN_set_word(e, 3), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n),
	    1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e),
	    1);
	assert_non_null(params = OSSL_PARAM_BLD_to_param(b));
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &rsa_e3, EVP_PKEY_PUBLIC_KEY,
	    params), 1);
	assert_int_equal(ca_key_id(rsa, a), 0);
	assert_int_equal(ca_key_id(rsa_e3, c), 0);
	assert_string_equal(a, c);
	assert_int_equal(ca_key_id(ec, c), 0);
	assert_string_not_equal(a, c);
	assert_int_equal(ca_key_id(NULL, c), -1);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(rsa_e3);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec2);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}

static int
count(struct fx *f, const char *sql)
{
	return (int)tu_sql_int(f->tu.db, sql);
}

/* issue --profile smime-enc --csr X --key K, K already certified for
 * signing: refused before anything is signed, naming that certificate,
 * and nothing is written */
static void
test_signing_key_is_never_escrowed(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	ca_request req;
	X509 *sign;
	char *serial;
	int certs, audit;

	add_agents(f);
	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = "alice@example.org";
	req.pubkey = k;
	assert_non_null(sign = ca_issue(f->tu.ca, f->tu.db, &req, "test",
	    &err));
	serial = ca_cert_serial(sign);
	/* revoked: still certified for signing once, for good */
	assert_int_equal(ca_revoke(f->tu.db, serial, 1, 0, "test", &err), 0);
	certs = count(f, "SELECT count(*) FROM certificates");
	audit = count(f, "SELECT count(*) FROM audit");
	assert_null(issue(f, k, "alice@example.org", &rcpt, &rlen, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, serial));
	assert_non_null(strstr(err.msg, "signing"));
	assert_null(rcpt);
	assert_int_equal(count(f, "SELECT count(*) FROM certificates"), certs);
	assert_int_equal(count(f, "SELECT count(*) FROM escrow_records"), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM audit"), audit);
	/* the agents' own credential keys are signing keys too */
	lb_err_clear(&err);
	assert_null(issue(f, (EVP_PKEY *)f->agent_key[0], "alice@example.org",
	    &rcpt, &rlen, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(count(f, "SELECT count(*) FROM escrow_records"), 0);
	free(serial);
	X509_free(sign);
	EVP_PKEY_free(k);
}

/* an escrowed key is never certified for signing, under any encoding of
 * it, for a subscriber or an operator */
static void
test_escrowed_key_never_signs(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err), *pub;
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	ca_request req;
	X509 *enc, *again;
	char *serial;
	int certs;

	add_agents(f);
	assert_non_null(enc = issue(f, k, "alice@example.org", &rcpt, &rlen,
	    &err));
	OPENSSL_free(rcpt);
	rcpt = NULL;
	serial = ca_cert_serial(enc);
	certs = count(f, "SELECT count(*) FROM certificates");
	pub = reencoded(k);
	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = "alice@example.org";
	req.pubkey = pub;
	assert_null(ca_issue(f->tu.ca, f->tu.db, &req, "test", &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, serial));
	assert_non_null(strstr(err.msg, "encryption"));
	lb_err_clear(&err);
	assert_null(ca_operator_add(f->tu.ca, f->tu.db, CA_ROLE_OFFICER,
	    "Mallory", "mallory@example.org", pub, "test", &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(count(f, "SELECT count(*) FROM certificates"), certs);
	assert_int_equal(count(f, "SELECT count(*) FROM operators WHERE email "
	    "= 'mallory@example.org'"), 0);
	/* the same purpose again (a renewal with the same key) is fine */
	lb_err_clear(&err);
	assert_non_null(again = issue(f, k, "alice@example.org", &rcpt, &rlen,
	    &err));
	OPENSSL_free(rcpt);
	X509_free(again);
	/* the store refuses too, inside its transaction, when the early
	 * check is passed by */
	req.pubkey = k;
	assert_non_null(again = ca_sign_cert(f->tu.ca, &req, &err));
	assert_int_equal(core_db_begin(f->tu.db, &err), 0);
	assert_int_equal(ca_store_cert(f->tu.db, again, "smime-sign",
	    "alice@example.org", "test", &err), -1);
	core_db_rollback(f->tu.db);
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(count(f, "SELECT count(*) FROM certificates"),
	    certs + 1);
	X509_free(again);
	free(serial);
	X509_free(enc);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
}

/* a database from before key_uses: ca_db_open fills it from every stored
 * certificate and the CA's key, once */
static void
test_key_uses_filled_for_older_certificates(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err);
	unsigned char *rcpt = NULL;
	size_t rlen = 0;
	X509 *enc;
	sqlite3 *db;
	int keys;

	add_agents(f);
	assert_non_null(enc = issue(f, k, "alice@example.org", &rcpt, &rlen,
	    &err));
	OPENSSL_free(rcpt);
	keys = count(f, "SELECT count(*) FROM key_uses");
	/* the CA's key, the TLS and admin credentials of init, the three
	 * agents and alice's */
	assert_true(keys >= NAGENTS + 2);
	assert_int_equal(sqlite3_exec(f->tu.db, "DELETE FROM key_uses; "
	    "DELETE FROM settings WHERE name = 'key_uses_filled'", NULL, NULL,
	    NULL), SQLITE_OK);
	assert_non_null(db = ca_db_open(f->tu.ca, &err));
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM key_uses"),
	    keys);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM key_uses WHERE "
	    "purpose = 'encryption'"), 1);
	core_db_close(db);
	X509_free(enc);
	EVP_PKEY_free(k);
}

/* Decrypts agent i's share of the record for serial. */
static void
agent_share(struct fx *f, const char *serial, int i,
    unsigned char share[ARCHIVE_SHARE_LEN], unsigned char binding[64])
{
	sqlite3_stmt *st = NULL;
	char *aserial = ca_cert_serial(f->agent_cert[i]);
	unsigned char *pt = NULL;
	size_t ptl = 0;
	lb_err err = { 0 };

	assert_int_equal(sqlite3_prepare_v2(f->tu.db, "SELECT s.cms FROM "
	    "escrow_shares s JOIN escrow_records r ON r.id = s.record_id "
	    "WHERE r.serial = ? AND s.agent_serial = ?", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, aserial, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(archive_cms_decrypt(f->agent_key[i], f->agent_cert[i],
	    sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
	    ARCHIVE_SHARE_BOUND_LEN, &pt, &ptl, &err), 0);
	assert_int_equal(ptl, ARCHIVE_SHARE_BOUND_LEN);
	memcpy(share, pt, ARCHIVE_SHARE_LEN);
	memcpy(binding, pt + ARCHIVE_SHARE_LEN, 64);
	OPENSSL_clear_free(pt, ptl);
	sqlite3_finalize(st);
	free(aserial);
}

/* AES-256-GCM open of the record with dkey and the AAD of (cert, email). */
static int
open_record(struct fx *f, X509 *cert, const char *email,
    const unsigned char *dkey, unsigned char *out, int *outl)
{
	sqlite3_stmt *st = NULL;
	char *serial = ca_cert_serial(cert);
	unsigned char *aad = NULL, tag[ARCHIVE_TAG_LEN];
	size_t aad_len = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, fl = 0, ok;
	lb_err err = { 0 };

	assert_int_equal(archive_record_aad(cert, email, &aad, &aad_len, &err),
	    0);
	assert_int_equal(sqlite3_prepare_v2(f->tu.db, "SELECT iv, tag, "
	    "ciphertext FROM escrow_records WHERE serial = ?", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memcpy(tag, sqlite3_column_blob(st, 1), ARCHIVE_TAG_LEN);
	ok = EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), dkey,
	    sqlite3_column_blob(st, 0), NULL) == 1 &&
	    EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
	    EVP_DecryptUpdate(c, out, &n, sqlite3_column_blob(st, 2),
	    sqlite3_column_bytes(st, 2)) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ARCHIVE_TAG_LEN,
	    tag) == 1 && EVP_DecryptFinal_ex(c, out + n, &fl) == 1;
	*outl = n + fl;
	EVP_CIPHER_CTX_free(c);
	sqlite3_finalize(st);
	free(aad);
	free(serial);
	return ok ? 0 : -1;
}

static void
test_escrow_round_trip(void **state)
{
	struct fx *f = *state;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err), *back = NULL;
	unsigned char *rcpt = NULL, shares[NAGENTS][ARCHIVE_SHARE_LEN];
	unsigned char binding[NAGENTS][64], md[32], *aad = NULL;
	size_t aad_len = 0;
	char policy[65];
	unsigned char pair[2][ARCHIVE_SHARE_LEN], dkey[ARCHIVE_DATA_KEY_LEN];
	unsigned char pt[4096];
	const unsigned char *p;
	size_t rlen = 0;
	char *serial;
	X509 *cert;
	int i, j, ptl = 0;

	add_agents(f);
	cert = issue(f, k, "alice@example.org", &rcpt, &rlen, &err);
	assert_non_null(cert);
	assert_non_null(rcpt);
	assert_true(rlen > 100);
	serial = ca_cert_serial(cert);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT nshares * 10 + threshold "
	    "FROM escrow_records"), NAGENTS * 10 + 2);
	for (i = 0; i < NAGENTS; i++)
		agent_share(f, serial, i, shares[i], binding[i]);
	/* each share names its record (its AAD's SHA-256) and its policy */
	assert_int_equal(archive_record_aad(cert, "alice@example.org", &aad,
	    &aad_len, &err), 0);
	assert_int_equal(EVP_Digest(aad, aad_len, md, NULL, EVP_sha256(),
	    NULL), 1);
	core_hex_lower(binding[0] + 32, 32, policy);
	assert_int_equal(tu_sql_int(f->tu.db, "SELECT count(*) FROM "
	    "escrow_policies WHERE status = 'in_force'"), 1);
	for (i = 0; i < NAGENTS; i++) {
		assert_memory_equal(binding[i], md, 32);
		assert_memory_equal(binding[i] + 32, binding[0] + 32, 32);
	}
	{
		char sql[160];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM escrow_records "
		    "WHERE policy_hash = '%s'", policy);
		assert_int_equal(tu_sql_int(f->tu.db, sql), 1);
	}
	free(aad);
	/* every pair of agents recovers the key */
	for (i = 0; i < NAGENTS; i++) {
		for (j = i + 1; j < NAGENTS; j++) {
			memcpy(pair[0], shares[i], ARCHIVE_SHARE_LEN);
			memcpy(pair[1], shares[j], ARCHIVE_SHARE_LEN);
			assert_int_equal(archive_shamir_combine(pair, 2, dkey,
			    &err), 0);
			assert_int_equal(open_record(f, cert,
			    "alice@example.org", dkey, pt, &ptl), 0);
			p = pt;
			back = d2i_AutoPrivateKey(NULL, &p, ptl);
			assert_non_null(back);
			assert_int_equal(EVP_PKEY_eq(back, k), 1);
			EVP_PKEY_free(back);
		}
	}
	/* one share alone does not give the data key */
	assert_int_equal(archive_shamir_combine(shares, 1, dkey, &err), 0);
	assert_int_equal(open_record(f, cert, "alice@example.org", dkey, pt,
	    &ptl), -1);
	/* the right key under another owner's AAD fails */
	assert_int_equal(archive_shamir_combine(shares, 2, dkey, &err), 0);
	assert_int_equal(open_record(f, cert, "mallory@example.org", dkey, pt,
	    &ptl), -1);
	/* one altered ciphertext byte fails */
	assert_int_equal(sqlite3_exec(f->tu.db, "UPDATE escrow_records SET "
	    "ciphertext = CAST(substr(ciphertext, 1, 10) || "
	    "CAST(x'00' AS BLOB) || substr(ciphertext, 12) AS BLOB)", NULL,
	    NULL, NULL), SQLITE_OK);
	assert_int_equal(open_record(f, cert, "alice@example.org", dkey, pt,
	    &ptl), -1);
	OPENSSL_cleanse(dkey, sizeof(dkey));
	OPENSSL_cleanse(shares, sizeof(shares));
	OPENSSL_cleanse(pt, sizeof(pt));
	OPENSSL_free(rcpt);
	free(serial);
	X509_free(cert);
	EVP_PKEY_free(k);
}

static void
test_shamir(void **state)
{
	unsigned char secret[ARCHIVE_DATA_KEY_LEN], got[ARCHIVE_DATA_KEY_LEN];
	unsigned char shares[5][ARCHIVE_SHARE_LEN], sub[3][ARCHIVE_SHARE_LEN];
	lb_err err = { 0 };

	(void)state;
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	assert_int_equal(archive_shamir_split(secret, 5, 3, shares, &err), 0);
	memcpy(sub[0], shares[4], ARCHIVE_SHARE_LEN);
	memcpy(sub[1], shares[0], ARCHIVE_SHARE_LEN);
	memcpy(sub[2], shares[2], ARCHIVE_SHARE_LEN);
	assert_int_equal(archive_shamir_combine(sub, 3, got, &err), 0);
	assert_memory_equal(got, secret, sizeof(secret));
	assert_int_equal(archive_shamir_combine(sub, 2, got, &err), 0);
	assert_memory_not_equal(got, secret, sizeof(secret));
	memcpy(sub[1], shares[4], ARCHIVE_SHARE_LEN);
	assert_int_equal(archive_shamir_combine(sub, 3, got, &err), -1);
	lb_err_clear(&err);
	assert_int_equal(archive_shamir_split(secret, 2, 3, shares, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shamir),
		cmocka_unit_test_setup_teardown(test_key_matches, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_no_policy_no_escrow, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_signing_key_refused, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_escrow_round_trip, setup,
		    tu_fixture_teardown),
		cmocka_unit_test(test_key_id_names_the_key_not_its_encoding),
		cmocka_unit_test_setup_teardown(
		    test_signing_key_is_never_escrowed, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_escrowed_key_never_signs,
		    setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_key_uses_filled_for_older_certificates, setup,
		    tu_fixture_teardown),
	};

	return cmocka_run_group_tests_name("escrow", tests, group_setup,
	    tu_agent_keys_teardown);
}
