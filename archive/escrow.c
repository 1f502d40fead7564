/*
 * escrow.c - archiving an encryption key: checks (the key belongs to the
 * certificate, the certificate is an encryption certificate, enough active
 * agents), AES-256-GCM under a fresh data key with the record's AAD,
 * Shamir split of the data key, one CMS share per agent, proof that M
 * shares recombine, the CA-signed receipt, and the rows - all inside the
 * caller's transaction.  Every plaintext is cleansed before returning.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "archive/archive_int.h"

static int
gcm_seal(const unsigned char *key, const unsigned char *iv,
    const unsigned char *aad, size_t aad_len, const unsigned char *pt,
    size_t pt_len, unsigned char *ct, unsigned char *tag, lb_err *err)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0, rc = -1;

	if (c == NULL ||
	    EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_EncryptUpdate(c, ct, &n, pt, (int)pt_len) != 1 ||
	    EVP_EncryptFinal_ex(c, ct + n, &f) != 1 ||
	    (size_t)n + (size_t)f != pt_len ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ARCHIVE_TAG_LEN,
	    tag) != 1) {
		log_openssl("AES-256-GCM");
		lb_err_set(err, LB_EINTERNAL, "cannot encrypt the key");
	} else {
		rc = 0;
	}
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* Signing-profile keys are never archived: non-repudiation would break. */
static int
check_enc_cert(X509 *cert, lb_err *err)
{
	/* the one extension, not all of them (X509_get_key_usage) */
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, NULL,
	    NULL);
	/* RFC 5280 bits: 0 digitalSignature, 1 nonRepudiation,
	 * 2 keyEncipherment, 4 keyAgreement */
	int ok = ku != NULL && (ASN1_BIT_STRING_get_bit(ku, 2) ||
	    ASN1_BIT_STRING_get_bit(ku, 4)) && !ASN1_BIT_STRING_get_bit(ku, 0) &&
	    !ASN1_BIT_STRING_get_bit(ku, 1);

	ASN1_BIT_STRING_free(ku);
	ERR_clear_error();
	if (!ok)
		return lb_err_set(err, LB_EINVAL, "only encryption keys are "
		    "escrowed: this certificate's key signs (a signing key "
		    "never leaves its owner)");
	return 0;
}

/* 64 lowercase hex digits into 32 bytes. */
static int
hex_raw(const char *hex, unsigned char out[32])
{
	size_t i;
	int hi, lo;

	for (i = 0; i < 32; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int
no_policy(lb_err *err)
{
	return lb_err_set(err, LB_ECONFLICT, "no escrow policy is in force, "
	    "so no encryption key can be escrowed: propose one with 'lockbox "
	    "escrow policy propose' and have its members sign it");
}

/* what load_agents and sealed_current say of an agent gone inactive */
#define AGENT_INACTIVE "agent %s of escrow policy v%d has no active " \
	"credential for the key the policy names: no key can be escrowed " \
	"until a policy without it is in force"

/*
 * The agents of the policy in force as the last escrow found them.
 * Reading and parsing the policy and listing every agent took about 6%
 * of an escrow's own time (bench/escrow.c).  The cache answers only for the
 * same database file and the same policy hash (a policy's text never
 * changes under its hash), and only until the first of the agents'
 * credentials expires.  Whether each agent is still active - not
 * removed, its credential not revoked - is what archive_escrow_store
 * asks inside the transaction that stores the shares (sealed_current),
 * and a failed check empties the cache, so that the next escrow reads
 * the database again.  Copies go out; the certificates are shared
 * references, only read.
 */
static struct {
	char *db_file;
	char hash[65];
	int threshold, version;
	archive_agent *agents;
	size_t n;
	time_t until;
} agents_cache;
static pthread_mutex_t agents_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* n agents copied from src into *dst (calloc'ed, n + 1); -1 when out of
 * memory, with nothing left allocated. */
static int
agents_copy(const archive_agent *src, size_t n, archive_agent **dst)
{
	size_t i;

	if ((*dst = calloc(n + 1, sizeof(**dst))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		(*dst)[i] = src[i];
		(*dst)[i].serial = strdup(src[i].serial);
		(*dst)[i].name = strdup(src[i].name);
		(*dst)[i].email = strdup(src[i].email);
		if (X509_up_ref(src[i].cert) != 1)
			(*dst)[i].cert = NULL;
		if ((*dst)[i].serial == NULL || (*dst)[i].name == NULL ||
		    (*dst)[i].email == NULL || (*dst)[i].cert == NULL) {
			archive_agents_free(*dst, i + 1);
			*dst = NULL;
			return -1;
		}
	}
	return 0;
}

static void
agents_cache_drop(void)
{
	pthread_mutex_lock(&agents_cache_lock);
	archive_agents_free(agents_cache.agents, agents_cache.n);
	free(agents_cache.db_file);
	memset(&agents_cache, 0, sizeof(agents_cache));
	pthread_mutex_unlock(&agents_cache_lock);
}

/* The cached agents of policy hash in db's file, copied; false on a
 * miss. */
static bool
agents_cache_get(sqlite3 *db, const char *hash, archive_agent **agents,
    size_t *n, int *threshold, int *version)
{
	const char *file = sqlite3_db_filename(db, "main");
	bool hit = false;

	pthread_mutex_lock(&agents_cache_lock);
	if (file != NULL && agents_cache.db_file != NULL &&
	    strcmp(agents_cache.db_file, file) == 0 &&
	    strcmp(agents_cache.hash, hash) == 0 &&
	    time(NULL) < agents_cache.until &&
	    agents_copy(agents_cache.agents, agents_cache.n, agents) == 0) {
		*n = agents_cache.n;
		*threshold = agents_cache.threshold;
		*version = agents_cache.version;
		hit = true;
	}
	pthread_mutex_unlock(&agents_cache_lock);
	return hit;
}

/* Keeps a copy of what load_agents read; a database without a file
 * (in memory) is not cached. */
static void
agents_cache_put(sqlite3 *db, const archive_policy *p,
    const archive_agent *agents, size_t n)
{
	const char *file = sqlite3_db_filename(db, "main");
	archive_agent *copy = NULL;
	char *f;
	time_t until = 0;
	size_t i;

	if (file == NULL || *file == '\0' || n == 0)
		return;
	for (i = 0; i < n; i++)
		if (i == 0 || agents[i].not_after < until)
			until = agents[i].not_after;
	if ((f = strdup(file)) == NULL || agents_copy(agents, n, &copy) == -1) {
		free(f);
		return; /* left uncached */
	}
	pthread_mutex_lock(&agents_cache_lock);
	archive_agents_free(agents_cache.agents, agents_cache.n);
	free(agents_cache.db_file);
	agents_cache.db_file = f;
	memcpy(agents_cache.hash, p->hash, 65);
	agents_cache.threshold = p->threshold;
	agents_cache.version = p->version;
	agents_cache.agents = copy;
	agents_cache.n = n;
	agents_cache.until = until;
	pthread_mutex_unlock(&agents_cache_lock);
}

/*
 * The agents of the policy in force (each by the key the policy names, in
 * its order), its threshold, version and hash; LB_ECONFLICT when no
 * policy is in force or one of its agents has no active credential (from
 * the cache, the second only shows in sealed_current).
 */
static int
load_agents(sqlite3 *db, archive_agent **agents, size_t *n, int *threshold,
    int *version, char hash[65], lb_err *err)
{
	archive_policy p;
	archive_agent *all = NULL;
	size_t nall = 0, i, j;
	bool found;
	int rc = -1;

	*agents = NULL;
	*n = 0;
	if (archive_policy_hash_in_force(db, hash, &found, err) == -1)
		return -1;
	if (!found)
		return no_policy(err);
	if (agents_cache_get(db, hash, agents, n, threshold, version))
		return 0;
	if (archive_policy_in_force(db, &p, &found, err) == -1)
		return -1;
	if (!found)
		return no_policy(err);
	if (archive_agents_list(db, true, &all, &nall, err) == -1)
		goto out;
	if ((*agents = calloc(archive_policy_count(&p, ARCHIVE_MEMBER_AGENT) +
	    1, sizeof(**agents))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < p.nmembers; i++) {
		if (p.members[i].role != ARCHIVE_MEMBER_AGENT)
			continue;
		for (j = 0; j < nall; j++)
			if (all[j].serial != NULL &&
			    strcmp(all[j].spki, p.members[i].spki) == 0)
				break;
		if (j == nall) {
			lb_err_set(err, LB_ECONFLICT, AGENT_INACTIVE,
			    p.members[i].email, p.version);
			goto out;
		}
		(*agents)[(*n)++] = all[j];
		memset(&all[j], 0, sizeof(all[j]));
	}
	*threshold = p.threshold;
	*version = p.version;
	memcpy(hash, p.hash, 65);
	agents_cache_put(db, &p, *agents, *n);
	rc = 0;
out:
	if (rc == -1) {
		archive_agents_free(*agents, *n);
		*agents = NULL;
		*n = 0;
	}
	archive_agents_free(all, nall);
	archive_policy_clear(&p);
	return rc;
}

static int
insert_record(sqlite3 *db, const char *serial, const char *email,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, size_t ct_len, int threshold, size_t nshares,
    const char *hash, const unsigned char *receipt, size_t receipt_len,
    const char *policy, int64_t *id, lb_err *err)
{
	sqlite3_stmt *st;
	int r;

	/* one per escrow: kept prepared */
	if ((st = core_db_cached(db, "INSERT INTO escrow_records (serial, email, "
	    "key_alg, share_alg, share_wrap, iv, tag, ciphertext, threshold, "
	    "nshares, record_sha256, receipt, created, policy_hash) VALUES "
	    "(?, ?, 'aes-256-gcm', 'shamir-gf256', "
	    "'cms-rsaes-oaep-sha256-aes256', ?, ?, ?, ?, ?, ?, ?, ?, ?)")) ==
	    NULL)
		return core_db_fail(db, "store escrow record", err);
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, iv, ARCHIVE_IV_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, tag, ARCHIVE_TAG_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, ct, (int)ct_len, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, threshold);
	sqlite3_bind_int(st, 7, (int)nshares);
	sqlite3_bind_text(st, 8, hash, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, receipt, (int)receipt_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 11, policy, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	core_db_cached_done(st);
	if (r != SQLITE_DONE)
		return core_db_fail(db, "store escrow record", err);
	*id = sqlite3_last_insert_rowid(db);
	return 0;
}

static int
insert_share(sqlite3 *db, int64_t record, const char *agent, int nr,
    const unsigned char *cms, size_t len, lb_err *err)
{
	sqlite3_stmt *st = NULL;

	int r;

	/* one per agent and escrow: kept prepared */
	if ((st = core_db_cached(db, "INSERT INTO escrow_shares (record_id, "
	    "agent_serial, share_nr, cms) VALUES (?1, ?2, ?3, ?4)")) == NULL)
		return core_db_fail(db, "store escrow share", err);
	sqlite3_bind_int64(st, 1, record);
	sqlite3_bind_text(st, 2, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, nr);
	sqlite3_bind_blob(st, 4, cms, (int)len, SQLITE_STATIC);
	r = sqlite3_step(st);
	core_db_cached_done(st);
	return r == SQLITE_DONE ? 0 : core_db_fail(db, "store escrow share",
	    err);
}

struct archive_sealed {
	char *serial, *email;
	char hash[65];
	char policy[65];            /* the policy in force it follows */
	int version;                /* that policy's */
	unsigned char iv[ARCHIVE_IV_LEN], tag[ARCHIVE_TAG_LEN];
	unsigned char *ct;
	size_t ct_len;
	int threshold;
	size_t nagents;
	char **agent_serial;        /* nagents */
	char **agent_email;         /* nagents */
	unsigned char **wrapped;    /* CMS share per agent */
	size_t *wrapped_len;
	int *share_nr;
	unsigned char *receipt;
	size_t receipt_len;
};

void
archive_sealed_free(archive_sealed *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nagents; i++) {
		if (s->agent_serial != NULL)
			free(s->agent_serial[i]);
		if (s->agent_email != NULL)
			free(s->agent_email[i]);
		if (s->wrapped != NULL)
			OPENSSL_free(s->wrapped[i]);
	}
	free(s->agent_serial);
	free(s->agent_email);
	free(s->wrapped);
	free(s->wrapped_len);
	free(s->share_nr);
	free(s->ct);
	free(s->serial);
	free(s->email);
	OPENSSL_free(s->receipt);
	free(s);
}

archive_sealed *
archive_escrow_seal(ca_ctx *ca, sqlite3 *db, X509 *cert, EVP_PKEY *key,
    const char *email, lb_err *err)
{
	archive_agent *agents = NULL;
	size_t nagents = 0, i, p8_len = 0, aad_len = 0;
	unsigned char dkey[ARCHIVE_DATA_KEY_LEN], check[ARCHIVE_DATA_KEY_LEN];
	unsigned char (*shares)[ARCHIVE_SHARE_LEN] = NULL;
	unsigned char *p8 = NULL, *aad = NULL;
	char text[640];
	archive_sealed *s = NULL;
	unsigned char aad_md[32], policy_raw[32];
	unsigned char bound[ARCHIVE_SHARE_BOUND_LEN];
	int threshold = 0, ok = 0, rc;

	if (!core_email_valid(email)) {
		lb_err_set(err, LB_EINVAL, "'%s' is not an e-mail address",
		    email ? email : "");
		return NULL;
	}
	if (check_enc_cert(cert, err) == -1 ||
	    archive_key_matches(cert, key, err) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (load_agents(db, &agents, &nagents, &threshold, &s->version,
	    s->policy, err) == -1)
		goto out;
	if (nagents == 0) {     /* a policy names at least three */
		lb_err_set(err, LB_EINTERNAL, "the escrow policy names no agent");
		goto out;
	}
	if ((s->serial = ca_cert_serial(cert)) == NULL ||
	    (s->email = strdup(email)) == NULL ||
	    (shares = calloc(nagents, sizeof(*shares))) == NULL ||
	    (s->agent_serial = calloc(nagents, sizeof(char *))) == NULL ||
	    (s->agent_email = calloc(nagents, sizeof(char *))) == NULL ||
	    (s->wrapped = calloc(nagents, sizeof(unsigned char *))) == NULL ||
	    (s->wrapped_len = calloc(nagents, sizeof(size_t))) == NULL ||
	    (s->share_nr = calloc(nagents, sizeof(int))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	s->nagents = nagents;
	s->threshold = threshold;
	if (ca_key_pkcs8_der(key, &p8, &p8_len) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the key");
		goto out;
	}
	if (archive_record_aad(cert, email, &aad, &aad_len, err) == -1)
		goto out;
	if (EVP_Digest(aad, aad_len, aad_md, NULL, EVP_sha256(), NULL) != 1 ||
	    hex_raw(s->policy, policy_raw) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot bind the shares");
		goto out;
	}
	if ((s->ct = malloc(p8_len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	s->ct_len = p8_len;
	if (RAND_bytes(dkey, sizeof(dkey)) != 1 ||
	    RAND_bytes(s->iv, sizeof(s->iv)) != 1) {
		lb_err_set(err, LB_EINTERNAL, "no randomness for the data key");
		goto out;
	}
	if (gcm_seal(dkey, s->iv, aad, aad_len, p8, p8_len, s->ct, s->tag,
	    err) == -1 || archive_shamir_split(dkey, (unsigned)nagents,
	    (unsigned)threshold, shares, err) == -1)
		goto out;
	/* prove that M shares give the data key back before anything lands */
	if (archive_shamir_combine(shares + (nagents - (size_t)threshold),
	    (unsigned)threshold, check, err) == -1 ||
	    CRYPTO_memcmp(check, dkey, sizeof(dkey)) != 0) {
		lb_err_set(err, LB_EINTERNAL, "the shares did not recombine "
		    "into the data key: nothing was escrowed");
		goto out;
	}
	if (archive_record_hash(aad, aad_len, s->iv, s->tag, s->ct, p8_len,
	    threshold, s->hash) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the escrow record");
		goto out;
	}
	snprintf(text, sizeof(text), "lockbox escrow receipt v1\nserial: %s\n"
	    "email: %s\nrecord-sha256: %s\nthreshold: %d of %zu\n"
	    "policy: %s\n", s->serial, email, s->hash, threshold, nagents,
	    s->policy);
	if (ca_sign_receipt(ca, (const unsigned char *)text, strlen(text),
	    &s->receipt, &s->receipt_len, err) == -1)
		goto out;
	for (i = 0; i < nagents; i++) {
		if ((s->agent_serial[i] = strdup(agents[i].serial)) == NULL ||
		    (s->agent_email[i] = strdup(agents[i].email)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		s->share_nr[i] = shares[i][0];
		/* each share says which record and policy it belongs to */
		memcpy(bound, shares[i], ARCHIVE_SHARE_LEN);
		memcpy(bound + ARCHIVE_SHARE_LEN, aad_md, 32);
		memcpy(bound + ARCHIVE_SHARE_LEN + 32, policy_raw, 32);
		rc = archive_cms_encrypt(agents[i].cert, bound,
		    ARCHIVE_SHARE_BOUND_LEN, &s->wrapped[i], &s->wrapped_len[i],
		    err);
		OPENSSL_cleanse(bound, sizeof(bound));
		if (rc == -1)
			goto out;
	}
	ok = 1;
out:
	OPENSSL_cleanse(dkey, sizeof(dkey));
	OPENSSL_cleanse(check, sizeof(check));
	if (shares != NULL)
		OPENSSL_clear_free(shares, nagents * sizeof(*shares));
	if (p8 != NULL)
		OPENSSL_clear_free(p8, p8_len);
	free(aad);
	archive_agents_free(agents, nagents);
	if (!ok) {
		archive_sealed_free(s);
		s = NULL;
	}
	return s;
}

/*
 * Whether the policy and agents a record was sealed for still hold: the
 * same policy in force, and each agent's credential still usable.  Either
 * failing empties load_agents' cache.
 */
static int
sealed_current(sqlite3 *db, const archive_sealed *s, lb_err *err)
{
	char policy[65];
	bool found;
	size_t i;

	if (archive_policy_hash_in_force(db, policy, &found, err) == -1)
		return -1;
	if (!found || strcmp(policy, s->policy) != 0)
		goto changed;
	/* one kept statement per agent: a single query over json_each made
	 * every escrow scan the certificates (bench/escrow.c) */
	for (i = 0; i < s->nagents; i++) {
		if ((ca_operator_roles(db, s->agent_serial[i], NULL, err) &
		    CA_ROLE_RECOVERY_AGENT) == 0) {
			if (err->code != LB_OK)
				return -1;
			agents_cache_drop();
			return lb_err_set(err, LB_ECONFLICT, AGENT_INACTIVE,
			    s->agent_email[i], s->version);
		}
	}
	return 0;
changed:
	agents_cache_drop();
	return lb_err_set(err, LB_ECONFLICT, "the escrow policy or its agents "
	    "changed while the key was being escrowed: try again");
}

int
archive_escrow_store(sqlite3 *db, const archive_sealed *s,
    const char *actor, lb_err *err)
{
	char detail[128];
	int64_t record_id = 0;
	size_t i;

	if (sealed_current(db, s, err) == -1 ||
	    insert_record(db, s->serial, s->email, s->iv, s->tag, s->ct,
	    s->ct_len, s->threshold, s->nagents, s->hash, s->receipt,
	    s->receipt_len, s->policy, &record_id, err) == -1)
		return -1;
	for (i = 0; i < s->nagents; i++)
		if (insert_share(db, record_id, s->agent_serial[i],
		    s->share_nr[i], s->wrapped[i], s->wrapped_len[i],
		    err) == -1)
			return -1;
	snprintf(detail, sizeof(detail), "threshold=%d shares=%zu "
	    "record-sha256=%.16s policy=%.16s", s->threshold, s->nagents,
	    s->hash, s->policy);
	return core_audit_append(db, actor, "escrow.store", s->serial, detail, err);
}

int
archive_escrow_put(ca_ctx *ca, sqlite3 *db, X509 *cert, EVP_PKEY *key,
    const char *email, const char *actor, unsigned char **receipt,
    size_t *receipt_len, lb_err *err)
{
	archive_sealed *s;
	int rc = -1;

	*receipt = NULL;
	*receipt_len = 0;
	if ((s = archive_escrow_seal(ca, db, cert, key, email, err)) == NULL)
		return -1;
	if (archive_escrow_store(db, s, actor, err) == 0) {
		*receipt = s->receipt;
		*receipt_len = s->receipt_len;
		s->receipt = NULL;
		rc = 0;
	}
	archive_sealed_free(s);
	return rc;
}

/* Storing an encryption certificate with its escrowed key: one
 * transaction job. */
struct issue_enc_job {
	ca_ctx *ca;
	X509 *cert;
	EVP_PKEY *key;
	const char *profile, *email, *actor;
	unsigned char **receipt;
	size_t *receipt_len;
};

static int
issue_enc_job(sqlite3 *db, void *arg, lb_err *err)
{
	struct issue_enc_job *j = arg;

	if (ca_store_cert(db, j->cert, j->profile, j->email, j->actor,
	    err) == -1)
		return -1;
	return archive_escrow_put(j->ca, db, j->cert, j->key, j->email,
	    j->actor, j->receipt, j->receipt_len, err);
}

X509 *
archive_issue_enc(ca_ctx *ca, sqlite3 *db, const ca_request *req,
    EVP_PKEY *key, const char *actor, unsigned char **receipt,
    size_t *receipt_len, lb_err *err)
{
	ca_request r = *req;
	struct issue_enc_job j;
	X509 *x = NULL;
	char policy[65];
	bool found;

	*receipt = NULL;
	*receipt_len = 0;
	r.profile = "smime-enc";
	r.pubkey = key;
	/* fail early and cheaply; archive_escrow_put checks again inside
	 * the transaction, which is what counts */
	if (archive_policy_hash_in_force(db, policy, &found, err) == -1)
		return NULL;
	if (!found) {
		no_policy(err);
		return NULL;
	}
	if (ca_key_use_check(db, key, r.profile, err) == -1)
		return NULL;
	if ((x = ca_sign_cert(ca, &r, err)) == NULL)
		return NULL;
	j.ca = ca;
	j.cert = x;
	j.key = key;
	j.profile = r.profile;
	j.email = r.email;
	j.actor = actor;
	j.receipt = receipt;
	j.receipt_len = receipt_len;
	if (core_tx_run(db, issue_enc_job, &j, err) == -1) {
		OPENSSL_free(*receipt);
		*receipt = NULL;
		*receipt_len = 0;
		X509_free(x);
		return NULL;
	}
	return x;
}

int
archive_escrow_before_policy(sqlite3 *db, char ***serials, size_t *n,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL, **nv;
	int r;

	*serials = NULL;
	*n = 0;
	if (core_db_prepare(db, "SELECT serial FROM escrow_records WHERE "
	    "policy_hash IS NULL ORDER BY id", &st, err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = realloc(v, (*n + 1) * sizeof(*v))) == NULL ||
		    (nv[*n] = core_db_text_dup(st, 0)) == NULL) {
			if (nv != NULL)
				v = nv;
			r = SQLITE_NOMEM;
			break;
		}
		v = nv;
		(*n)++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		while (*n > 0)
			free(v[--*n]);
		free(v);
		return lb_err_set(err, LB_EINTERNAL, "cannot read the escrow "
		    "records");
	}
	*serials = v;
	return 0;
}
