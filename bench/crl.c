/*
 * crl.c - the CRL benchmark's C side, driven by bench/run.sh.
 *
 *   crl init DIR          creates an RSA-3072 CA with ca_init
 *   crl fill DIR N INDEX  replaces the CA's certificates with N revoked
 *                         ones (direct SQL, one transaction: a bench), four
 *                         reasons in turn, keyCompromise with an
 *                         invalidity date, and writes the same revocations
 *                         as an `openssl ca` index file to INDEX
 *   crl run DIR           issues one CRL with crl_issue and prints
 *                         "entries=N seconds=S maxrss_kb=K der_bytes=B"
 *
 * `run` is its own process so that its peak resident size (getrusage
 * ru_maxrss) is the issuance's: open, stream rows, build, sort, sign,
 * encode, write pub/ca.crl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/rand.h>

#include "bench/bench.h"
#include "ca/ca.h"
#include "core/core.h"
#include "crl/crl.h"

static void
usage(void)
{
	fprintf(stderr, "usage: crl init DIR\n"
	    "       crl fill DIR N INDEX\n"
	    "       crl run DIR\n");
	exit(2);
}

static void
die(const char *what, const lb_err *err)
{
	fprintf(stderr, "crl: %s: %s\n", what, err != NULL ? err->msg : "");
	exit(1);
}

static int
cmd_init(const char *dir)
{
	ca_init_opts o;
	lb_err err = { 0 };

	memset(&o, 0, sizeof(o));
	o.name = "lockbox Bench CRL CA";
	o.admin_p12_pass_file = bench_admin_pass(dir);
	o.key_type = CA_KEY_RSA3072;
	if (ca_init(dir, &o, &err) == -1)
		die("ca_init", &err);
	return 0;
}

/* "YYMMDDHHMMSSZ" (UTCTime) or, with gen, "YYYYMMDDHHMMSSZ". */
static void
asn1_time(time_t t, bool gen, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y%m%d%H%M%SZ", &tm);
	/* UTCTime: drop the century */
	if (!gen)
		memmove(out, out + 2, strlen(out + 2) + 1);
}

static int
cmd_fill(const char *dir, long n, const char *index)
{
	/* openssl ca's index knows no privilegeWithdrawn: the other four */
	static const int reasons[] = { 1, 3, 4, 5 };
	static const char *const names[] = { "keyCompromise",
	    "affiliationChanged", "superseded", "cessationOfOperation" };
	ca_ctx *ca;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	lb_err err = { 0 };
	unsigned char rnd[16];
	char serial[40], exp[20], rev[20], inv[20];
	time_t now = time(NULL), na = now + 365L * 86400, ra = now - 3600,
	    ia = now - 86400;
	FILE *f;
	long i;
	int k, r;

	if ((ca = ca_open(dir, CA_OPEN_NO_KEY, &err)) == NULL ||
	    (db = ca_db_open(ca, &err)) == NULL)
		die("open", &err);
	if ((f = fopen(index, "w")) == NULL) {
		perror(index);
		return 1;
	}
	asn1_time(na, false, exp, sizeof(exp));
	asn1_time(ra, false, rev, sizeof(rev));
	asn1_time(ia, true, inv, sizeof(inv));
	if (core_db_begin(db, &err) == -1 ||
	    sqlite3_exec(db, "DELETE FROM certificates WHERE serial NOT IN "
	    "(SELECT serial FROM operators)", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO certificates (serial, profile, "
	    "email, subject, not_before, not_after, issued, status, "
	    "revoked, reason, invalidity, spki_sha256, der) VALUES (?, "
	    "'smime-sign', NULL, 'CN=bench', ?, ?, ?, 'revoked', ?, ?, ?, "
	    "'-', x'00')", -1, &st, NULL) != SQLITE_OK)
		die("prepare", &err);
	for (i = 0; i < n; i++) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			die("RAND_bytes", NULL);
		rnd[0] = (unsigned char)((rnd[0] & 0x7f) | 0x10);
		for (k = 0; k < 16; k++)
			snprintf(serial + 2 * k, 3, "%02X", rnd[k]);
		r = (int)(i % 4);
		sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(now - 86400));
		sqlite3_bind_int64(st, 3, (sqlite3_int64)na);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)(now - 86400));
		sqlite3_bind_int64(st, 5, (sqlite3_int64)ra);
		sqlite3_bind_int(st, 6, reasons[r]);
		if (reasons[r] == 1)
			sqlite3_bind_int64(st, 7, (sqlite3_int64)ia);
		else
			sqlite3_bind_null(st, 7);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("insert", NULL);
		sqlite3_reset(st);
		if (reasons[r] == 1)
			fprintf(f, "R\t%s\t%s,%s,%s\t%s\tunknown\t/CN=bench\n",
			    exp, rev, names[r], inv, serial);
		else
			fprintf(f, "R\t%s\t%s,%s\t%s\tunknown\t/CN=bench\n",
			    exp, rev, names[r], serial);
	}
	sqlite3_finalize(st);
	if (core_db_commit(db, &err) == -1)
		die("commit", &err);
	if (fclose(f) != 0) {
		perror(index);
		return 1;
	}
	core_db_close(db);
	ca_free(ca);
	return 0;
}

static int
cmd_run(const char *dir)
{
	ca_ctx *ca;
	sqlite3 *db;
	crl_conf cc;
	crl_info ci;
	lb_err err = { 0 };
	struct timespec t0, t1;
	struct rusage ru;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((ca = ca_open(dir, 0, &err)) == NULL ||
	    (db = ca_db_open(ca, &err)) == NULL ||
	    crl_conf_load(ca_get0_conf(ca), &cc, &err) == -1 ||
	    crl_issue(ca, db, &cc, time(NULL), "bench", &ci, &err) == -1)
		die("crl_issue", &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("entries=%lld seconds=%.3f maxrss_kb=%ld der_bytes=%zu\n",
	    (long long)ci.entries, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, ru.ru_maxrss,
	    ci.der_len);
	core_db_close(db);
	ca_free(ca);
	return 0;
}

int
main(int argc, char **argv)
{
	char *end;
	long n;

	if (argc == 3 && strcmp(argv[1], "init") == 0)
		return cmd_init(argv[2]);
	if (argc == 5 && strcmp(argv[1], "fill") == 0) {
		n = strtol(argv[3], &end, 10);
		if (*end != '\0' || n < 1 || n > 10000000)
			usage();
		return cmd_fill(argv[2], n, argv[4]);
	}
	if (argc == 3 && strcmp(argv[1], "run") == 0)
		return cmd_run(argv[2]);
	usage();
	return 2;
}
