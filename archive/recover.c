/*
 * recover.c - the client side of recovery, where the secrets are: the
 * officer's client makes the request's one-time certificate
 * (archive_onetime_cert); an agent's client checks a request before it
 * releases anything (archive_view_check) and re-encrypts its own shares
 * to the one-time certificate (archive_share_rewrap, archive_view_rewrap);
 * the officer's client decrypts the rewrapped shares, recombines the data
 * key and opens the escrow records of the package (archive_record_open,
 * archive_package_open).  Nothing here touches the database; the server
 * never sees a plaintext share or key.  Every buffer that held a share, the
 * data key or the PKCS#8 key is cleansed before it is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "archive/archive_int.h"

/* More shares than this are never combined in search of a good subset. */
#define MAX_SUBSETS 256

int
archive_share_rewrap_bound(EVP_PKEY *agent_key, X509 *agent_cert,
    const unsigned char *cms, size_t len, X509 *request_cert,
    archive_share_binding *b, unsigned char **out, size_t *out_len,
    lb_err *err)
{
	unsigned char *share = NULL;
	size_t share_len = 0;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	memset(b, 0, sizeof(*b));
	if (archive_cms_decrypt(agent_key, agent_cert, cms, len,
	    ARCHIVE_SHARE_BOUND_LEN, &share, &share_len, err) == -1)
		goto out;
	if ((share_len != ARCHIVE_SHARE_LEN &&
	    share_len != ARCHIVE_SHARE_BOUND_LEN) || share[0] == 0) {
		lb_err_set(err, LB_EINVAL, "a decrypted escrow share is "
		    "malformed (%zu bytes)", share_len);
		goto out;
	}
	if (share_len == ARCHIVE_SHARE_BOUND_LEN) {
		b->bound = true;
		memcpy(b->aad_sha256, share + ARCHIVE_SHARE_LEN, 32);
		core_hex_lower(share + ARCHIVE_SHARE_LEN + 32, 32, b->policy);
	}
	/* the whole plaintext: the officer's client checks the binding too */
	if (archive_cms_encrypt(request_cert, share, share_len, out, out_len,
	    err) == -1)
		goto out;
	rc = 0;
out:
	if (share != NULL)
		OPENSSL_clear_free(share, share_len);
	return rc;
}

int
archive_share_rewrap(EVP_PKEY *agent_key, X509 *agent_cert,
    const unsigned char *cms, size_t len, X509 *request_cert,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	archive_share_binding b;

	return archive_share_rewrap_bound(agent_key, agent_cert, cms, len,
	    request_cert, &b, out, out_len, err);
}

/* AES-256-GCM decryption of the record; -1 when authentication fails. */
static int
gcm_open(const unsigned char *key, const unsigned char *aad, size_t aad_len,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, size_t ct_len, unsigned char *pt)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char tagcopy[ARCHIVE_TAG_LEN];
	int n = 0, fin = 0, rc = -1;

	memcpy(tagcopy, tag, sizeof(tagcopy));
	if (c == NULL || ct_len > INT32_MAX || aad_len > INT32_MAX ||
	    EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ARCHIVE_IV_LEN,
	    NULL) != 1 ||
	    EVP_DecryptInit_ex2(c, NULL, key, iv, NULL) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_DecryptUpdate(c, pt, &n, ct, (int)ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ARCHIVE_TAG_LEN,
	    tagcopy) != 1 ||
	    EVP_DecryptFinal_ex(c, pt + n, &fin) != 1)
		goto out;
	rc = 0;
out:
	ERR_clear_error();
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* The private key from the decrypted PKCS#8 (or traditional) DER. */
static EVP_PKEY *
decode_key(const unsigned char *der, size_t len)
{
	OSSL_DECODER_CTX *d = NULL;
	EVP_PKEY *key = NULL;
	const unsigned char *p = der;
	size_t left = len;

	d = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", NULL, NULL,
	    OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL);
	if (d == NULL || OSSL_DECODER_from_data(d, &p, &left) != 1 ||
	    left != 0) {
		log_openssl("OSSL_DECODER_from_data (recovered key)");
		EVP_PKEY_free(key);
		key = NULL;
	}
	OSSL_DECODER_CTX_free(d);
	return key;
}

/*
 * Advances idx (m ascending indexes below n) to the next m-subset in
 * lexicographic order; false after the last one.
 */
static bool
next_subset(size_t *idx, size_t m, size_t n)
{
	size_t i = m;

	while (i > 0 && idx[i - 1] == n - m + i - 1)
		i--;
	if (i == 0)
		return false;
	idx[i - 1]++;
	for (; i < m; i++)
		idx[i] = idx[i - 1] + 1;
	return true;
}

EVP_PKEY *
archive_record_open(X509 *cert, const char *email,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, size_t ct_len, int threshold,
    EVP_PKEY *onetime_key, X509 *onetime_cert,
    const unsigned char *const *share_cms, const size_t *share_len,
    size_t nshares, lb_err *err)
{
	unsigned char (*shares)[ARCHIVE_SHARE_LEN] = NULL;
	unsigned char (*pick)[ARCHIVE_SHARE_LEN] = NULL;
	unsigned char dkey[ARCHIVE_DATA_KEY_LEN], aad_md[32];
	unsigned char *plain = NULL, *aad = NULL, *one = NULL;
	size_t aad_len = 0, one_len = 0, have = 0, i, j, m = 0, tries = 0;
	size_t idx[ARCHIVE_MAX_AGENTS];
	char *serial = NULL;
	EVP_PKEY *key = NULL;
	bool opened = false, wrong;
	lb_err sub;

	if ((serial = ca_cert_serial(cert)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (threshold < 1 || threshold > ARCHIVE_MAX_AGENTS ||
	    nshares > ARCHIVE_MAX_AGENTS || ct_len == 0 ||
	    ct_len > (size_t)64 * 1024) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s is "
		    "malformed (threshold %d, %zu shares, %zu bytes)", serial,
		    threshold, nshares, ct_len);
		goto out;
	}
	m = (size_t)threshold;
	if (nshares < m) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s needs "
		    "%zu shares, %zu given", serial, m, nshares);
		goto out;
	}
	if ((shares = OPENSSL_zalloc(nshares * ARCHIVE_SHARE_LEN)) == NULL ||
	    (pick = OPENSSL_zalloc(m * ARCHIVE_SHARE_LEN)) == NULL ||
	    (plain = OPENSSL_zalloc(ct_len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (archive_record_aad(cert, email, &aad, &aad_len, err) == -1)
		goto out;
	if (EVP_Digest(aad, aad_len, aad_md, NULL, EVP_sha256(), NULL) != 1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the record's AAD");
		goto out;
	}
	/* decrypt every share; one that does not decrypt, belongs to
	 * another record or repeats an x coordinate is dropped, the others
	 * may still reach the threshold */
	for (i = 0; i < nshares; i++) {
		lb_err_clear(&sub);
		if (archive_cms_decrypt(onetime_key, onetime_cert,
		    share_cms[i], share_len[i], ARCHIVE_SHARE_BOUND_LEN, &one,
		    &one_len, &sub) == -1) {
			log_warnx("escrow record %s: share %zu: %s", serial,
			    i + 1, sub.msg);
			continue;
		}
		wrong = one_len == ARCHIVE_SHARE_BOUND_LEN &&
		    CRYPTO_memcmp(one + ARCHIVE_SHARE_LEN, aad_md, 32) != 0;
		if (wrong)
			log_warnx("escrow record %s: share %zu belongs to another "
			    "record", serial, i + 1);
		if (!wrong && (one_len == ARCHIVE_SHARE_LEN ||
		    one_len == ARCHIVE_SHARE_BOUND_LEN) && one[0] != 0) {
			for (j = 0; j < have && shares[j][0] != one[0]; j++)
				;
			if (j == have)
				memcpy(shares[have++], one, ARCHIVE_SHARE_LEN);
		}
		OPENSSL_clear_free(one, one_len);
		one = NULL;
	}
	if (have < m) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s: only "
		    "%zu of the %zu shares needed could be decrypted with the "
		    "request's one-time key", serial, have, m);
		goto out;
	}
	/* the first m shares normally open it; a bad share among more than
	 * m is outvoted by trying the other subsets, boundedly */
	for (i = 0; i < m; i++)
		idx[i] = i;
	do {
		for (i = 0; i < m; i++)
			memcpy(pick[i], shares[idx[i]], ARCHIVE_SHARE_LEN);
		if (archive_shamir_combine(pick, (unsigned)m, dkey, err) == -1)
			goto out;
		if (gcm_open(dkey, aad, aad_len, iv, tag, ct, ct_len,
		    plain) == 0) {
			opened = true;
			break;
		}
	} while (++tries < MAX_SUBSETS && next_subset(idx, m, have));
	if (!opened) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s failed "
		    "authentication: altered in the database (or a share is "
		    "wrong); nothing was recovered", serial);
		goto out;
	}
	if ((key = decode_key(plain, ct_len)) == NULL) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s "
		    "decrypted, but holds no private key", serial);
		goto out;
	}
	lb_err_clear(&sub);
	if (archive_key_matches(cert, key, &sub) == -1) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s: %s",
		    serial, sub.msg);
		EVP_PKEY_free(key);
		key = NULL;
		goto out;
	}
out:
	OPENSSL_cleanse(dkey, sizeof(dkey));
	OPENSSL_cleanse(idx, sizeof(idx));
	if (shares != NULL)
		OPENSSL_clear_free(shares, nshares * ARCHIVE_SHARE_LEN);
	if (pick != NULL)
		OPENSSL_clear_free(pick, m * ARCHIVE_SHARE_LEN);
	if (plain != NULL)
		OPENSSL_clear_free(plain, ct_len);
	free(aad);
	free(serial);
	return key;
}

/* ------------------------------------------------------------------ */
/* The officer's one-time certificate                                  */

X509 *
archive_onetime_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *signer_cert,
    lb_err *err)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509_EXTENSION *ext = NULL;
	X509V3_CTX ctx;
	bool ok = false;

	if (x == NULL || name == NULL || ca_random_serial(x) == -1 ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)ARCHIVE_ONETIME_CN, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(signer_cert)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)ARCHIVE_ONETIME_DAYS * 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1)
		goto out;
	X509V3_set_ctx(&ctx, signer_cert, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
	    "critical,keyEncipherment")) == NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		goto out;
	X509_EXTENSION_free(ext);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	    "critical,CA:FALSE")) == NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		goto out;
	if (X509_sign(x, signer, EVP_sha256()) <= 0)
		goto out;
	ok = true;
out:
	if (!ok) {
		log_openssl("one-time certificate");
		lb_err_set(err, LB_EINTERNAL, "cannot make the request's "
		    "one-time certificate");
		X509_free(x);
		x = NULL;
	}
	X509_EXTENSION_free(ext);
	X509_NAME_free(name);
	return x;
}

/* ------------------------------------------------------------------ */
/* The agent's checks and re-wrapping                                  */

bool
archive_cert_has_email(X509 *x, const char *email)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	const GENERAL_NAME *g;
	const char *s;
	bool found = false;
	int i;

	for (i = 0; email != NULL && i < sk_GENERAL_NAME_num(gens) && !found;
	    i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_EMAIL)
			continue;
		s = (const char *)ASN1_STRING_get0_data(g->d.rfc822Name);
		found = (size_t)ASN1_STRING_length(g->d.rfc822Name) ==
		    strlen(email) && strcasecmp(s, email) == 0;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

int
archive_view_check(const archive_view *v, const char *ca_file, lb_err *err)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	const char *who = v->requester_email != NULL ? v->requester_email :
	    "the requester";
	EVP_PKEY *pub;
	int rc = -1;

	if (v->requester_cert == NULL || v->request_cert == NULL) {
		lb_err_set(err, LB_EINVAL, "the server sent the request "
		    "without its certificates: refusing to release a share");
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(store, ca_file) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, v->requester_cert, NULL) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		log_openssl("X509_STORE_load_file");
		lb_err_set(err, LB_EINVAL, "%s: cannot load the CA "
		    "certificates", ca_file);
		goto out;
	}
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
	    X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_verify_cert(ctx) != 1) {
		lb_err_set(err, LB_EINVAL, "the requester's credential does "
		    "not verify against %s (%s): refusing to release a share",
		    ca_file, X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (!archive_cert_has_email(v->requester_cert, v->requester_email)) {
		lb_err_set(err, LB_EINVAL, "the requester's credential is not "
		    "%s's: refusing to release a share", who);
		goto out;
	}
	pub = X509_get0_pubkey(v->request_cert);
	if (X509_verify(v->request_cert, X509_get0_pubkey(v->requester_cert))
	    != 1 || pub == NULL || !EVP_PKEY_is_a(pub, "RSA") ||
	    EVP_PKEY_get_bits(pub) < 3072) {
		lb_err_set(err, LB_EINVAL, "the request's one-time key is not "
		    "an RSA-3072 key signed by %s's credential: refusing to "
		    "release a share", who);
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

int
archive_view_rewrap(const archive_view *v, EVP_PKEY *agent_key,
    X509 *agent_cert, archive_approval *out, lb_err *err)
{
	unsigned char *wrapped = NULL, *copy;
	size_t wlen = 0, i;
	lb_err sub;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < v->nshares; i++) {
		const archive_view_share *s = &v->shares[i];

		lb_err_clear(&sub);
		if (archive_share_rewrap(agent_key, agent_cert, s->cms,
		    s->cms_len, v->request_cert, &wrapped, &wlen, &sub) == -1) {
			lb_err_set(err, sub.code, "your share of serial %s: %s",
			    s->serial, sub.msg);
			goto fail;
		}
		/* the approval owns malloc'ed buffers, as a parsed one */
		if ((copy = malloc(wlen)) == NULL) {
			OPENSSL_free(wrapped);
			goto oom;
		}
		memcpy(copy, wrapped, wlen);
		OPENSSL_free(wrapped);
		if (archive_approval_add(out, s->record_id, copy, wlen) == -1) {
			free(copy);
			goto oom;
		}
	}
	return 0;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
fail:
	archive_approval_clear(out);
	return -1;
}

/* ------------------------------------------------------------------ */
/* The officer's opening of the package                                */

void
archive_opened_clear(archive_opened *o)
{
	size_t i;

	if (o == NULL)
		return;
	/* the arrays are allocated together, before n grows */
	for (i = 0; o->keys != NULL && o->certs != NULL && o->names != NULL &&
	    o->serials != NULL && i < o->n; i++) {
		EVP_PKEY_free(o->keys[i]);
		X509_free(o->certs[i]);
		free(o->names[i]);
		free(o->serials[i]);
	}
	free(o->keys);
	free(o->certs);
	free(o->names);
	free(o->serials);
	memset(o, 0, sizeof(*o));
}

/* Whether record r is the one serial names (NULL: every record is). */
static int
wanted(const archive_package_record *r, const char *want)
{
	char have[130];

	return want == NULL || (ca_serial_normalise(r->serial, have,
	    sizeof(have)) == 0 && strcmp(have, want) == 0);
}

int
archive_package_open(const archive_package *p, const char *serial,
    EVP_PKEY *otkey, X509 *otcert, archive_opened *out, lb_err *err)
{
	char want[130];
	size_t i, n = 0;

	memset(out, 0, sizeof(*out));
	if (serial != NULL && ca_serial_arg(serial, want, sizeof(want),
	    err) == -1)
		return -1;
	for (i = 0; i < p->nrecords; i++)
		n += wanted(&p->records[i], serial != NULL ? want : NULL);
	if (n == 0)
		return serial != NULL ? lb_err_set(err, LB_EINVAL, "recovery "
		    "request %s covers no key with serial %s", p->id, want) :
		    lb_err_set(err, LB_EINVAL, "the package holds no key");
	/* NOLINTBEGIN(bugprone-sizeof-expression): arrays of pointers */
	if ((out->keys = calloc(n, sizeof(*out->keys))) == NULL ||
	    (out->certs = calloc(n, sizeof(*out->certs))) == NULL ||
	    (out->names = calloc(n, sizeof(*out->names))) == NULL ||
	    (out->serials = calloc(n, sizeof(*out->serials))) == NULL) {
		archive_opened_clear(out);
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	/* NOLINTEND(bugprone-sizeof-expression) */
	/* every key must open before anything is handed out */
	for (i = 0; i < p->nrecords; i++) {
		const archive_package_record *r = &p->records[i];
		size_t k = out->n;

		if (!wanted(r, serial != NULL ? want : NULL))
			continue;
		out->n++;
		if ((out->certs[k] = X509_dup(r->cert)) == NULL ||
		    (out->serials[k] = strdup(r->serial)) == NULL ||
		    asprintf(&out->names[k], "%s (%s)", r->email, r->serial) ==
		    -1) {
			out->names[k] = NULL;
			archive_opened_clear(out);
			return lb_err_set(err, LB_EINTERNAL, "out of memory");
		}
		if ((out->keys[k] = archive_record_open(r->cert, r->email,
		    r->iv, r->tag, r->ciphertext, r->ciphertext_len,
		    r->threshold, otkey, otcert,
		    (const unsigned char *const *)r->shares, r->share_lens,
		    r->nshares, err)) == NULL) {
			archive_opened_clear(out);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The officer's one-time key, kept until the keys are fetched          */

/* dir/ID.key and dir/ID.pem, malloc'ed; -1 when out of memory. */
static int
onetime_paths(const char *dir, const char *id, char **key, char **cert)
{
	*key = *cert = NULL;
	if (asprintf(key, "%s/%s.key", dir, id) == -1) {
		*key = NULL;
		return -1;
	}
	if (asprintf(cert, "%s/%s.pem", dir, id) == -1) {
		*cert = NULL;
		free(*key);
		*key = NULL;
		return -1;
	}
	return 0;
}

int
archive_onetime_save(const char *dir, const char *id, EVP_PKEY *key,
    X509 *cert, char **key_path, lb_err *err)
{
	char *kpath = NULL, *cpath = NULL, *pem = NULL;
	size_t n;
	int rc = -1;

	*key_path = NULL;
	if (onetime_paths(dir, id, &kpath, &cpath) == -1 ||
	    (pem = ca_certs_pem(&cert, 1, NULL, &n)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (ca_key_write(kpath, key, NULL, true, err) == -1 ||
	    core_file_write(cpath, pem, n, 0600, false, err) == -1)
		goto out;
	*key_path = kpath;
	kpath = NULL;
	rc = 0;
out:
	free(pem);
	free(kpath);
	free(cpath);
	return rc;
}

int
archive_onetime_load(const char *dir, const char *id, EVP_PKEY **key,
    X509 **cert, lb_err *err)
{
	char *kpath = NULL, *cpath = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	*key = NULL;
	*cert = NULL;
	if (onetime_paths(dir, id, &kpath, &cpath) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (access(kpath, R_OK) == -1) {
		lb_err_set(err, LB_EINVAL, "no one-time key for request %s "
		    "(%s): fetch where the request was made, with its --dir",
		    id, kpath);
		goto out;
	}
	if ((*key = ca_key_read(kpath, NULL, err)) == NULL ||
	    core_file_read(cpath, (size_t)64 * 1024, &buf, &len, err) == -1 ||
	    (*cert = ca_cert_parse(buf, len, err)) == NULL)
		goto out;
	if (X509_check_private_key(*cert, *key) != 1) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "%s and %s do not belong together",
		    kpath, cpath);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1) {
		EVP_PKEY_free(*key);
		X509_free(*cert);
		*key = NULL;
		*cert = NULL;
	}
	free(buf);
	free(kpath);
	free(cpath);
	return rc;
}

int
archive_onetime_remove(const char *dir, const char *id, lb_err *err)
{
	char *kpath = NULL, *cpath = NULL;
	int rc;

	if (onetime_paths(dir, id, &kpath, &cpath) == -1)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	rc = core_file_shred(kpath, err) == 0 &&
	    core_file_shred(cpath, err) == 0 ? 0 : -1;
	free(kpath);
	free(cpath);
	return rc;
}
