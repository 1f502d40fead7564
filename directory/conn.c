/*
 * conn.c - the directory connection: the [directory] settings of
 * lockbox.conf, connecting with libldap (LDAPv3, timeouts, TLS verified
 * against ca_file, StartTLS or ldaps), the simple bind with a password read
 * from a 0600 file and cleansed at once, and the one place that turns an
 * LDAP result code into a transient or permanent lb_err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <ldap.h>

#include "directory/directory_int.h"

#define SECTION "directory"
#define DEFAULT_USER_FILTER "(&(objectClass=inetOrgPerson)(|(uid=%s)(mail=%s)))"

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static bool
rc_transient(int rc)
{
	switch (rc) {
	case LDAP_SERVER_DOWN:
	case LDAP_CONNECT_ERROR:
	case LDAP_TIMEOUT:
	case LDAP_TIMELIMIT_EXCEEDED:
	case LDAP_BUSY:
	case LDAP_UNAVAILABLE:
	case LDAP_NO_MEMORY:
		return true;
	default:
		return false;
	}
}

static enum lb_errcode
rc_class(int rc)
{
	if (rc_transient(rc))
		return DIRECTORY_TRANSIENT;
	switch (rc) {
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INSUFFICIENT_ACCESS:
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_STRONG_AUTH_REQUIRED:
	case LDAP_CONFIDENTIALITY_REQUIRED:
		return LB_EFORBIDDEN;
	case LDAP_NO_SUCH_OBJECT:
		return LB_ENOTFOUND;
	case LDAP_OBJECT_CLASS_VIOLATION:
	case LDAP_UNDEFINED_TYPE:
	case LDAP_INVALID_SYNTAX:
	case LDAP_INVALID_DN_SYNTAX:
	case LDAP_NAMING_VIOLATION:
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_NOT_ALLOWED_ON_RDN:
	case LDAP_PARAM_ERROR:
	case LDAP_FILTER_ERROR:
	case LDAP_PROTOCOL_ERROR:
		return LB_EINVAL;
	default:
		return LB_ECONFLICT;
	}
}

/* What the user should do about rc, or "" when nothing useful to say. */
static const char *
rc_hint(int rc)
{
	/* out of memory is the client's own state: no hint to give */
	if (rc_transient(rc) && rc != LDAP_NO_MEMORY)
		return "; transient: retry later";
	switch (rc) {
	case LDAP_INVALID_CREDENTIALS:
		return "; check bind_dn and bind_password_file in [directory]";
	case LDAP_INSUFFICIENT_ACCESS:
		return "; the bind DN needs write access there";
	case LDAP_STRONG_AUTH_REQUIRED:
	case LDAP_CONFIDENTIALITY_REQUIRED:
		return "; the server wants TLS: set starttls = yes or use ldaps://";
	case LDAP_OBJECT_CLASS_VIOLATION:
	case LDAP_UNDEFINED_TYPE:
		return "; the server's schema must include core.schema "
		    "(pkiCA, cRLDistributionPoint, deltaCRL)";
	case LDAP_NO_SUCH_OBJECT:
		return "; create the parent entry or fix ca_dn in [directory]";
	default:
		return "";
	}
}

int
dir_fail(directory_ctx *d, int rc, const char *what, const char *dn,
    lb_err *err)
{
	return dir_fail_on(d, d->ld, rc, what, dn, err);
}

int
dir_fail_on(directory_ctx *d, LDAP *ld, int rc, const char *what,
    const char *dn, lb_err *err)
{
	char *diag = NULL;

	if (ld != NULL &&
	    ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) !=
	    LDAP_OPT_SUCCESS)
		diag = NULL;
	log_debug("directory %s: %s%s%s: rc %d (%s)%s%s", d->uri, what,
	    dn != NULL ? " " : "", dn != NULL ? dn : "", rc,
	    ldap_err2string(rc), diag != NULL ? ": " : "",
	    diag != NULL ? diag : "");
	lb_err_set(err, rc_class(rc), "directory %s: %s%s%s failed: %s%s%s%s%s",
	    d->uri, what, dn != NULL ? " " : "", dn != NULL ? dn : "",
	    ldap_err2string(rc),
	    diag != NULL && diag[0] != '\0' ? " (" : "",
	    diag != NULL ? diag : "",
	    diag != NULL && diag[0] != '\0' ? ")" : "", rc_hint(rc));
	ldap_memfree(diag);
	if (ld == d->ld && (rc_transient(rc) ||
	    rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_LOCAL_ERROR ||
	    rc == LDAP_ENCODING_ERROR || rc == LDAP_DECODING_ERROR))
		dir_drop(d);
	return -1;
}

bool
directory_err_transient(const lb_err *err)
{
	return err != NULL && err->code == DIRECTORY_TRANSIENT;
}

struct timeval
dir_timeout(const directory_ctx *d)
{
	struct timeval tv = { .tv_sec = d->timeout, .tv_usec = 0 };

	return tv;
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static char *
resolve(const char *dir, const char *path)
{
	if (dir == NULL || path[0] == '/')
		return strdup(path);
	return core_path(dir, path);
}

/* Checks that dn parses and starts with a single-valued cn=... RDN. */
static int
check_ca_dn(const char *dn, lb_err *err)
{
	LDAPDN ldn = NULL;
	int rc = -1;

	if (ldap_str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
	    ldn == NULL || ldn[0] == NULL || ldn[1] == NULL) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] ca_dn = "
		    "'%s' is not a DN with a parent", dn);
		goto out;
	}
	if (ldn[0][1] != NULL || ldn[0][0]->la_attr.bv_len != 2 ||
	    strncasecmp(ldn[0][0]->la_attr.bv_val, "cn", 2) != 0) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] ca_dn = "
		    "'%s' must start with a single cn=... (cRLDistributionPoint "
		    "entries are named by cn)", dn);
		goto out;
	}
	rc = 0;
out:
	ldap_dnfree(ldn);
	return rc;
}

/* user_filter may hold %s (the login) and %% only, and needs a %s. */
static int
check_filter(const char *f, lb_err *err)
{
	bool login = false;

	for (; *f != '\0'; f++) {
		if (*f != '%')
			continue;
		if (f[1] == 's')
			login = true;
		else if (f[1] != '%')
			goto bad;
		f++;
	}
	if (login)
		return 0;
bad:
	return lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] "
	    "user_filter must contain %%s (the login, escaped) and no other "
	    "%% sequence but %%%%, e.g. %s", DEFAULT_USER_FILTER);
}

/* An attribute description (it goes into filters unescaped). */
static int
check_attr(const char *name, const char *v, lb_err *err)
{
	if (v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-.;")] != '\0')
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] "
		    "%s = '%s' is not an attribute name", name, v);
	return 0;
}

static bool
host_is_loopback(const char *h)
{
	return h == NULL || h[0] == '\0' || strcmp(h, "127.0.0.1") == 0 ||
	    strcmp(h, "::1") == 0 || strcasecmp(h, "localhost") == 0;
}

/* Checks the URI and that the bind password never travels in clear. */
static int
check_uri(const directory_ctx *d, bool plaintext, lb_err *err)
{
	LDAPURLDesc *lud = NULL;
	int rc = -1;
	bool ldaps, ldapi;

	if (ldap_url_parse(d->uri, &lud) != LDAP_URL_SUCCESS) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] uri = "
		    "'%s' is not an LDAP URI (one ldap://, ldaps:// or "
		    "ldapi:// URI)", d->uri);
		goto out;
	}
	ldaps = strcasecmp(lud->lud_scheme, "ldaps") == 0;
	ldapi = strcasecmp(lud->lud_scheme, "ldapi") == 0;
	if (ldaps && d->starttls) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] starttls "
		    "= yes with an ldaps:// uri: the connection is already TLS; "
		    "set starttls = no");
		goto out;
	}
	if (d->bind_dn != NULL && !ldaps && !ldapi && !d->starttls &&
	    !plaintext && !host_is_loopback(lud->lud_host)) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] the bind "
		    "password would travel in clear to %s: set starttls = yes or "
		    "use ldaps:// (or plaintext = yes to accept that)", d->uri);
		goto out;
	}
	rc = 0;
out:
	ldap_free_urldesc(lud);
	return rc;
}

/* Reads the bind password, refusing a file others may read. */
static char *
read_password(const directory_ctx *d, lb_err *err)
{
	struct stat st;

	if (stat(d->pw_path, &st) == -1) {
		lb_err_set(err, LB_EINVAL, "%s: %s (the [directory] "
		    "bind_password_file)", d->pw_path, strerror(errno));
		return NULL;
	}
	if ((st.st_mode & 077) != 0) {
		lb_err_set(err, LB_EINVAL, "%s: the directory bind password "
		    "file is readable by others: chmod 600 it", d->pw_path);
		return NULL;
	}
	return core_secret_read(d->pw_path, err);
}

static int
dup_setting(const core_conf *conf, const char *name, char **out,
    lb_err *err)
{
	const char *v = core_conf_get(conf, SECTION, name, NULL);

	*out = NULL;
	if (v == NULL || v[0] == '\0')
		return 0;
	if ((*out = strdup(v)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	return 0;
}

int
directory_retry_conf(const core_conf *conf, long *retry, long *retry_max,
    lb_err *err)
{
	if (core_conf_get_long(conf, SECTION, "retry", 5, 1, 3600, retry,
	    err) == -1 ||
	    core_conf_get_long(conf, SECTION, "retry_max", 300, 1, 86400,
	    retry_max, err) == -1)
		return -1;
	if (*retry_max < *retry)
		*retry_max = *retry;
	return 0;
}

long
directory_backoff_next(long cur, long retry, long retry_max)
{
	if (cur == 0)
		return retry;
	return cur * 2 > retry_max ? retry_max : cur * 2;
}

directory_ctx *
directory_open_at(const core_conf *conf, const char *dir, lb_err *err)
{
	directory_ctx *d = NULL;
	const char *v;
	char *pw = NULL, *cn = NULL;
	bool plaintext = false;
	int rc = -1;

	if ((v = core_conf_get(conf, SECTION, "uri", NULL)) == NULL ||
	    v[0] == '\0') {
		lb_err_set(err, LB_ENOTFOUND, "no directory configured (no "
		    "[directory] uri in lockbox.conf)");
		goto out;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->uri = strdup(v)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (dup_setting(conf, "bind_dn", &d->bind_dn, err) == -1 ||
	    dup_setting(conf, "base_dn", &d->base_dn, err) == -1 ||
	    dup_setting(conf, "ca_dn", &d->ca_dn, err) == -1 ||
	    core_conf_get_bool(conf, SECTION, "starttls", false, &d->starttls,
	    err) == -1 ||
	    core_conf_get_bool(conf, SECTION, "plaintext", false, &plaintext,
	    err) == -1 ||
	    core_conf_get_long(conf, SECTION, "timeout", 10, 1, 3600,
	    &d->timeout, err) == -1 ||
	    core_conf_get_long(conf, SECTION, "network_timeout", 5, 1, 3600,
	    &d->net_timeout, err) == -1)
		goto out;
	if ((v = core_conf_get(conf, SECTION, "ca_file", NULL)) != NULL &&
	    v[0] != '\0' && (d->ca_file = resolve(dir, v)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	v = core_conf_get(conf, SECTION, "bind_password_file", NULL);
	if (d->bind_dn != NULL) {
		if (v == NULL || v[0] == '\0') {
			lb_err_set(err, LB_EINVAL, "lockbox.conf: [directory] "
			    "bind_dn needs bind_password_file (a 0600 file "
			    "holding the password)");
			goto out;
		}
		if ((d->pw_path = resolve(dir, v)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		/* Fail now, not at the first publication, on a bad file. */
		if ((pw = read_password(d, err)) == NULL)
			goto out;
	}
	if (d->ca_dn == NULL && d->base_dn != NULL) {
		v = core_conf_get(conf, "ca", "name", NULL);
		if (v != NULL && v[0] != '\0') {
			size_t n;

			if ((cn = core_dn_escape(v)) == NULL) {
				lb_err_set(err, LB_EINVAL, "lockbox.conf: [ca] "
				    "name is too long for a DN");
				goto out;
			}
			n = strlen(cn) + strlen(d->base_dn) + 16;
			if ((d->ca_dn = malloc(n)) == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
			snprintf(d->ca_dn, n, "cn=%s,ou=PKI,%s", cn,
			    d->base_dn);
		}
	}
	if (d->ca_dn != NULL && check_ca_dn(d->ca_dn, err) == -1)
		goto out;
	if (dup_setting(conf, "user_base", &d->user_base, err) == -1 ||
	    dup_setting(conf, "user_filter", &d->user_filter, err) == -1 ||
	    dup_setting(conf, "mail_attribute", &d->mail_attr, err) == -1 ||
	    dup_setting(conf, "group_attribute", &d->group_attr, err) == -1)
		goto out;
	if ((d->user_base == NULL && d->base_dn != NULL &&
	    (d->user_base = strdup(d->base_dn)) == NULL) ||
	    (d->user_filter == NULL && (d->user_filter =
	    strdup(DEFAULT_USER_FILTER)) == NULL) ||
	    (d->mail_attr == NULL && (d->mail_attr = strdup("mail")) == NULL) ||
	    (d->group_attr == NULL &&
	    (d->group_attr = strdup("member")) == NULL)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (check_filter(d->user_filter, err) == -1 ||
	    check_attr("mail_attribute", d->mail_attr, err) == -1 ||
	    check_attr("group_attribute", d->group_attr, err) == -1)
		goto out;
	if (check_uri(d, plaintext, err) == -1)
		goto out;
	rc = 0;
out:
	core_secret_free(pw);
	free(cn);
	if (rc == -1) {
		directory_free(d);
		d = NULL;
	}
	return d;
}

directory_ctx *
directory_open(const core_conf *conf, lb_err *err)
{
	return directory_open_at(conf, NULL, err);
}

void
directory_free(directory_ctx *d)
{
	if (d == NULL)
		return;
	dir_drop(d);
	free(d->uri);
	free(d->bind_dn);
	free(d->pw_path);
	free(d->ca_file);
	free(d->base_dn);
	free(d->ca_dn);
	free(d->user_base);
	free(d->user_filter);
	free(d->mail_attr);
	free(d->group_attr);
	free(d);
}

const char *
directory_get0_uri(const directory_ctx *d)
{
	return d->uri;
}

const char *
directory_get0_ca_dn(const directory_ctx *d)
{
	return d->ca_dn;
}

/* ------------------------------------------------------------------ */
/* Connection                                                          */

void
dir_drop(directory_ctx *d)
{
	if (d->ld != NULL)
		ldap_unbind_ext_s(d->ld, NULL, NULL);
	d->ld = NULL;
}

static int
set_opt(const directory_ctx *d, LDAP *ld, int opt, const void *val,
    const char *name, lb_err *err)
{
	int rc;

	if ((rc = ldap_set_option(ld, opt, val)) != LDAP_OPT_SUCCESS)
		return lb_err_set(err, LB_EINVAL, "directory %s: cannot set "
		    "%s: %s", d->uri, name, ldap_err2string(rc));
	return 0;
}

/* Protocol, timeouts, no referral chasing, and TLS for this handle. */
static int
set_options(const directory_ctx *d, LDAP *ld, lb_err *err)
{
	struct timeval net = { .tv_sec = d->net_timeout, .tv_usec = 0 };
	struct timeval op = dir_timeout(d);
	int version = LDAP_VERSION3;
	int demand = LDAP_OPT_X_TLS_DEMAND;
	int tls12 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	int is_server = 0;

	if (set_opt(d, ld, LDAP_OPT_PROTOCOL_VERSION, &version,
	    "the protocol version", err) == -1 ||
	    set_opt(d, ld, LDAP_OPT_NETWORK_TIMEOUT, &net, "network_timeout",
	    err) == -1 ||
	    set_opt(d, ld, LDAP_OPT_TIMEOUT, &op, "timeout", err) == -1 ||
	    set_opt(d, ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF, "referrals",
	    err) == -1 ||
	    set_opt(d, ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand,
	    "TLS certificate checking", err) == -1 ||
	    set_opt(d, ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls12,
	    "the TLS version", err) == -1)
		return -1;
	if (d->ca_file != NULL && set_opt(d, ld, LDAP_OPT_X_TLS_CACERTFILE,
	    d->ca_file, "ca_file", err) == -1)
		return -1;
	/* Apply the handle's TLS settings in a context of its own. */
	return set_opt(d, ld, LDAP_OPT_X_TLS_NEWCTX, &is_server,
	    "the TLS context (is ca_file readable PEM?)", err);
}

static void
tls_fail(const directory_ctx *d, LDAP *ld, lb_err *err)
{
	char *diag = NULL;

	if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) !=
	    LDAP_OPT_SUCCESS)
		diag = NULL;
	/* libldap's placeholder when the TLS library gave no reason. */
	if (diag != NULL && strcmp(diag, "(unknown error code)") == 0) {
		ldap_memfree(diag);
		diag = NULL;
	}
	lb_err_set(err, LB_EINVAL, "directory %s: the TLS handshake failed%s%s%s"
	    ": check that ca_file (%s) holds the CA of the server's "
	    "certificate and that the certificate names the host", d->uri,
	    diag != NULL && diag[0] != '\0' ? " (" : "",
	    diag != NULL ? diag : "",
	    diag != NULL && diag[0] != '\0' ? ")" : "",
	    d->ca_file != NULL ? d->ca_file : "the system's trust store");
	ldap_memfree(diag);
}

int
dir_handle_open(directory_ctx *d, LDAP **out, lb_err *err)
{
	LDAP *ld = NULL;
	int lrc, rc = -1;

	*out = NULL;
	if ((lrc = ldap_initialize(&ld, d->uri)) != LDAP_SUCCESS) {
		ld = NULL;
		lb_err_set(err, LB_EINVAL, "directory %s: %s",
		    d->uri, ldap_err2string(lrc));
		goto out;
	}
	if (set_options(d, ld, err) == -1)
		goto out;
	if (d->starttls &&
	    (lrc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		/*
		 * The server answered the StartTLS request, then the handshake
		 * failed: a certificate or protocol mismatch that retrying
		 * will not mend.
		 */
		if (lrc == LDAP_CONNECT_ERROR)
			tls_fail(d, ld, err);
		else
			dir_fail_on(d, ld, lrc, "StartTLS", NULL, err);
		goto out;
	}
	*out = ld;
	ld = NULL;
	rc = 0;
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	return rc;
}

int
dir_connect(directory_ctx *d, lb_err *err)
{
	struct berval cred = { 0, NULL };
	char *pw = NULL;
	int lrc, rc = -1;

	if (d->ld != NULL)
		return 0;
	if (dir_handle_open(d, &d->ld, err) == -1)
		goto out;
	if (d->pw_path != NULL) {
		if ((pw = read_password(d, err)) == NULL)
			goto out;
		cred.bv_val = pw;
		cred.bv_len = strlen(pw);
	}
	lrc = ldap_sasl_bind_s(d->ld, d->bind_dn != NULL ? d->bind_dn : "",
	    LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (lrc != LDAP_SUCCESS) {
		dir_fail(d, lrc, "bind as",
		    d->bind_dn != NULL ? d->bind_dn : "(anonymous)", err);
		goto out;
	}
	rc = 0;
out:
	core_secret_free(pw);
	if (rc == -1)
		dir_drop(d);
	return rc;
}

int
dir_run(directory_ctx *d, dir_op op, void *arg, lb_err *err)
{
	lb_err first = { 0 };
	bool reused = d->ld != NULL;

	if (dir_connect(d, reused ? &first : err) == 0 &&
	    op(d, arg, reused ? &first : err) == 0)
		return 0;
	if (!reused)
		return -1;
	if (!directory_err_transient(&first))
		return lb_err_set(err, first.code, "%s", first.msg);
	/* The server may have restarted since the connection was opened. */
	log_debug("directory %s: reconnecting after: %s", d->uri, first.msg);
	if (dir_connect(d, err) == -1)
		return -1;
	return op(d, arg, err);
}
