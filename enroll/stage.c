/*
 * stage.c - the enrollment client's directory: its files (paths, PEM
 * certificates in and out), a new key pair staged as NAME.*.new and
 * renamed into place so that an interrupted run is finished or undone by
 * the next one, and state.json, where the first enrollment was made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>

#include "enroll/enroll_int.h"

#define STATE_FILE     "state.json"

/* dir/name+suffix, malloc'ed (NULL on allocation failure). */
char *
enroll_file_in(const char *dir, const char *name, const char *suffix)
{
	char *p;

	if (asprintf(&p, "%s/%s%s", dir, name, suffix) == -1)
		return NULL;
	return p;
}

bool
enroll_file_exists(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0;
}

/* Writes certs as PEM to path (mode). */
int
enroll_write_certs(const char *path, X509 *const *certs, size_t n,
    mode_t mode, lb_err *err)
{
	char *pem;
	size_t len;
	int rc;

	if ((pem = ca_certs_pem(certs, n, NULL, &len)) == NULL || len == 0) {
		free(pem);
		return lb_err_set(err, LB_EINTERNAL, "cannot encode "
		    "certificates for %s", path);
	}
	rc = core_file_write(path, pem, len, mode, false, err);
	free(pem);
	return rc;
}

X509 *
enroll_read_cert(const char *path, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	X509 *x;

	if (core_file_read(path, (size_t)256 * 1024, &buf, &len, err) == -1)
		return NULL;
	x = ca_cert_parse(buf, len, err);
	free(buf);
	return x;
}

/*
 * The final and staged names of a profile's files (the mail clients'
 * PKCS#12 gets its generated password beside it, NAME.p12.new.pass: the
 * enrollment client keeps NAME.key unencrypted there anyway).  The certificate comes
 * last: while NAME.crt.new exists an update is unfinished, and the old
 * NAME.crt still names the serial to keep the old files under.
 */
static const char *const pair_suffix[] = {
	".p12.pass", ".p12", ".key", ".crt",
};
static const char *const staged_suffix[] = {
	".p12.new.pass", ".p12.new", ".key.new", ".crt.new",
};
#define NSUFFIX (sizeof(pair_suffix) / sizeof(pair_suffix[0]))
#define ENROLL_P12_PASS_LEN 24

/* Renames dir/name+from to dir/name+to when it exists. */
static int
move_file(const char *dir, const char *name, const char *from,
    const char *to, lb_err *err)
{
	char *a = enroll_file_in(dir, name, from);
	char *b = enroll_file_in(dir, name, to);
	int rc = 0;

	if (a == NULL || b == NULL)
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
	else if (enroll_file_exists(a) && rename(a, b) == -1)
		rc = lb_err_set(err, LB_EINTERNAL, "cannot rename %s to %s: "
		    "%s", a, b, strerror(errno));
	free(a);
	free(b);
	return rc;
}

/*
 * Moves the staged NAME.*.new into place.  With keep_old, the current
 * pair is first renamed NAME-SERIAL.* (its serial from NAME.crt), unless
 * NAME.crt is already the staged certificate.  Used after staging and, at
 * the start of a run, to finish a run that was interrupted in between.
 */
static int
commit_staged(const char *dir, const char *name, bool keep_old, lb_err *err)
{
	char *cur = NULL, *serial = NULL, tag[160];
	X509 *oldcert = NULL;
	size_t i;
	int rc = -1;

	if (keep_old) {
		if ((cur = enroll_file_in(dir, name, ".crt")) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		if (enroll_file_exists(cur) && ((oldcert =
		    enroll_read_cert(cur, err)) == NULL ||
		    (serial = ca_cert_serial(oldcert)) == NULL))
			goto out;
	}
	for (i = 0; serial != NULL && i < NSUFFIX; i++) {
		snprintf(tag, sizeof(tag), "-%s%s", serial, pair_suffix[i]);
		if (move_file(dir, name, pair_suffix[i], tag, err) == -1)
			goto out;
	}
	for (i = 0; i < NSUFFIX; i++)
		if (move_file(dir, name, staged_suffix[i], pair_suffix[i],
		    err) == -1)
			goto out;
	rc = 0;
out:
	X509_free(oldcert);
	free(serial);
	free(cur);
	return rc;
}

/*
 * Finishes what an interrupted run staged for name: a staged certificate
 * whose key is staged or already in place is moved into place; anything
 * else staged is removed.
 */
int
enroll_stage_recover(const char *dir, const char *name, bool keep_old,
    lb_err *err)
{
	char *kp = enroll_file_in(dir, name, ".key.new");
	char *kcur = enroll_file_in(dir, name, ".key");
	char *cp = enroll_file_in(dir, name, ".crt.new");
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	lb_err e2 = { 0 };
	size_t i;
	int rc = 0;

	if (kp == NULL || kcur == NULL || cp == NULL) {
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (enroll_file_exists(cp) &&
	    (key = ca_key_read(enroll_file_exists(kp) ? kp : kcur, NULL, &e2)) !=
	    NULL &&
	    (cert = enroll_read_cert(cp, &e2)) != NULL &&
	    X509_check_private_key(cert, key) == 1) {
		log_warnx("%s: finishing an interrupted update", name);
		rc = commit_staged(dir, name, keep_old, err);
		goto out;
	}
	ERR_clear_error();
	for (i = 0; i < NSUFFIX; i++) {
		char *p;

		if ((p = enroll_file_in(dir, name, staged_suffix[i])) != NULL)
			unlink(p);
		free(p);
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	free(kp);
	free(kcur);
	free(cp);
	return rc;
}

/*
 * Installs key + cert for profile name: writes NAME.key/.crt/.p12(.pass)
 * staged, then moves them into place (keep_old: the previous pair is kept
 * under its serial).
 */
int
enroll_stage_install(const char *dir, const char *name,
    const char *email, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    bool keep_old, lb_err *err)
{
	char *kp = enroll_file_in(dir, name, ".key.new");
	char *cp = enroll_file_in(dir, name, ".crt.new");
	char *pp = enroll_file_in(dir, name, ".p12.new");
	char *pwp = enroll_file_in(dir, name, ".p12.new.pass");
	char friendly[320], pass[ENROLL_P12_PASS_LEN + 2];
	int rc = -1;

	if (kp == NULL || cp == NULL || pp == NULL || pwp == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "%s: the server's certificate does "
		    "not match the key: nothing written", name);
		goto out;
	}
	snprintf(friendly, sizeof(friendly), "%s (%s)", email, name);
	if (core_random_password(pass, ENROLL_P12_PASS_LEN) == -1) {
		lb_err_set(err, LB_EINTERNAL, "no randomness");
		goto out;
	}
	pass[ENROLL_P12_PASS_LEN] = '\n';
	/* the certificate last: NAME.crt.new means all is staged; a staged
	 * file left by an interrupted run is replaced */
	if (ca_key_write(kp, key, NULL, false, err) == -1 ||
	    core_file_write(pwp, pass, ENROLL_P12_PASS_LEN + 1, 0600, false,
	    err) == -1)
		goto out;
	pass[ENROLL_P12_PASS_LEN] = '\0';
	if (unlink(pp) == -1 && errno != ENOENT) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", pp, strerror(errno));
		goto out;
	}
	if (ca_p12_write(pp, pass, key, cert, chain, friendly, CA_P12_MODERN,
	    err) == -1 ||
	    enroll_write_certs(cp, &cert, 1, 0644, err) == -1)
		goto out;
	rc = commit_staged(dir, name, keep_old, err);
out:
	OPENSSL_cleanse(pass, sizeof(pass));
	free(kp);
	free(cp);
	free(pp);
	free(pwp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* state.json                                                          */

void
enroll_state_clear(enroll_state *st)
{
	free(st->server);
	free(st->ca_cert);
	free(st->email);
	memset(st, 0, sizeof(*st));
}

int
enroll_state_parse(const char *buf, size_t len, enroll_state *st,
    lb_err *err)
{
	json_t *j;
	json_error_t jerr;
	const char *server, *ca, *email;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (buf == NULL || len == 0 || len > ENROLL_STATE_MAX)
		return lb_err_set(err, LB_EINVAL, "an empty or oversized %s",
		    STATE_FILE);
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	server = json_string_value(json_object_get(j, "server"));
	ca = json_string_value(json_object_get(j, "ca_cert"));
	email = json_string_value(json_object_get(j, "user"));
	if (!json_is_object(j) || server == NULL ||
	    strncmp(server, "https://", 8) != 0 || ca == NULL ||
	    ca[0] == '\0' ||
	    email == NULL || email[0] == '\0') {
		lb_err_set(err, LB_EINVAL, "not a %s of lockbox", STATE_FILE);
		goto out;
	}
	if ((st->server = strdup(server)) == NULL ||
	    (st->ca_cert = strdup(ca)) == NULL ||
	    (st->email = strdup(email)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		enroll_state_clear(st);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

char *
enroll_state_text(const char *server, const char *ca_cert,
    const char *email)
{
	json_t *j = json_object();
	char *text = NULL;

	if (j != NULL && ca_json_put(j, "server", json_string(server)) == 0 &&
	    ca_json_put(j, "ca_cert", json_string(ca_cert)) == 0 &&
	    /* the file's own name for it since the first version */
	    ca_json_put(j, "user", json_string(email)) == 0)
		text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	return text;
}

int
enroll_state_write(const char *dir, const char *server, const char *ca_cert,
    const char *email, lb_err *err)
{
	char *text = NULL, *path = NULL;
	int rc = -1;

	if ((text = enroll_state_text(server, ca_cert, email)) == NULL ||
	    (path = enroll_file_in(dir, STATE_FILE, "")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot write %s (the e-mail or "
		    "server is not UTF-8?)", STATE_FILE);
		goto out;
	}
	rc = core_file_write(path, text, strlen(text), 0600, false, err);
out:
	free(path);
	free(text);
	return rc;
}

int
enroll_state_read(const char *dir, enroll_state *st, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	char *path = enroll_file_in(dir, STATE_FILE, "");
	lb_err perr = { 0 };
	int rc = -1;

	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (!enroll_file_exists(path)) {
		lb_err_set(err, LB_ENOTFOUND, "%s has no %s: enroll first with "
		    "'lockbox enroll --server URL --ca-cert FILE --email EMAIL "
		    "--token-file F'", dir, STATE_FILE);
		goto out;
	}
	if (core_file_read(path, ENROLL_STATE_MAX, &buf, &len, err) == -1)
		goto out;
	if (enroll_state_parse((char *)buf, len, st, &perr) == -1) {
		lb_err_set(err, perr.code, "%s is damaged: enroll again", path);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	free(path);
	return rc;
}
