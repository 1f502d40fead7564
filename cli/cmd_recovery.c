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

/* s, or "" for NULL (for printing). */
static const char *
str(const char *s)
{
	return s != NULL ? s : "";
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
	char *dir = NULL, *kpath = NULL, fp[100];
	const char *id;
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
	    (cert = archive_onetime_cert(key, cli_http_get0_key(h),
	    cli_http_get0_cert(h), &err)) == NULL)
		goto fail;
	if ((body = archive_opening_json(o.email, o.serial, o.reason,
	    cert)) == NULL) {
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
	if (archive_onetime_save(dir, id, key, cert, &kpath, &err) == -1) {
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
	json_decref(body);
	json_decref(resp);
	EVP_PKEY_free(key);
	X509_free(cert);
	cli_http_free(h);
	free(kpath);
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
	lb_err err = { 0 };
	cli_http *h = NULL;
	core_http_reply r;
	archive_view v;
	archive_approval ap;
	json_t *resp = NULL, *body = NULL;
	char path[128], fp[100];
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&v, 0, sizeof(v));
	memset(&ap, 0, sizeof(ap));
	if ((rc = parse(argc, argv, S_APPROVE, &o)) != -1)
		return rc;
	snprintf(path, sizeof(path), API "/%s", o.req);
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_api(h, "GET", path, NULL, &r, &err) == -1 ||
	    archive_view_parse(r.body, r.len, &v, &err) == -1)
		goto fail;
	printf("Recovery request %s (%s)\n  who asks:  %s\n  for whom:  %s "
	    "(%zu escrowed key(s))\n  why:       %s\n  created %s, expires "
	    "%s; %lld of %lld approvals so far\n", v.id, v.status,
	    str(v.requester_email), str(v.email), v.nrecords, str(v.reason),
	    str(v.created), str(v.expires), v.approvals, v.threshold);
	fflush(stdout);
	/*
	 * Nothing to hand in (not pending, or no share of ours): the server
	 * decides, says why and audits the attempt.
	 */
	if (strcmp(v.status, "pending") == 0 && v.nshares > 0) {
		if (archive_view_check(&v, o.ca_cert, &err) == -1)
			goto fail;
		fingerprint(v.request_cert, fp, sizeof(fp));
		printf("  one-time certificate SHA-256: %s (signed by %s's "
		    "credential)\n", fp, str(v.requester_email));
		fflush(stdout);
		if (!o.yes && isatty(STDIN_FILENO) && !confirm()) {
			lb_err_set(&err, LB_EINVAL, "not approved");
			goto fail;
		}
		if (archive_view_rewrap(&v, cli_http_get0_key(h),
		    cli_http_get0_cert(h), &ap, &err) == -1)
			goto fail;
	}
	if ((body = archive_approval_json(&ap)) == NULL) {
		lb_err_set(&err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	snprintf(path, sizeof(path), API "/%s/approve", o.req);
	if (cli_http_json(h, "POST", path, body, &resp, NULL, &err) == -1)
		goto fail;
	printf("approved recovery request %s with %zu share(s): %lld of "
	    "%lld approvals, request %s\n", o.req, ap.nshares,
	    (long long)json_integer_value(json_object_get(resp, "approvals")),
	    (long long)json_integer_value(json_object_get(resp, "threshold")),
	    jstr(resp, "status"));
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	archive_approval_clear(&ap);
	archive_view_clear(&v);
	core_http_reply_clear(&r);
	json_decref(resp);
	json_decref(body);
	cli_http_free(h);
	return rc;
}

/* ------------------------------------------------------------------ */
/* fetch                                                               */

static int
rec_fetch(int argc, char **argv)
{
	struct ropts o;
	lb_err err = { 0 };
	cli_http *h = NULL;
	core_http_reply r;
	archive_package pkg;
	archive_opened keys;
	EVP_PKEY *otkey = NULL;
	X509 *otcert = NULL;
	char *dir = NULL;
	size_t i;
	char path[128];
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&pkg, 0, sizeof(pkg));
	memset(&keys, 0, sizeof(keys));
	if ((rc = parse(argc, argv, S_FETCH, &o)) != -1)
		return rc;
	if (o.out_p12 == NULL)
		return cli_usage("recovery", "fetch needs --out-p12 FILE");
	if ((dir = key_dir(o.dir, &err)) == NULL)
		goto fail;
	if (archive_onetime_load(dir, o.req, &otkey, &otcert, &err) == -1)
		goto fail;
	snprintf(path, sizeof(path), API "/%s/package", o.req);
	/* every key must open before anything is written */
	if ((h = cli_http_new(o.server, o.ca_cert, o.cred, o.cred_pass,
	    &err)) == NULL ||
	    cli_http_api(h, "GET", path, NULL, &r, &err) == -1 ||
	    archive_package_parse(r.body, r.len, &pkg, &err) == -1 ||
	    archive_package_open(&pkg, o.serial, otkey, otcert, &keys,
	    &err) == -1 ||
	    ca_p12_write_multi(o.out_p12, o.p12_pass, keys.keys, keys.certs,
	    (const char *const *)keys.names, keys.n, pkg.chain, o.format,
	    &err) == -1)
		goto fail;
	printf("recovered %zu key(s) of %s:", keys.n, str(pkg.email));
	for (i = 0; i < keys.n; i++)
		printf(" %s", keys.serials[i]);
	printf("\nwritten to %s (%s PKCS#12)", o.out_p12,
	    o.format == CA_P12_LEGACY ? "legacy" : "modern");
	if (o.p12_pass == NULL)
		printf(", its password in %s.pass", o.out_p12);
	putchar('\n');
	if (o.format == CA_P12_LEGACY && keys.n > 1)
		printf("note: gpgsm 2.2 imports only the first key of a "
		    "PKCS#12 file; write one file per key with --serial\n");
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	archive_opened_clear(&keys);
	archive_package_clear(&pkg);
	core_http_reply_clear(&r);
	EVP_PKEY_free(otkey);
	X509_free(otcert);
	cli_http_free(h);
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
