/*
 * shamir.c - the data key split into shares and recombined, with
 * libgfshare over GF(256).  libgfshare's random function is set to
 * OpenSSL's RAND_bytes; a failure there fails the split instead of
 * producing weak shares.
 */
#include <string.h>

#include <libgfshare.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "archive/archive_int.h"

static _Thread_local int rand_failed;

static void
fill_rand(unsigned char *buf, unsigned int len)
{
	if (RAND_bytes(buf, (int)len) != 1) {
		rand_failed = 1;
		memset(buf, 0, len);
	}
}

int
archive_shamir_split(const unsigned char *secret, unsigned n, unsigned m,
    unsigned char (*shares)[ARCHIVE_SHARE_LEN], lb_err *err)
{
	unsigned char nrs[ARCHIVE_MAX_AGENTS], buf[ARCHIVE_DATA_KEY_LEN];
	gfshare_ctx *g = NULL;
	unsigned i;
	int rc = -1;

	if (n == 0 || n > ARCHIVE_MAX_AGENTS || m == 0 || m > n)
		return lb_err_set(err, LB_EINVAL, "cannot split into %u shares "
		    "with threshold %u", n, m);
	gfshare_fill_rand = fill_rand;
	rand_failed = 0;
	for (i = 0; i < n; i++)
		nrs[i] = (unsigned char)(i + 1);
	memcpy(buf, secret, sizeof(buf));
	if ((g = gfshare_ctx_init_enc(nrs, n, (unsigned char)m,
	    ARCHIVE_DATA_KEY_LEN)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot start the share split");
		goto out;
	}
	gfshare_ctx_enc_setsecret(g, buf);
	for (i = 0; i < n; i++) {
		shares[i][0] = nrs[i];
		gfshare_ctx_enc_getshare(g, (unsigned char)i, shares[i] + 1);
	}
	if (rand_failed) {
		OPENSSL_cleanse(shares, (size_t)n * ARCHIVE_SHARE_LEN);
		lb_err_set(err, LB_EINTERNAL, "no randomness for the shares");
		goto out;
	}
	rc = 0;
out:
	/* gfshare_ctx_free overwrites the coefficients before freeing */
	if (g != NULL)
		gfshare_ctx_free(g);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int
archive_shamir_combine(unsigned char (*shares)[ARCHIVE_SHARE_LEN],
    unsigned n, unsigned char *secret, lb_err *err)
{
	unsigned char nrs[ARCHIVE_MAX_AGENTS];
	gfshare_ctx *g = NULL;
	unsigned i, j;

	if (n == 0 || n > ARCHIVE_MAX_AGENTS)
		return lb_err_set(err, LB_EINVAL, "cannot combine %u shares", n);
	for (i = 0; i < n; i++) {
		nrs[i] = shares[i][0];
		if (nrs[i] == 0)
			return lb_err_set(err, LB_EINVAL, "a share has x = 0");
		for (j = 0; j < i; j++)
			if (nrs[j] == nrs[i])
				return lb_err_set(err, LB_EINVAL, "two shares "
				    "have the same x coordinate");
	}
	/* gfshare_ctx_free wipes with gfshare_fill_rand, which is NULL in a
	 * process that never split (the recovering client) */
	gfshare_fill_rand = fill_rand;
	if ((g = gfshare_ctx_init_dec(nrs, n, ARCHIVE_DATA_KEY_LEN)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "cannot start combining");
	for (i = 0; i < n; i++)
		gfshare_ctx_dec_giveshare(g, (unsigned char)i, shares[i] + 1);
	gfshare_ctx_dec_extract(g, secret);
	gfshare_ctx_free(g);
	return 0;
}
