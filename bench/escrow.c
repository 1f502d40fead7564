/*
 * escrow.c - the escrow benchmark's C side, driven by bench/run.sh.
 *
 *   escrow init DIR AGENTS M     creates a P-256 CA with ca_init in DIR,
 *                                adds AGENTS recovery agents (RSA-3072
 *                                keys, generated once, with
 *                                ca_operator_add) and puts in force
 *                                their policy of threshold M
 *   escrow run DIR KEYTYPE ROUNDS SECONDS
 *                                runs at most ROUNDS rounds, stopping
 *                                early after SECONDS, and prints one line
 *                                of key=value pairs ending "escrow_rate=R"
 *
 * A round does three things one after the other, each timed on its own:
 *
 *   keygen  ca_keygen(KEYTYPE), the bare key generation rate;
 *   plain   ca_keygen + ca_issue with profile smime-sign: sign and store
 *           the certificate with its audit row in one committed
 *           transaction (SQLite WAL, synchronous=FULL: one fsync);
 *   escrow  ca_keygen + archive_issue_enc, what `lockbox issue --keygen`
 *           does: the smime-enc certificate, the key check, AES-256-GCM,
 *           the Shamir split, one CMS share per agent, the recombination
 *           check, the CA-signed receipt and the rows, in one committed
 *           transaction (one fsync).
 *
 * Plain and escrow thus differ by the escrow alone (an smime-sign and an
 * smime-enc certificate cost the same to build).  Interleaving the three
 * within each round spreads machine noise evenly over them.  Every
 * generated key is also timed inside plain and escrow, so that run.sh can
 * compute the escrow overhead as (escrow - its own keygen) over the mean
 * of all keygens: RSA key generation times vary by a factor of several,
 * and a difference of two separately measured means of them would hide a
 * 5% overhead in noise.  Afterwards the stored rows are counted, so a run
 * that lost certificates, records or shares fails instead of reporting.
 * One thread: one request at a time, as `lockbox issue --keygen` runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "archive/archive.h"
#include "ca/ca.h"
#include "core/core.h"
#include "bench/bench.h"
#include "tests/unit/testutil.h"

#define MAX_ROUNDS  100000
#define MAX_SECONDS 3600

/* Seconds spent in each part over all rounds. */
struct times {
	double keygen;        /* bare ca_keygen */
	double plain;         /* plain issuance, its keygen included */
	double plain_keygen;  /* the keygen part of plain */
	double escrow;        /* escrowed issuance, its keygen included */
	double escrow_keygen; /* the keygen part of escrow */
};

static void
usage(void)
{
	fprintf(stderr, "usage: escrow init DIR AGENTS THRESHOLD\n"
	    "       escrow run DIR ec-p256|rsa-2048|... ROUNDS SECONDS\n");
	exit(2);
}


/* A P-256 CA with nagents recovery agents and their policy, threshold m. */
static int
cmd_init(const char *dir, int nagents, int m)
{
	ca_init_opts o;
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	EVP_PKEY *key[ARCHIVE_MAX_AGENTS] = { NULL };
	X509 *cert[ARCHIVE_MAX_AGENTS] = { NULL };
	lb_err err = { 0 };
	char name[32], email[64];
	double t0, t1;
	int i, rc = -1;

	if (nagents > ARCHIVE_MAX_AGENTS)
		return -1;
	memset(&o, 0, sizeof(o));
	o.name = "lockbox bench CA";
	o.admin_p12_pass_file = bench_admin_pass(dir);
	o.key_type = CA_KEY_ECP256;
	t0 = bench_now();
	if (ca_init(dir, &o, &err) == -1 ||
	    (ca = ca_open(dir, 0, &err)) == NULL ||
	    (db = ca_db_open(ca, &err)) == NULL)
		goto out;
	t1 = bench_now();
	printf("ca_init_ms=%.0f", (t1 - t0) * 1e3);
	t0 = bench_now();
	for (i = 0; i < nagents; i++) {
		snprintf(name, sizeof(name), "Agent %d", i);
		snprintf(email, sizeof(email), "agent%d@example.org", i);
		if ((key[i] = ca_keygen(CA_KEY_RSA3072, &err)) == NULL ||
		    (cert[i] = ca_operator_add(ca, db, CA_ROLE_RECOVERY_AGENT,
		    name, email, key[i], "bench", &err)) == NULL)
			goto out;
	}
	if (tu_policy_sign_all(db, key, cert, nagents, m) == -1)
		goto out;
	t1 = bench_now();
	printf(" agents=%d threshold=%d agents_ms=%.0f\n", nagents, m,
	    (t1 - t0) * 1e3);
	rc = 0;
out:
	if (rc == -1)
		fprintf(stderr, "escrow: init: %s\n", err.msg);
	for (i = 0; i < nagents; i++) {
		X509_free(cert[i]);
		EVP_PKEY_free(key[i]);
	}
	core_db_close(db);
	ca_free(ca);
	return rc;
}

/* ca_keygen, timed; the key is thrown away. */
static int
bare_keygen(enum ca_key_type kt, struct times *t)
{
	EVP_PKEY *key;
	lb_err err = { 0 };
	double t0 = bench_now();

	if ((key = ca_keygen(kt, &err)) == NULL) {
		fprintf(stderr, "escrow: keygen: %s\n", err.msg);
		return -1;
	}
	t->keygen += bench_now() - t0;
	EVP_PKEY_free(key);
	return 0;
}

/*
 * ca_keygen + ca_issue (smime-sign) or, with escrow, archive_issue_enc,
 * timed as a whole and its keygen.
 */
static int
timed_issue(ca_ctx *ca, sqlite3 *db, enum ca_key_type kt, int i,
    bool escrow, struct times *t)
{
	const char *what = escrow ? "escrow" : "plain";
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	ca_request r;
	lb_err err = { 0 };
	unsigned char *receipt = NULL;
	size_t receipt_len = 0;
	char email[64];
	double t0, t1, t2;
	int rc = -1;

	snprintf(email, sizeof(email), "%s%05d-%s@example.org",
	    escrow ? "user" : "plain", i, ca_key_type_name(kt));
	memset(&r, 0, sizeof(r));
	r.profile = escrow ? NULL : "smime-sign";
	r.email = email;
	t0 = bench_now();
	if ((key = ca_keygen(kt, &err)) == NULL)
		goto out;
	t1 = bench_now();
	r.pubkey = escrow ? NULL : key;
	if ((cert = escrow ? archive_issue_enc(ca, db, &r, key, "bench",
	    &receipt, &receipt_len, &err) : ca_issue(ca, db, &r, "bench",
	    &err)) == NULL)
		goto out;
	t2 = bench_now();
	if (escrow) {
		t->escrow += t2 - t0;
		t->escrow_keygen += t1 - t0;
	} else {
		t->plain += t2 - t0;
		t->plain_keygen += t1 - t0;
	}
	if (escrow && (receipt == NULL || receipt_len == 0)) {
		lb_err_set(&err, LB_EINTERNAL, "no receipt");
		goto out;
	}
	rc = 0;
out:
	if (rc == -1)
		fprintf(stderr, "escrow: %s %d: %s\n", what, i, err.msg);
	OPENSSL_free(receipt);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int
cmd_run(const char *dir, const char *type, int max_rounds, int seconds)
{
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	struct times t;
	lb_err err = { 0 };
	enum ca_key_type kt;
	long long certs0, recs0, shares0, certs1, recs1, shares1, agents;
	double start, kg_all;
	int n = 0, rc = -1;

	memset(&t, 0, sizeof(t));
	if ((kt = ca_key_type_parse(type)) == CA_KEY_NONE) {
		fprintf(stderr, "escrow: unknown key type '%s'\n", type);
		return -1;
	}
	if ((ca = ca_open(dir, 0, &err)) == NULL ||
	    (db = ca_db_open(ca, &err)) == NULL) {
		fprintf(stderr, "escrow: %s\n", err.msg);
		goto out;
	}
	agents = tu_sql_int(db, "SELECT count(*) FROM operators WHERE role = "
	    "'recovery-agent' AND status = 'active'");
	certs0 = tu_sql_int(db, "SELECT count(*) FROM certificates");
	recs0 = tu_sql_int(db, "SELECT count(*) FROM escrow_records");
	shares0 = tu_sql_int(db, "SELECT count(*) FROM escrow_shares");
	start = bench_now();
	while (n < max_rounds && (n == 0 || bench_now() - start < seconds)) {
		if (bare_keygen(kt, &t) == -1 ||
		    timed_issue(ca, db, kt, n, false, &t) == -1 ||
		    timed_issue(ca, db, kt, n, true, &t) == -1)
			goto out;
		n++;
	}
	certs1 = tu_sql_int(db, "SELECT count(*) FROM certificates");
	recs1 = tu_sql_int(db, "SELECT count(*) FROM escrow_records");
	shares1 = tu_sql_int(db, "SELECT count(*) FROM escrow_shares");
	if (certs1 - certs0 != 2LL * n || recs1 - recs0 != n ||
	    shares1 - shares0 != agents * n) {
		fprintf(stderr, "escrow: after %d rounds: %lld certificates "
		    "(want %d), %lld escrow records (want %d), %lld shares "
		    "(want %lld)\n", n, certs1 - certs0, 2 * n, recs1 - recs0,
		    n, shares1 - shares0, agents * n);
		goto out;
	}
	kg_all = (t.keygen + t.plain_keygen + t.escrow_keygen) / (3.0 * n);
	printf("keytype=%s rounds=%d agents=%lld keygen_ms=%.3f "
	    "keygen_all_ms=%.3f plain_ms=%.3f plain_rest_ms=%.3f "
	    "escrow_ms=%.3f escrow_rest_ms=%.3f keygen_rate=%.2f "
	    "keygen_all_rate=%.2f plain_rate=%.2f escrow_rate=%.2f\n",
	    ca_key_type_name(kt), n, agents, 1e3 * t.keygen / n, 1e3 * kg_all,
	    1e3 * t.plain / n, 1e3 * (t.plain - t.plain_keygen) / n,
	    1e3 * t.escrow / n, 1e3 * (t.escrow - t.escrow_keygen) / n,
	    n / t.keygen, 1.0 / kg_all, n / t.plain, n / t.escrow);
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
main(int argc, char **argv)
{
	int rc = -1;

	log_init("escrow", false);
	if (argc == 5 && strcmp(argv[1], "init") == 0)
		rc = cmd_init(argv[2], bench_parse_count("escrow", argv[3], 1,
		    ARCHIVE_MAX_AGENTS), bench_parse_count("escrow", argv[4], 1,
		    ARCHIVE_MAX_AGENTS));
	else if (argc == 6 && strcmp(argv[1], "run") == 0)
		rc = cmd_run(argv[2], argv[3],
		    bench_parse_count("escrow", argv[4], 1, MAX_ROUNDS),
		    bench_parse_count("escrow", argv[5], 1, MAX_SECONDS));
	else
		usage();
	return rc == 0 ? 0 : 1;
}
