/*
 * issue.c - the issuance benchmark's C side, driven by bench/run.sh.
 *
 *   issue csrs N DIR             writes N P-256 PKCS#10 requests (PEM) as
 *                                DIR/NNNNN.csr, listed in DIR/list
 *   issue init KEYTYPE DIR       creates a CA with ca_init (ec-p256, rsa-3072)
 *   issue run DIR CSRDIR N T     issues the first N requests of CSRDIR from
 *                                the CA in DIR with T threads, and prints
 *                                one line ending "rate=R" (certificates
 *                                per second)
 *   issue run-signer DIR CSRDIR N T
 *                                the same with the CA key in two signer
 *                                processes (ca_signer_start), as `lockbox
 *                                serve` runs on two cores: what privilege
 *                                separation costs
 *
 * `run` measures the library path a server takes for every request: the
 * CSR is parsed and its signature verified (ca_csr_parse), the certificate
 * is built and signed (ca_sign_cert) and stored durably with its audit row
 * through the group committer (ca_issue_grouped returns only after the
 * SQLite WAL commit, synchronous=FULL).  The requests are read into memory
 * before the clock starts; the clock stops when the last thread returns.
 * Afterwards the stored rows are counted, so a run that lost certificates
 * fails instead of reporting a rate.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "core/core.h"
#include "bench/bench.h"
#include "tests/unit/testutil.h"

#define MAX_CERTS   100000
#define MAX_THREADS 256
#define CSR_MAX     (64 * 1024)

/* What the worker threads share. */
struct job {
	ca_ctx *ca;
	core_committer *committer;
	unsigned char **csr;
	size_t *csr_len;
	int n;
	atomic_int next;
	atomic_int failed;
};

static void
usage(void)
{
	fprintf(stderr, "usage: issue csrs N DIR\n"
	    "       issue init ec-p256|rsa-3072 DIR\n"
	    "       issue run DIR CSRDIR N THREADS\n"
	    "       issue run-signer DIR CSRDIR N THREADS\n");
	exit(2);
}


/* The subscriber address of request i, as its CSR's subject carries it. */
static void
email_of(int i, char *out, size_t outlen)
{
	snprintf(out, outlen, "user%05d@example.org", i);
}

/* One P-256 request with subject CN=email, emailAddress=email. */
static X509_REQ *
make_csr(int i)
{
	char email[64];

	email_of(i, email, sizeof(email));
	return bench_csr_new(email, true);
}

static int
cmd_csrs(int n, const char *dir)
{
	X509_REQ *req = NULL;
	FILE *f = NULL, *list = NULL;
	char path[4096];
	int i, rc = -1;

	if (mkdir(dir, 0700) == -1) {
		log_warn("mkdir %s", dir);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/list", dir);
	if ((list = fopen(path, "w")) == NULL) {
		log_warn("%s", path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((req = make_csr(i)) == NULL)
			goto out;
		snprintf(path, sizeof(path), "%s/%05d.csr", dir, i);
		if ((f = fopen(path, "w")) == NULL) {
			log_warn("%s", path);
			goto out;
		}
		if (PEM_write_X509_REQ(f, req) != 1) {
			log_openssl(path);
			goto out;
		}
		if (bench_fclose(&f, path) == -1)
			goto out;
		X509_REQ_free(req);
		req = NULL;
		fprintf(list, "%s\n", path);
	}
	snprintf(path, sizeof(path), "%s/list", dir);
	if (bench_fclose(&list, path) == -1)
		goto out;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (list != NULL)
		fclose(list);
	X509_REQ_free(req);
	return rc;
}

static int
cmd_init(const char *type, const char *dir)
{
	ca_init_opts o;
	lb_err err = { 0 };

	memset(&o, 0, sizeof(o));
	o.name = "lockbox bench CA";
	if ((o.key_type = ca_key_type_parse(type)) == CA_KEY_NONE) {
		fprintf(stderr, "issue: unknown key type '%s'\n", type);
		return -1;
	}
	o.admin_p12_pass_file = bench_admin_pass(dir);
	if (ca_init(dir, &o, &err) == -1) {
		fprintf(stderr, "issue: ca_init: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Parses, verifies, signs and durably stores request i. */
static int
issue_one(struct job *j, int i)
{
	X509_REQ *req = NULL;
	X509 *cert = NULL;
	ca_request r;
	lb_err err = { 0 };
	char email[64];
	int rc = -1;

	if ((req = ca_csr_parse(j->csr[i], j->csr_len[i], &err)) == NULL)
		goto out;
	email_of(i, email, sizeof(email));
	memset(&r, 0, sizeof(r));
	r.profile = "smime-sign";
	r.email = email;
	r.pubkey = X509_REQ_get0_pubkey(req);
	r.spki = X509_REQ_get_X509_PUBKEY(req);
	if ((cert = ca_issue_grouped(j->ca, j->committer, &r, "bench",
	    &err)) == NULL)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		fprintf(stderr, "issue: request %d: %s\n", i, err.msg);
	X509_free(cert);
	X509_REQ_free(req);
	return rc;
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	int i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->n)
		if (issue_one(j, i) == -1)
			atomic_fetch_add(&j->failed, 1);
	return NULL;
}

static int
read_csrs(struct job *j, const char *csrdir)
{
	lb_err err = { 0 };
	char path[4096];
	int i;

	if ((j->csr = calloc((size_t)j->n, sizeof(*j->csr))) == NULL ||
	    (j->csr_len = calloc((size_t)j->n, sizeof(*j->csr_len))) == NULL)
		return -1;
	for (i = 0; i < j->n; i++) {
		snprintf(path, sizeof(path), "%s/%05d.csr", csrdir, i);
		if (core_file_read(path, CSR_MAX, &j->csr[i], &j->csr_len[i],
		    &err) == -1) {
			fprintf(stderr, "issue: %s\n", err.msg);
			return -1;
		}
	}
	return 0;
}

static int
cmd_run(const char *dir, const char *csrdir, int n, int nthreads,
    bool signer)
{
	struct job j;
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	pthread_t th[MAX_THREADS];
	lb_err err = { 0 };
	long long before, after, der_bytes;
	double t0, t1;
	int i, started = 0, rc = -1;

	memset(&j, 0, sizeof(j));
	j.n = n;
	atomic_init(&j.next, 0);
	atomic_init(&j.failed, 0);
	if ((ca = ca_open(dir, 0, &err)) == NULL ||
	    (signer && ca_signer_start(ca, NULL, 2, &err) == -1) ||
	    (db = ca_db_open(ca, &err)) == NULL) {
		fprintf(stderr, "issue: %s\n", err.msg);
		goto out;
	}
	before = tu_sql_int(db, "SELECT count(*) FROM certificates");
	if (read_csrs(&j, csrdir) == -1)
		goto out;
	j.ca = ca;
	if ((j.committer = core_committer_new(ca_db_open(ca, &err),
	    &err)) == NULL) {
		fprintf(stderr, "issue: %s\n", err.msg);
		goto out;
	}
	t0 = bench_now();
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&th[i], NULL, worker, &j) != 0) {
			fprintf(stderr, "issue: cannot start thread %d\n", i);
			/* stop the others after their current request */
			atomic_store(&j.next, n);
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	t1 = bench_now();
	if (started < nthreads)
		goto out;
	after = tu_sql_int(db, "SELECT count(*) FROM certificates");
	if (atomic_load(&j.failed) != 0 || after - before != n) {
		fprintf(stderr, "issue: %d requests failed, %lld of %d "
		    "certificates stored\n", atomic_load(&j.failed),
		    after - before, n);
		goto out;
	}
	der_bytes = tu_sql_int(db, "SELECT CAST(avg(length(der)) AS INTEGER) "
	    "FROM (SELECT der FROM certificates ORDER BY rowid DESC LIMIT 100)");
	printf("certs=%d threads=%d seconds=%.3f der_bytes=%lld rate=%.1f\n",
	    n, nthreads, t1 - t0, der_bytes, n / (t1 - t0));
	rc = 0;
out:
	core_committer_free(j.committer);
	for (i = 0; j.csr != NULL && i < n; i++)
		free(j.csr[i]);
	free(j.csr);
	free(j.csr_len);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
main(int argc, char **argv)
{
	int rc = -1;

	log_init("issue", false);
	if (argc == 4 && strcmp(argv[1], "csrs") == 0)
		rc = cmd_csrs(bench_parse_count("issue", argv[2], 1, MAX_CERTS), argv[3]);
	else if (argc == 4 && strcmp(argv[1], "init") == 0)
		rc = cmd_init(argv[2], argv[3]);
	else if (argc == 6 && (strcmp(argv[1], "run") == 0 ||
	    strcmp(argv[1], "run-signer") == 0))
		rc = cmd_run(argv[2], argv[3],
		    bench_parse_count("issue", argv[4], 1, MAX_CERTS),
		    bench_parse_count("issue", argv[5], 1, MAX_THREADS),
		    strcmp(argv[1], "run-signer") == 0);
	else
		usage();
	return rc == 0 ? 0 : 1;
}
