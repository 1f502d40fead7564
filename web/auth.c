/*
 * auth.c - operators' TLS client certificates.  GnuTLS (inside MHD)
 * requests a certificate but verifies nothing; this file takes the peer's
 * DER from the GnuTLS session, verifies it with OpenSSL against this CA
 * (purpose and extended key usage clientAuth, issued directly by the CA)
 * and asks the database whose credential it is and which roles that
 * operator holds now.  It is the only file of lockbox that sees GnuTLS.
 *
 * A connection remembers the certificate it verified, so keep-alive
 * requests skip the signature check; the database is asked on every
 * request, so a removed operator is refused at once.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "web/web_int.h"

#define PEER_CERT_MAX (64 * 1024)

/* What a TLS connection verified last. */
struct conn_cache {
	unsigned char *der;
	size_t der_len;
	char *serial;
	bool subscriber;            /* verified as which kind */
	X509 *x;                    /* parsed, for a subscriber's */
};

void
web_conn_notify(void *cls, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	struct web_listener *lst = cls;
	struct web_conn *c;
	struct conn_cache *cc;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((c = web_guard_open(lst->guard, conn)) == NULL) {
			/* uncounted and unwatched: not served */
			ci = MHD_get_connection_info(conn,
			    MHD_CONNECTION_INFO_CONNECTION_FD);
			if (ci != NULL)
				shutdown(ci->connect_fd, SHUT_RDWR);
			return;
		}
		/* NULL on failure only costs the cache */
		if (lst->kind == WEB_HTTPS)
			c->auth = calloc(1, sizeof(struct conn_cache));
		*socket_context = c;
		return;
	}
	if ((c = *socket_context) == NULL)
		return;
	*socket_context = NULL;
	if ((cc = c->auth) != NULL) {
		free(cc->der);
		free(cc->serial);
		X509_free(cc->x);
		free(cc);
	}
	web_guard_close(c);
}

/* The connection's certificate cache, or NULL. */
static struct conn_cache *
conn_cache_get(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info;
	const struct web_conn *c;

	info = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	c = info != NULL ? info->socket_context : NULL;
	return c != NULL ? c->auth : NULL;
}

/* The DER of the client's certificate (borrowed from the session). */
static int
peer_cert(struct web_req *r, const unsigned char **der, size_t *len,
    lb_err *err)
{
	const union MHD_ConnectionInfo *info;
	const gnutls_datum_t *peers;
	gnutls_session_t session;
	unsigned int n = 0;

	info = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (info == NULL || info->tls_session == NULL)
		return lb_err_set(err, LB_EFORBIDDEN, "operator requests need "
		    "HTTPS with a client certificate");
	session = (gnutls_session_t)info->tls_session;
	peers = gnutls_certificate_get_peers(session, &n);
	if (peers == NULL || n == 0 || peers[0].size == 0) {
		log_info("%s %s: no client certificate", r->method, r->path);
		return lb_err_set(err, LB_EFORBIDDEN, "no client certificate: "
		    "present your operator credential issued by this CA "
		    "(e.g. curl --cert operator.pem)");
	}
	if (peers[0].size > PEER_CERT_MAX)
		return lb_err_set(err, LB_EFORBIDDEN, "client certificate "
		    "larger than %d bytes", PEER_CERT_MAX);
	*der = peers[0].data;
	*len = peers[0].size;
	return 0;
}

/*
 * Verifies a client certificate against the CA: chain, validity, and
 * clientAuth (an operator's) or emailProtection (a subscriber's, for EST
 * renewal).  Returns its serial (malloc'ed), or NULL with err.
 */
static char *
verify_cert(const ca_ctx *ca, const unsigned char *der, size_t len,
    bool subscriber, lb_err *err)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *chain;
	char *serial = NULL;
	int e;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		ERR_clear_error();
		lb_err_set(err, LB_EFORBIDDEN, "the client certificate cannot "
		    "be parsed");
		goto out;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, ca_get0_store(ca), x, NULL) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, subscriber ?
	    X509_PURPOSE_SMIME_SIGN : X509_PURPOSE_SSL_CLIENT) != 1) {
		log_openssl("X509_STORE_CTX_init");
		lb_err_set(err, LB_EINTERNAL, "cannot verify the client "
		    "certificate");
		goto out;
	}
	/* our CA certificate is the anchor even when it is a subordinate */
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
	    X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_verify_cert(ctx) != 1) {
		e = X509_STORE_CTX_get_error(ctx);
		ERR_clear_error();
		lb_err_set(err, LB_EFORBIDDEN, "client certificate not "
		    "accepted: %s", X509_verify_cert_error_string(e));
		goto out;
	}
	/* issued by this CA itself, not by a parent in its chain */
	chain = X509_STORE_CTX_get0_chain(ctx);
	if (sk_X509_num(chain) < 2 ||
	    X509_cmp(sk_X509_value(chain, 1), ca_get0_cert(ca)) != 0) {
		lb_err_set(err, LB_EFORBIDDEN, "client certificate not "
		    "accepted: not issued by this CA");
		goto out;
	}
	/* the purpose check lets a certificate without EKU pass: operator
	 * credentials always carry clientAuth, so insist on it */
	if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) == 0 ||
	    (X509_get_extended_key_usage(x) &
	    (subscriber ? XKU_SMIME : XKU_SSL_CLIENT)) == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "client certificate not "
		    "accepted: not %s certificate", subscriber ?
		    "an S/MIME" : "a client-authentication");
		goto out;
	}
	if ((serial = ca_cert_serial(x)) == NULL)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	X509_STORE_CTX_free(ctx);
	X509_free(x);
	return serial;
}

/* The serial of the connection's verified certificate, cached. */
static char *
conn_serial(struct web_req *r, const unsigned char *der, size_t len,
    bool subscriber, lb_err *err)
{
	struct conn_cache *cc;
	unsigned char *copy;
	char *serial;

	if (der == NULL || len == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "no client certificate");
		return NULL;
	}
	cc = conn_cache_get(r->conn);
	if (cc != NULL && cc->serial != NULL && cc->der != NULL &&
	    cc->subscriber == subscriber && cc->der_len == len &&
	    memcmp(cc->der, der, len) == 0)
		return strdup(cc->serial);
	if ((serial = verify_cert(r->srv->ca, der, len, subscriber, err)) ==
	    NULL)
		return NULL;
	if (cc != NULL && (copy = malloc(len)) != NULL) {
		memcpy(copy, der, len);
		free(cc->der);
		free(cc->serial);
		X509_free(cc->x);
		cc->x = NULL;
		cc->der = copy;
		cc->der_len = len;
		cc->subscriber = subscriber;
		if ((cc->serial = strdup(serial)) == NULL) {
			free(cc->der);
			cc->der = NULL;
			cc->der_len = 0;
		}
	}
	return serial;
}

int
web_auth_operator(struct web_req *r, sqlite3 *db, lb_err *err)
{
	const unsigned char *der = NULL;
	size_t len = 0;
	char *serial = NULL, *email = NULL;
	unsigned roles;
	lb_err dberr;
	int rc = -1;

	lb_err_clear(&dberr);
	if (peer_cert(r, &der, &len, err) == -1)
		goto out;
	if ((serial = conn_serial(r, der, len, false, err)) == NULL) {
		if (err != NULL && err->code == LB_EFORBIDDEN)
			log_warnx("%s %s: %s", r->method, r->path, err->msg);
		goto out;
	}
	roles = ca_operator_roles(db, serial, &email, &dberr);
	if (dberr.code != LB_OK) {
		lb_err_set(err, dberr.code, "%s", dberr.msg);
		goto out;
	}
	if (roles == CA_ROLE_NONE) {
		log_warnx("%s %s: certificate %s is not an active operator's "
		    "credential", r->method, r->path, serial);
		lb_err_set(err, LB_EFORBIDDEN, "certificate %s is not the "
		    "credential of an active operator (unknown, removed, "
		    "revoked or expired)", serial);
		goto out;
	}
	if (email == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	r->op_serial = serial;
	r->op_email = email;
	r->op_roles = roles;
	serial = email = NULL;
	rc = 0;
out:
	free(serial);
	free(email);
	return rc;
}

int
web_auth_subscriber(struct web_req *r, X509 **cert, lb_err *err)
{
	const union MHD_ConnectionInfo *info;
	const gnutls_datum_t *peers;
	const unsigned char *p;
	struct conn_cache *cc;
	unsigned int n = 0;
	char *serial;
	lb_err verr;

	*cert = NULL;
	info = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (info == NULL || info->tls_session == NULL)
		return 0;
	peers = gnutls_certificate_get_peers(
	    (gnutls_session_t)info->tls_session, &n);
	if (peers == NULL || n == 0 || peers[0].size == 0)
		return 0;
	if (peers[0].size > PEER_CERT_MAX)
		return lb_err_set(err, LB_EUNAUTH, "client certificate larger "
		    "than %d bytes", PEER_CERT_MAX);
	lb_err_clear(&verr);
	if ((serial = conn_serial(r, peers[0].data, peers[0].size, true,
	    &verr)) == NULL)
		return lb_err_set(err, verr.code == LB_EINTERNAL ?
		    LB_EINTERNAL : LB_EUNAUTH, "%s", verr.msg);
	free(serial);
	/* keep-alive requests reuse the certificate parsed for the first */
	cc = conn_cache_get(r->conn);
	if (cc != NULL && cc->x != NULL && cc->subscriber &&
	    cc->der_len == peers[0].size &&
	    memcmp(cc->der, peers[0].data, peers[0].size) == 0 &&
	    X509_up_ref(cc->x) == 1) {
		*cert = cc->x;
		return 1;
	}
	p = peers[0].data;
	if ((*cert = d2i_X509(NULL, &p, (long)peers[0].size)) == NULL) {
		ERR_clear_error();
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	if (cc != NULL && cc->subscriber && cc->x == NULL &&
	    cc->der_len == peers[0].size &&
	    memcmp(cc->der, peers[0].data, peers[0].size) == 0 &&
	    X509_up_ref(*cert) == 1)
		cc->x = *cert;
	return 1;
}
