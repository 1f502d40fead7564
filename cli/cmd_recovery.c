/*
 * cmd_recovery.c - `lockbox recovery request|pending|show|approve|deny|
 * fetch`: the M-of-N recovery workflow from the operators' side, over
 * HTTPS (cli/http.c).  The secrets stay on the operators' machines: the
 * officer's client makes the request's one-time key and keeps it (0600)
 * under --dir; an agent's client decrypts its own shares and re-encrypts
 * them to the one-time certificate, after checking that the requesting
 * officer's credential signed it; the officer's client combines the shares,
 * decrypts and checks each key and writes one PKCS#12.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "archive/archive.h"
#include "cli/cli.h"
#include "cli/http.h"

#define ONETIME_DAYS 30
#define ONETIME_CN   "lockbox recovery request"
#define API          "/api/v1/recovery/requests"

static const char recovery_help[] =
"usage: lockbox recovery request --email A --reason TEXT [--serial S]\n"
"                                [--dir DIR] CONNECTION\n"
"       lockbox recovery pending [--json] CONNECTION\n"
"       lockbox recovery show REQ [--json] CONNECTION\n"
"       lockbox recovery approve REQ [--yes] CONNECTION\n"
"       lockbox recovery deny REQ --reason TEXT CONNECTION\n"
"       lockbox recovery fetch REQ --out-p12 FILE [--format modern|legacy]\n"
"                              [--serial S] [--p12-pass-file F] [--dir DIR]\n"
"                              CONNECTION\n"
"\n"
"CONNECTION: --server URL --ca-cert FILE --cred FILE.p12\n"
"            [--cred-pass-file F]\n"
"\n"
"Recovers escrowed encryption keys when M of the N recovery agents agree.\n"
"\n"
"  request   (recovery officer) opens a request for every escrowed key of\n"
"            --email (or the one --serial).  A one-time RSA-3072 key is made\n"
"            here, its certificate signed by your credential; the key stays\n"
"            in DIR/REQ.key (0600; DIR defaults to ~/.lockbox/recovery).\n"
"            Prints the request id alone on the last line.\n"
"  pending   (recovery agent) lists the requests awaiting your approval.\n"
"  show      shows a request and how many approvals it has.\n"
"  approve   (recovery agent) shows who asks, for whom and why, asks for\n"
"            confirmation when standard input is a terminal (--yes skips\n"
"            it), then decrypts your shares here and re-encrypts them to\n"
"            the request's one-time key - after checking that the\n"
"            requesting officer's credential signed that key.\n"
"  deny      (recovery agent holding a share, or the requester) ends the\n"
"            request: it releases nothing thereafter.\n"
"  fetch     (the requester, once approved) combines the shares, decrypts\n"
"            and checks every key against its certificate, and writes one\n"
"            PKCS#12 with all keys, their certificates and the CA chain to\n"
"            --out-p12, its generated password to FILE.pass (0600) unless\n"
"            --p12-pass-file names one.  modern (default): PBES2\n"
"            AES-256-CBC, PBKDF2-SHA256, HMAC-SHA256 MAC; legacy:\n"
"            PBE-SHA1-3DES, SHA-1 MAC (gpgsm 2.2).  Nothing is written when\n"
"            any key fails to authenticate.  May be repeated until the\n"
"            request expires.  --serial S writes only that key (gpgsm 2.2\n"
"            imports just the first key of a PKCS#12 file).\n"
"\n"
"  --server URL       the daemon, https://HOST:PORT\n"
"  --ca-cert FILE     the CA chain the server's certificate must verify\n"
"                     against (also checks the officer's signature)\n"
"  --cred FILE.p12    your operator credential; its password comes from\n"
"                     FILE.p12.pass, --cred-pass-file or the terminal\n";

/* Which subcommand may take an option. */
#define S_REQUEST 0x01
#define S_PENDING 0x02
#define S_SHOW    0x04
#define S_APPROVE 0x08
#define S_DENY    0x10
#define S_FETCH   0x20
#define S_ALL     0x3f

struct ropts {
	const char *server, *ca_cert, *cred, *cred_pass;
	const char *email, *reason, *serial, *dir, *out_p12, *p12_pass;
	enum ca_p12_format format;
	bool yes, json;
	const char *req;            /* REQ, the positional argument */
};

/*
 * Parses a subcommand's options (sub: which one) into o.  Returns -1 to go
 * on, else the exit code (0 after --help, 2 on a usage error).
 */
static int
parse(int argc, char **argv, unsigned sub, struct ropts *o)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 'S' },
		{ "ca-cert", required_argument, NULL, 'C' },
		{ "cred", required_argument, NULL, 'c' },
		{ "cred-pass-file", required_argument, NULL, 'p' },
		{ "email", required_argument, NULL, 'e' },
		{ "reason", required_argument, NULL, 'r' },
		{ "serial", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "out-p12", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "p12-pass-file", required_argument, NULL, 'P' },
		{ "yes", no_argument, NULL, 'y' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		int c;
		unsigned subs;
	} allowed[] = {
		{ 'S', S_ALL }, { 'C', S_ALL }, { 'c', S_ALL }, { 'p', S_ALL },
		{ 'e', S_REQUEST }, { 'r', S_REQUEST | S_DENY },
		{ 's', S_REQUEST | S_FETCH }, { 'd', S_REQUEST | S_FETCH },
		{ 'o', S_FETCH }, { 'f', S_FETCH }, { 'P', S_FETCH },
		{ 'y', S_APPROVE }, { 'j', S_PENDING | S_SHOW },
	};
	size_t i;
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = cli_getopt(argc, argv, opts, recovery_help)) != -1) {
		if (c == -2)
			return 0;
		if (c == -3)
			return EXIT_USAGE;
		for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			if (allowed[i].c == c)
				break;
		if (i == sizeof(allowed) / sizeof(allowed[0]) ||
		    (allowed[i].subs & sub) == 0)
			return cli_usage("recovery", "%s does not take option "
			    "'%s'", argv[0], argv[optind - 1]);
		switch (c) {
		case 'S':
			o->server = optarg;
			break;
		case 'C':
			o->ca_cert = optarg;
			break;
		case 'c':
			o->cred = optarg;
			break;
		case 'p':
			o->cred_pass = optarg;
			break;
		case 'e':
			o->email = optarg;
			break;
		case 'r':
			o->reason = optarg;
			break;
		case 's':
			o->serial = optarg;
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'o':
			o->out_p12 = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "modern") == 0)
				o->format = CA_P12_MODERN;
			else if (strcmp(optarg, "legacy") == 0)
				o->format = CA_P12_LEGACY;
			else
				return cli_usage("recovery", "--format is "
				    "modern or legacy");
			break;
		case 'P':
			o->p12_pass = optarg;
			break;
		case 'y':
			o->yes = true;
			break;
		case 'j':
			o->json = true;
			break;
		}
	}
	if (sub & (S_SHOW | S_APPROVE | S_DENY | S_FETCH)) {
		if (optind + 1 != argc)
			return cli_usage("recovery", "%s needs one request id",
			    argv[0]);
		o->req = argv[optind];
		if (!archive_request_id_valid(o->req))
			return cli_usage("recovery", "'%s' is not a request id "
			    "(%d lowercase hex digits)", o->req,
			    ARCHIVE_REQUEST_ID_LEN);
	} else if (optind != argc) {
		return cli_usage("recovery", "unexpected argument '%s'",
		    argv[optind]);
	}
	if (o->server == NULL || o->ca_cert == NULL || o->cred == NULL)
		return cli_usage("recovery", "--server, --ca-cert and --cred "
		    "are required");
	if (strncmp(o->server, "https://", 8) != 0)
		return cli_usage("recovery", "--server must be an https:// "
		    "URL");
	return -1;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* A base64 string of a server answer (bounded by the answer's size). */
static int
b64_decode(const char *s, unsigned char **out, size_t *len)
{
	return core_b64_decode(s, s != NULL ? strlen(s) : 0,
	    (size_t)64 * 1024 * 1024, 0, out, len);
}

static X509 *
pem_cert(const char *pem, lb_err *err)
{
	return ca_cert_parse((const unsigned char *)pem, strlen(pem), err);
}

/* The SHA-256 fingerprint of a certificate, "AB:CD:...". */
static void
fingerprint(X509 *x, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (i = 0; i < n && 3 * (size_t)i + 3 <= outlen; i++)
		snprintf(out + 3 * (size_t)i, outlen - 3 * (size_t)i, "%02X%s",
		    md[i],
		    i + 1 < n ? ":" : "");
}

/* DIR: --dir, else ~/.lockbox/recovery; created 0700 when absent. */
static char *
key_dir(const char *opt, lb_err *err)
{
	return cli_user_dir(opt, ".lockbox/recovery", "one-time keys", err);
}

/* The one-time key's file names in dir. */
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

/*
 * The one-time certificate: CN "lockbox recovery request", 30 days, key
 * encipherment, issued (signed) by the officer's credential so that agents
 * can tell it is the requester's and not one the server slipped in.
 */
static X509 *
onetime_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *signer_cert,
    lb_err *err)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509_EXTENSION *ext = NULL;
	X509V3_CTX ctx;
	unsigned char sn[16];
	BIGNUM *bn = NULL;
	bool ok = false;

	sn[0] = 0;
	if (x == NULL || name == NULL || RAND_bytes(sn, sizeof(sn)) != 1)
		goto out;
	sn[0] &= 0x7f;
	sn[0] |= 0x40;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    (bn = BN_bin2bn(sn, sizeof(sn), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)ONETIME_CN, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(signer_cert)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)ONETIME_DAYS * 86400) == NULL ||
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
	BN_free(bn);
	return x;
}

/* One line per request, for `pending` and after `request`. */
static void
print_request(json_t *rq)
{
	printf("%s  %s\n  requested by %s for the keys of %s (%zu key(s))\n"
	    "  reason: %s\n  created %s, expires %s; %lld of %lld approvals\n",
	    jstr(rq, "id"), jstr(rq, "status"), jstr(rq, "requester_email"),
	    jstr(rq, "email"), json_array_size(json_object_get(rq, "records")),
	    jstr(rq, "reason"), jstr(rq, "created"), jstr(rq, "expires"),
	    (long long)json_integer_value(json_object_get(rq, "approvals")),
	    (long long)json_integer_value(json_object_get(rq, "threshold")));
	if (json_object_get(rq, "denied_by") != NULL)
		printf("  denied by %s: %s\n", jstr(rq, "denied_by"),
		    jstr(rq, "deny_reason"));
}

/* ------------------------------------------------------------------ */
/* request                                                             */

static int
rec_request(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 };
	cli_http *h = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	json_t *body = NULL, *resp = NULL, *recs;
	char *dir = NULL, *kpath = NULL, *cpath = NULL, fp[100];
	const char *id;
	BIO *bio = NULL;
	char *pem;
	long n;
	size_t i;
	int rc;

	if ((rc = parse(argc, argv, S_REQUEST, &o)) != -1)
		return rc;
	if (o.email == NULL || o.reason == NULL)
		return cli_usage("recovery", "request needs --email and "
		    "--reason");
	if (!core_email_valid(o.email))
		return cli_usage("recovery", "'%s' is not an e-mail address",
		    o.email);
	if ((dir = key_dir(o.dir, &err)) == NULL)
		goto fail;
	if (access(dir, W_OK) == -1) {
		lb_err_set(&err, LB_EINVAL, "%s: %s: the one-time key could "
		    "not be kept", dir, strerror(errno));
		goto fail;
	}
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    (key = ca_keygen(CA_KEY_RSA3072, &err)) == NULL ||
	    (cert = onetime_cert(key, cli_http_get0_key(h),
	    cli_http_get0_cert(h), &err)) == NULL)
		goto fail;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, cert) != 1 ||
	    (n = BIO_get_mem_data(bio, &pem)) <= 0 ||
	    (body = json_object()) == NULL ||
	    json_object_set_new(body, "email", json_string(o.email)) == -1 ||
	    json_object_set_new(body, "reason", json_string(o.reason)) == -1 ||
	    json_object_set_new(body, "request_cert", json_stringn(pem,
	    (size_t)n)) == -1 ||
	    (o.serial != NULL && json_object_set_new(body, "serial",
	    json_string(o.serial)) == -1)) {
		lb_err_set(&err, LB_EINVAL, "cannot build the request (is the "
		    "reason valid UTF-8?)");
		goto fail;
	}
	if (cli_http_json(h, "POST", API, body, &resp, NULL, &err) == -1)
		goto fail;
	id = jstr(resp, "id");
	if (!archive_request_id_valid(id)) {
		lb_err_set(&err, LB_EINTERNAL, "the server answered no request "
		    "id");
		goto fail;
	}
	if (onetime_paths(dir, id, &kpath, &cpath) == -1) {
		lb_err_set(&err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	if (ca_key_write(kpath, key, NULL, true, &err) == -1 ||
	    core_file_write(cpath, pem, (size_t)n, 0600, false, &err) == -1) {
		fprintf(stderr, "lockbox: request %s is open, but its "
		    "one-time key could not be kept: withdraw it with "
		    "'lockbox recovery deny %s --reason ...'\n", id, id);
		goto fail;
	}
	fingerprint(cert, fp, sizeof(fp));
	print_request(resp);
	recs = json_object_get(resp, "records");
	for (i = 0; i < json_array_size(recs); i++)
		printf("  key serial %s (threshold %lld)\n",
		    jstr(json_array_get(recs, i), "serial"), (long long)
		    json_integer_value(json_object_get(json_array_get(recs, i),
		    "threshold")));
	printf("one-time key: %s (keep it until the keys are fetched)\n"
	    "one-time certificate SHA-256: %s\n%s\n", kpath, fp, id);
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	BIO_free(bio);
	json_decref(body);
	json_decref(resp);
	EVP_PKEY_free(key);
	X509_free(cert);
	cli_http_free(h);
	free(kpath);
	free(cpath);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* pending, show, deny                                                 */

static int
rec_pending(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 };
	cli_http *h = NULL;
	json_t *resp = NULL, *list;
	size_t i;
	int rc;

	if ((rc = parse(argc, argv, S_PENDING, &o)) != -1)
		return rc;
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_json(h, "GET", API "?pending=1", NULL, &resp, NULL,
	    &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	list = json_object_get(resp, "requests");
	if (o.json) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (json_array_size(list) == 0) {
		printf("no recovery request awaits you\n");
	}
	for (i = 0; !o.json && i < json_array_size(list); i++)
		print_request(json_array_get(list, i));
	rc = 0;
out:
	json_decref(resp);
	cli_http_free(h);
	return rc;
}

static int
rec_show(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 };
	cli_http *h = NULL;
	json_t *resp = NULL, *recs, *r;
	char path[128];
	size_t i;
	int rc;

	if ((rc = parse(argc, argv, S_SHOW, &o)) != -1)
		return rc;
	snprintf(path, sizeof(path), API "/%s", o.req);
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_json(h, "GET", path, NULL, &resp, NULL, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	json_object_del(resp, "shares");
	if (o.json) {
		json_dumpf(resp, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_request(resp);
		recs = json_object_get(resp, "records");
		json_array_foreach(recs, i, r) {
			printf("  key serial %s: %lld of %lld approvals\n",
			    jstr(r, "serial"), (long long)json_integer_value(
			    json_object_get(r, "approvals")), (long long)
			    json_integer_value(json_object_get(r,
			    "threshold")));
		}
	}
	rc = 0;
out:
	json_decref(resp);
	cli_http_free(h);
	return rc;
}

static int
rec_deny(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 };
	cli_http *h = NULL;
	json_t *body = NULL, *resp = NULL;
	char path[128];
	int rc;

	if ((rc = parse(argc, argv, S_DENY, &o)) != -1)
		return rc;
	if (o.reason == NULL || o.reason[0] == '\0')
		return cli_usage("recovery", "deny needs --reason TEXT");
	snprintf(path, sizeof(path), API "/%s/deny", o.req);
	if ((body = json_pack("{s:s}", "reason", o.reason)) == NULL) {
		lb_err_set(&err, LB_EINVAL, "the reason must be UTF-8 text");
		rc = cli_fail(&err);
		goto out;
	}
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_json(h, "POST", path, body, &resp, NULL, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("recovery request %s denied: it releases nothing\n", o.req);
	rc = 0;
out:
	json_decref(body);
	json_decref(resp);
	cli_http_free(h);
	return rc;
}

/* ------------------------------------------------------------------ */
/* approve                                                             */

/* The first rfc822Name of a certificate's subjectAltName, or NULL. */
static bool
cert_has_email(X509 *x, const char *email)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	const GENERAL_NAME *g;
	const char *s;
	bool found = false;
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(gens) && !found; i++) {
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

/*
 * The checks an agent's client makes before releasing anything: the
 * requester's credential chains to --ca-cert and names the requester's
 * e-mail, and it signed the one-time certificate, an RSA key of at least
 * 3072 bits.  A server that swapped in a key of its own fails here.
 */
static int
check_request(json_t *rq, const char *ca_file, X509 **req_cert, lb_err *err)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509 *officer = NULL, *onetime = NULL;
	EVP_PKEY *pub;
	int rc = -1;

	*req_cert = NULL;
	if ((officer = pem_cert(jstr(rq, "requester_cert"), err)) == NULL ||
	    (onetime = pem_cert(jstr(rq, "request_cert"), err)) == NULL)
		goto out;
	if ((store = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(store, ca_file) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, officer, NULL) != 1 ||
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
	if (!cert_has_email(officer, jstr(rq, "requester_email"))) {
		lb_err_set(err, LB_EINVAL, "the requester's credential is not "
		    "%s's: refusing to release a share",
		    jstr(rq, "requester_email"));
		goto out;
	}
	pub = X509_get0_pubkey(onetime);
	if (X509_verify(onetime, X509_get0_pubkey(officer)) != 1 ||
	    pub == NULL || !EVP_PKEY_is_a(pub, "RSA") ||
	    EVP_PKEY_get_bits(pub) < 3072) {
		lb_err_set(err, LB_EINVAL, "the request's one-time key is not "
		    "an RSA-3072 key signed by %s's credential: refusing to "
		    "release a share", jstr(rq, "requester_email"));
		goto out;
	}
	*req_cert = onetime;
	onetime = NULL;
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(officer);
	X509_free(onetime);
	return rc;
}

static bool
confirm(void)
{
	char line[16];

	fputs("Approve? [y/N] ", stdout);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	return strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0;
}

static int
rec_approve(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 }, sub;
	cli_http *h = NULL;
	json_t *rq = NULL, *resp = NULL, *body = NULL, *arr, *sh = NULL, *recs,
	    *e;
	X509 *req_cert = NULL;
	unsigned char *cms = NULL, *wrapped = NULL;
	size_t cms_len = 0, wlen = 0, i;
	char path[128], fp[100];
	int rc;

	if ((rc = parse(argc, argv, S_APPROVE, &o)) != -1)
		return rc;
	snprintf(path, sizeof(path), API "/%s", o.req);
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_json(h, "GET", path, NULL, &rq, NULL, &err) == -1)
		goto fail;
	recs = json_object_get(rq, "records");
	arr = json_object_get(rq, "shares");
	printf("Recovery request %s (%s)\n  who asks:  %s\n  for whom:  %s "
	    "(%zu escrowed key(s))\n  why:       %s\n  created %s, expires "
	    "%s; %lld of %lld approvals so far\n", o.req, jstr(rq, "status"),
	    jstr(rq, "requester_email"), jstr(rq, "email"),
	    json_array_size(recs), jstr(rq, "reason"), jstr(rq, "created"),
	    jstr(rq, "expires"),
	    (long long)json_integer_value(json_object_get(rq, "approvals")),
	    (long long)json_integer_value(json_object_get(rq, "threshold")));
	fflush(stdout);
	if ((body = json_object()) == NULL || (sh = json_array()) == NULL ||
	    json_object_set_new(body, "shares", sh) == -1) {
		lb_err_set(&err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	/*
	 * Nothing to hand in (not pending, or no share of ours): the server
	 * decides, says why and audits the attempt.
	 */
	if (strcmp(jstr(rq, "status"), "pending") != 0 ||
	    json_array_size(arr) == 0)
		goto post;
	if (check_request(rq, o.ca_cert, &req_cert, &err) == -1)
		goto fail;
	fingerprint(req_cert, fp, sizeof(fp));
	printf("  one-time certificate SHA-256: %s (signed by %s's "
	    "credential)\n", fp, jstr(rq, "requester_email"));
	fflush(stdout);
	if (!o.yes && isatty(STDIN_FILENO) && !confirm()) {
		lb_err_set(&err, LB_EINVAL, "not approved");
		goto fail;
	}
	json_array_foreach(arr, i, e) {
		if (b64_decode(jstr(e, "cms"), &cms, &cms_len) == -1) {
			lb_err_set(&err, LB_EINVAL, "the server sent a share "
			    "that is not base64");
			goto fail;
		}
		lb_err_clear(&sub);
		if (archive_share_rewrap(cli_http_get0_key(h),
		    cli_http_get0_cert(h), cms, cms_len, req_cert, &wrapped,
		    &wlen, &sub) == -1) {
			lb_err_set(&err, sub.code, "your share of serial %s: "
			    "%s", jstr(e, "serial"), sub.msg);
			goto fail;
		}
		if (json_array_append_new(sh, json_pack("{s:O, s:o}",
		    "record_id", json_object_get(e, "record_id"), "cms",
		    ca_json_b64(wrapped, wlen))) == -1) {
			lb_err_set(&err, LB_EINTERNAL, "out of memory");
			goto fail;
		}
		free(cms);
		OPENSSL_free(wrapped);
		cms = wrapped = NULL;
	}
post:
	snprintf(path, sizeof(path), API "/%s/approve", o.req);
	if (cli_http_json(h, "POST", path, body, &resp, NULL, &err) == -1)
		goto fail;
	printf("approved recovery request %s with %zu share(s): %lld of "
	    "%lld approvals, request %s\n", o.req, json_array_size(sh),
	    (long long)json_integer_value(json_object_get(resp, "approvals")),
	    (long long)json_integer_value(json_object_get(resp, "threshold")),
	    jstr(resp, "status"));
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	free(cms);
	OPENSSL_free(wrapped);
	X509_free(req_cert);
	json_decref(rq);
	json_decref(resp);
	json_decref(body);
	cli_http_free(h);
	return rc;
}

/* ------------------------------------------------------------------ */
/* fetch                                                               */

static STACK_OF(X509) *
pem_chain(const char *pem, lb_err *err)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x;

	while (chain != NULL && bio != NULL &&
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(chain, x) <= 0) {
			X509_free(x);
			break;
		}
	ERR_clear_error();
	BIO_free(bio);
	if (chain == NULL || sk_X509_num(chain) == 0) {
		sk_X509_pop_free(chain, X509_free);
		lb_err_set(err, LB_EINVAL, "the package holds no CA chain");
		return NULL;
	}
	return chain;
}

/* Opens one record of the package with the one-time key. */
static EVP_PKEY *
open_record(json_t *r, EVP_PKEY *otkey, X509 *otcert, X509 **cert,
    lb_err *err)
{
	unsigned char *iv = NULL, *tag = NULL, *ct = NULL;
	unsigned char **cms = NULL;
	size_t ivl = 0, tagl = 0, ctl = 0, *lens = NULL, n = 0, i;
	json_t *shares = json_object_get(r, "shares");
	const char *serial = jstr(r, "serial");
	EVP_PKEY *key = NULL;
	json_int_t threshold;

	*cert = NULL;
	if (strcmp(jstr(r, "key_alg"), "aes-256-gcm") != 0 ||
	    strcmp(jstr(r, "share_alg"), "shamir-gf256") != 0 ||
	    strcmp(jstr(r, "share_wrap"), "cms-rsaes-oaep-sha256-aes256") !=
	    0) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s uses "
		    "algorithms this lockbox does not know (%s, %s, %s)",
		    serial, jstr(r, "key_alg"), jstr(r, "share_alg"),
		    jstr(r, "share_wrap"));
		goto out;
	}
	n = json_array_size(shares);
	threshold = json_integer_value(json_object_get(r, "threshold"));
	if (threshold < 1 || threshold > 255) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s has a "
		    "threshold of %lld: not 1 to 255", serial,
		    (long long)threshold);
		goto out;
	}
	if ((*cert = pem_cert(jstr(r, "cert"), err)) == NULL)
		goto out;
	if (b64_decode(jstr(r, "iv"), &iv, &ivl) == -1 ||
	    ivl != ARCHIVE_IV_LEN ||
	    b64_decode(jstr(r, "tag"), &tag, &tagl) == -1 ||
	    tagl != ARCHIVE_TAG_LEN ||
	    b64_decode(jstr(r, "ciphertext"), &ct, &ctl) == -1 ||
	    (cms = calloc(n + 1, sizeof(*cms))) == NULL ||
	    (lens = calloc(n + 1, sizeof(*lens))) == NULL) {
		lb_err_set(err, LB_EINVAL, "escrow record for serial %s is "
		    "malformed in the package", serial);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (b64_decode(json_string_value(json_array_get(shares, i)),
		    &cms[i], &lens[i]) == -1) {
			lb_err_set(err, LB_EINVAL, "a share of serial %s is "
			    "not base64", serial);
			goto out;
		}
	key = archive_record_open(*cert, jstr(r, "email"), iv, tag, ct, ctl,
	    (int)threshold, otkey, otcert, (const unsigned char *const *)cms, lens, n, err);
out:
	for (i = 0; cms != NULL && i < n; i++)
		free(cms[i]);
	free(cms);
	free(lens);
	free(iv);
	free(tag);
	free(ct);
	if (key == NULL) {
		X509_free(*cert);
		*cert = NULL;
	}
	return key;
}

/* A new array of the package's records whose serial is serial, or NULL
 * with err. */
static json_t *
pick_serial(json_t *recs, const char *serial, const char *req, lb_err *err)
{
	char want[130], have[130];
	json_t *r, *out = json_array();
	size_t i;

	if (out == NULL || ca_serial_normalise(serial, want,
	    sizeof(want)) == -1) {
		json_decref(out);
		lb_err_set(err, LB_EINVAL, "'%s' is not a serial number",
		    serial);
		return NULL;
	}
	json_array_foreach(recs, i, r)
		if (ca_serial_normalise(jstr(r, "serial"), have,
		    sizeof(have)) == 0 && strcmp(have, want) == 0)
			json_array_append(out, r);
	if (json_array_size(out) == 0) {
		json_decref(out);
		lb_err_set(err, LB_EINVAL, "recovery request %s covers no key "
		    "with serial %s", req, want);
		return NULL;
	}
	return out;
}

static int
rec_fetch(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 };
	cli_http *h = NULL;
	json_t *pkg = NULL, *recs, *picked = NULL;
	EVP_PKEY *otkey = NULL, **keys = NULL;
	X509 *otcert = NULL, **certs = NULL;
	STACK_OF(X509) *chain = NULL;
	char *dir = NULL, *kpath = NULL, *cpath = NULL, **names = NULL;
	unsigned char *buf = NULL;
	size_t len = 0, n = 0, i;
	char path[128];
	int rc;

	if ((rc = parse(argc, argv, S_FETCH, &o)) != -1)
		return rc;
	if (o.out_p12 == NULL)
		return cli_usage("recovery", "fetch needs --out-p12 FILE");
	if ((dir = key_dir(o.dir, &err)) == NULL)
		goto fail;
	if (onetime_paths(dir, o.req, &kpath, &cpath) == -1) {
		lb_err_set(&err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	if (access(kpath, R_OK) == -1) {
		lb_err_set(&err, LB_EINVAL, "no one-time key for request %s "
		    "(%s): fetch where the request was made, with its --dir",
		    o.req, kpath);
		goto fail;
	}
	if ((otkey = ca_key_read(kpath, NULL, &err)) == NULL ||
	    core_file_read(cpath, (size_t)64 * 1024, &buf, &len, &err) == -1 ||
	    (otcert = ca_cert_parse(buf, len, &err)) == NULL)
		goto fail;
	if (X509_check_private_key(otcert, otkey) != 1) {
		ERR_clear_error();
		lb_err_set(&err, LB_EINVAL, "%s and %s do not belong together",
		    kpath, cpath);
		goto fail;
	}
	snprintf(path, sizeof(path), API "/%s/package", o.req);
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_json(h, "GET", path, NULL, &pkg, NULL, &err) == -1)
		goto fail;
	recs = json_object_get(pkg, "records");
	if (o.serial != NULL) {
		if ((picked = pick_serial(recs, o.serial, o.req, &err)) == NULL)
			goto fail;
		recs = picked;
	}
	if ((n = json_array_size(recs)) == 0) {
		lb_err_set(&err, LB_EINVAL, "the package holds no key");
		goto fail;
	}
	if ((keys = calloc(n, sizeof(EVP_PKEY *))) == NULL ||
	    (certs = calloc(n, sizeof(X509 *))) == NULL ||
	    (names = calloc(n, sizeof(*names))) == NULL) {
		lb_err_set(&err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	/* every key must open before anything is written */
	for (i = 0; i < n; i++) {
		json_t *r = json_array_get(recs, i);

		if ((keys[i] = open_record(r, otkey, otcert, &certs[i],
		    &err)) == NULL)
			goto fail;
		if (asprintf(&names[i], "%s (%s)", jstr(r, "email"),
		    jstr(r, "serial")) == -1) {
			names[i] = NULL;
			lb_err_set(&err, LB_EINTERNAL, "out of memory");
			goto fail;
		}
	}
	if ((chain = pem_chain(jstr(pkg, "chain"), &err)) == NULL ||
	    ca_p12_write_multi(o.out_p12, o.p12_pass, keys, certs,
	    (const char *const *)names, n, chain, o.format, &err) == -1)
		goto fail;
	printf("recovered %zu key(s) of %s:", n, jstr(pkg, "email"));
	for (i = 0; i < n; i++)
		printf(" %s", jstr(json_array_get(recs, i), "serial"));
	printf("\nwritten to %s (%s PKCS#12)", o.out_p12,
	    o.format == CA_P12_LEGACY ? "legacy" : "modern");
	if (o.p12_pass == NULL)
		printf(", its password in %s.pass", o.out_p12);
	putchar('\n');
	if (o.format == CA_P12_LEGACY && n > 1)
		printf("note: gpgsm 2.2 imports only the first key of a "
		    "PKCS#12 file; write one file per key with --serial\n");
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	for (i = 0; i < n; i++) {
		if (keys != NULL)
			EVP_PKEY_free(keys[i]);
		if (certs != NULL)
			X509_free(certs[i]);
		if (names != NULL)
			free(names[i]);
	}
	free(keys);
	free(certs);
	free(names);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(otkey);
	X509_free(otcert);
	free(buf);
	json_decref(picked);
	json_decref(pkg);
	cli_http_free(h);
	free(kpath);
	free(cpath);
	free(dir);
	return rc;
}

int
cmd_recovery(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {
		{ "request", rec_request },
		{ "pending", rec_pending },
		{ "show", rec_show },
		{ "approve", rec_approve },
		{ "deny", rec_deny },
		{ "fetch", rec_fetch },
	};
	size_t i;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(recovery_help, stdout);
		return 0;
	}
	for (i = 0; argc >= 2 && i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(argc - 1, argv + 1);
	return cli_usage("recovery", "expected request, pending, show, "
	    "approve, deny or fetch");
}
