/*
 * receipt.c - the CA's signature over an escrow receipt: CMS SignedData
 * with the receipt text attached, signed by the CA key and carrying the CA
 * certificate, so anyone holding ca.pem can check what was escrowed.
 */
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "ca/ca_int.h"

int
ca_sign_receipt(ca_ctx *ca, const unsigned char *data, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *der = NULL;
	int dlen, rc = -1;

	*out = NULL;
	*out_len = 0;
	if (ca->signer != NULL)
		return ca_signer_sign_receipt(ca, data, len, out, out_len, err);
	if (ca->key == NULL)
		return lb_err_set(err, LB_EINTERNAL, "the CA key is not loaded");
	if (len == 0 || len > 4096)
		return lb_err_set(err, LB_EINVAL, "a receipt holds 1 to 4096 "
		    "bytes");
	/*
	 * SHA-256 named here rather than looked up as the key's default
	 * digest (the same answer for every CA key type lockbox makes): the
	 * lookup went through the provider on every receipt.
	 */
	if ((in = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_BINARY |
	    CMS_NOSMIMECAP | CMS_PARTIAL)) == NULL ||
	    CMS_add1_signer(cms, ca->cert, ca->key, EVP_sha256(), CMS_BINARY |
	    CMS_NOSMIMECAP) == NULL ||
	    CMS_final(cms, in, NULL, CMS_BINARY) != 1 ||
	    (dlen = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		log_openssl("ca_sign_receipt");
		lb_err_set(err, LB_EINTERNAL, "cannot sign the escrow receipt");
		goto out;
	}
	*out = der;
	*out_len = (size_t)dlen;
	rc = 0;
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}
