/*
 * recover.c - the client side of recovery, where the secrets are: an
 * agent's client re-encrypts its own share to a request's one-time
 * certificate (archive_share_rewrap), and the officer's client decrypts the
 * rewrapped shares, recombines the data key and opens the escrow record
 * (archive_record_open).  Nothing here touches the database; the server
 * never sees a plaintext share or key.  Every buffer that held a share, the
 * data key or the PKCS#8 key is cleansed before it is freed.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>

#include "archive/archive_int.h"

/* More shares than this are never combined in search of a good subset. */
#define MAX_SUBSETS 256

int
archive_share_rewrap(EVP_PKEY *agent_key, X509 *agent_cert,
    const unsigned char *cms, size_t len, X509 *request_cert,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	unsigned char *share = NULL;
	size_t share_len = 0;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if (archive_cms_decrypt(agent_key, agent_cert, cms, len,
	    ARCHIVE_SHARE_LEN, &share, &share_len, err) == -1)
		goto out;
	if (share_len != ARCHIVE_SHARE_LEN || share[0] == 0) {
		lb_err_set(err, LB_EINVAL, "a decrypted escrow share is "
		    "malformed (%zu bytes)", share_len);
		goto out;
	}
	if (archive_cms_encrypt(request_cert, share, share_len, out, out_len,
	    err) == -1)
		goto out;
	rc = 0;
out:
	if (share != NULL)
		OPENSSL_clear_free(share, share_len);
	return rc;
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
	unsigned char dkey[ARCHIVE_DATA_KEY_LEN];
	unsigned char *plain = NULL, *aad = NULL, *one = NULL;
	size_t aad_len = 0, one_len = 0, have = 0, i, j, m = 0, tries = 0;
	size_t idx[ARCHIVE_MAX_AGENTS];
	char *serial = NULL;
	EVP_PKEY *key = NULL;
	bool opened = false;
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
	/* decrypt every share; one that does not decrypt or repeats an x
	 * coordinate is dropped, the others may still reach the threshold */
	for (i = 0; i < nshares; i++) {
		lb_err_clear(&sub);
		if (archive_cms_decrypt(onetime_key, onetime_cert,
		    share_cms[i], share_len[i], ARCHIVE_SHARE_LEN, &one,
		    &one_len, &sub) == -1) {
			log_warnx("escrow record %s: share %zu: %s", serial,
			    i + 1, sub.msg);
			continue;
		}
		if (one_len == ARCHIVE_SHARE_LEN && one[0] != 0) {
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
	if (archive_record_aad(cert, email, &aad, &aad_len, err) == -1)
		goto out;
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
