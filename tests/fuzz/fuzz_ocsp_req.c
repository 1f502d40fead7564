/*
 * fuzz_ocsp_req.c - libFuzzer harness for the OCSP responder: the input is
 * an OCSP request as POSTed (crl_ocsp_respond) and, read as text, the GET
 * form (web_ocsp_get_decode, then crl_ocsp_respond).  The CA is made once
 * in LLVMFuzzerInitialize with a fixed key and certificate (a throwaway
 * fuzz-only CA, below) so that the seed requests in corpus/ocsp_req/,
 * made with `openssl ocsp -reqout -issuer` against it, reach the signing
 * path; the look-up is a fake keyed on the serial so no database is hit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ocsp.h>

#include "web/web_int.h"
#include "tests/unit/testutil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Throwaway fuzz-only CA: never trusted anywhere. */
static const char ca_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgK5zRs6PpwiCl6dF1\n"
	"LUVMCaHumqU+RnHAGCemxaGQFBahRANCAATVZyQ6XWuB2F/PWUe4reG8pIqY4V8v\n"
	"yffFYgN3qirVmeBbX9RI6BWANg6ukbQV4t6K9Tr4cNG3eQ10N2s8dxGV\n"
	"-----END PRIVATE KEY-----\n";
static const char ca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBnDCCAUGgAwIBAgIUUYLm6min5t+CJwzGmNq7DGlyXBQwCgYIKoZIzj0EAwIw\n"
	"GjEYMBYGA1UEAwwPbG9ja2JveCBGdXp6IENBMCAXDTI2MTEyODIxNTQ1OFoYDzIx\n"
	"MjYxMTA0MjE1NDU4WjAaMRgwFgYDVQQDDA9sb2NrYm94IEZ1enogQ0EwWTATBgcq\n"
	"hkjOPQIBBggqhkjOPQMBBwNCAATVZyQ6XWuB2F/PWUe4reG8pIqY4V8vyffFYgN3\n"
	"qirVmeBbX9RI6BWANg6ukbQV4t6K9Tr4cNG3eQ10N2s8dxGVo2MwYTAdBgNVHQ4E\n"
	"FgQUX2rtSGco52KDisZPlqw0+CPDvTUwHwYDVR0jBBgwFoAUX2rtSGco52KDisZP\n"
	"lqw0+CPDvTUwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI\n"
	"zj0EAwIDSQAwRgIhANux5UYbUcrQfA8C6HBKzIgGv+iRUSRjrTBcBuyrztwuAiEA\n"
	"u4wlhGpS5b1upJWIdV8skVLXAX6jNYJlS3kV3apfn1w=\n"
	"-----END CERTIFICATE-----\n";

static char *tmp;
static crl_ocsp *ocsp;
static ca_ctx *ca;

static void
cleanup(void)
{
	crl_ocsp_free(ocsp);
	ca_free(ca);
	tu_rmtree(tmp);
	free(tmp);
}

/* Serials ending in 0-3: never issued, 4-7: revoked, else good. */
static int
fake_lookup(void *arg, const char *serial, crl_ocsp_cert_status *st)
{
	char last = serial[strlen(serial) - 1];

	(void)arg;
	memset(st, 0, sizeof(*st));
	st->reason = -1;
	if (last >= '0' && last <= '3')
		return 0;
	st->known = true;
	if (last >= '4' && last <= '7') {
		st->revoked = true;
		st->revoked_at = 1700000000;
		st->reason = last - '4';
		st->invalidity = last == '5' ? 1690000000 : 0;
	}
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ca_init_opts o;
	lb_err err = { 0 };
	sqlite3 *db;
	char *dir, *p;

	(void)argc;
	(void)argv;
	log_init("fuzz_ocsp_req", false);
	if ((tmp = tu_mkdtemp("fuzz-ocsp")) == NULL)
		abort();
	dir = tu_path(tmp, "ca");
	memset(&o, 0, sizeof(o));
	o.name = "lockbox Fuzz CA";
	o.key_type = CA_KEY_ECP256;
	o.admin_p12_pass_file = tu_pass_file(tmp);
	if (ca_init(dir, &o, &err) == -1)
		goto fail;
	/* the fixed CA replaces the one ca_init made */
	p = tu_path(dir, CA_KEY_FILE);
	if (tu_write(p, ca_key, sizeof(ca_key) - 1) == -1)
		abort();
	free(p);
	p = tu_path(dir, CA_CERT_FILE);
	if (tu_write(p, ca_pem, sizeof(ca_pem) - 1) == -1)
		abort();
	free(p);
	if ((ca = ca_open(dir, 0, &err)) == NULL ||
	    (db = ca_db_open(ca, &err)) == NULL)
		goto fail;
	ocsp = crl_ocsp_new(ca, db, time(NULL), &err);
	core_db_close(db);
	if (ocsp == NULL)
		goto fail;
	free(dir);
	atexit(cleanup);
	return 0;
fail:
	fprintf(stderr, "fuzz_ocsp_req: setup: %s\n", err.msg);
	abort();
}

static void
respond(const unsigned char *req, size_t len)
{
	unsigned char *out = NULL;
	const unsigned char *p;
	size_t out_len = 0;
	crl_ocsp_result res;
	OCSP_RESPONSE *resp;

	if (crl_ocsp_respond(ocsp, req, len, 1800000000, fake_lookup, NULL,
	    &out, &out_len, &res) == -1)
		return;
	/* whatever we answer must parse back with the status we reported */
	p = out;
	if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out_len)) == NULL ||
	    OCSP_response_status(resp) != res.status)
		__builtin_trap();
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char *s;

	respond(data, size);
	/* the GET form: the bytes as the path after /ocsp/ */
	if (size > 0 && size < 64 * 1024 && (s = malloc(size + 1)) != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		if (web_ocsp_get_decode(s, &der, &len) == 0) {
			respond(der, len);
			free(der);
		}
		free(s);
	}
	return 0;
}
