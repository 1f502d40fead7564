/*
 * signer.c - the CA key in a process of its own.  ca_signer_start forks
 * before the daemon opens its network, its database or any thread: the
 * child keeps the key, one end of a socketpair and its log, drops to the
 * daemon's account, may open no further file or socket, and answers three
 * typed requests, each checked again here against this CA's profiles:
 *
 *   CERT     a certificate, built here from the request's fields (never a
 *            CA certificate, never a profile this CA does not have);
 *   CRL      a CRL: its header without entries, plus the DER of its
 *            revokedCertificates (checked to be one SEQUENCE);
 *   RECEIPT  an escrow receipt's text, 1 to 4096 bytes.
 *
 * A request that breaks the framing, its type's size cap or its type's
 * encoding ends the child (fail closed): the parent, which produced it,
 * is not to be trusted any more, and every later signature fails until
 * the daemon is restarted.  A well-formed request that a profile refuses
 * (unknown profile, key type, e-mail) gets an error answer instead: such
 * requests come from users.
 *
 * There are one or more such children, each serving one request at a
 * time (a request takes an idle one).  The parent frees its copy of the
 * key; ca_sign_cert, ca_sign_crl_der and ca_sign_receipt send their
 * requests here.  When any child stops, all count as gone.
 *
 * Wire format over a SOCK_STREAM socketpair, integers big-endian:
 *   request:  'L' 'B' TYPE 0  LENGTH(4)  payload
 *   answer:   STATUS(4, an lb_errcode; 0 = signed)  LENGTH(4)  payload
 * The answer's payload is DER, or the error's message.  CERT's payload is
 * the DER of SignerCert, CRL's of SignerCrl (below), RECEIPT's the text.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

#define HDR_LEN     8
#define MAGIC0      'L'
#define MAGIC1      'B'
/* Request caps per type; a CRL is bounded like the file it becomes. */
#define CERT_REQ_MAX    ((size_t)16 * 1024)
#define RECEIPT_REQ_MAX ((size_t)4096)
#define CRL_REQ_MAX     ((size_t)512 * 1024 * 1024 + (size_t)64 * 1024)
/* Answer caps: a certificate or receipt, a CRL, an error message. */
#define SMALL_ANS_MAX   ((size_t)64 * 1024)
#define ERR_ANS_MAX     ((size_t)sizeof(((lb_err *)0)->msg))
/* Each name field of a certificate request. */
#define FIELD_MAX       1024

/*
 * SignerCert ::= SEQUENCE {
 *     profile     UTF8String,
 *     email       [0] IMPLICIT UTF8String OPTIONAL,
 *     givenName   [1] IMPLICIT UTF8String OPTIONAL,
 *     surname     [2] IMPLICIT UTF8String OPTIONAL,
 *     commonName  [3] IMPLICIT UTF8String OPTIONAL,
 *     dnsName     [4] IMPLICIT UTF8String OPTIONAL,
 *     ipAddress   [5] IMPLICIT UTF8String OPTIONAL,
 *     key         SubjectPublicKeyInfo,
 *     days        INTEGER }   -- 0: the profile's validity
 * SignerCrl ::= SEQUENCE {
 *     head        CertificateList,  -- no entries; signed by a throwaway
 *                                   -- key only so that it encodes
 *     revoked     OCTET STRING }    -- revokedCertificates, or empty
 */
typedef struct {
	ASN1_UTF8STRING *profile;
	ASN1_UTF8STRING *email;
	ASN1_UTF8STRING *given_name;
	ASN1_UTF8STRING *surname;
	ASN1_UTF8STRING *common_name;
	ASN1_UTF8STRING *dns_name;
	ASN1_UTF8STRING *ip;
	X509_PUBKEY *key;
	ASN1_INTEGER *days;
} SIGNER_CERT;

ASN1_SEQUENCE(SIGNER_CERT) = {
	ASN1_SIMPLE(SIGNER_CERT, profile, ASN1_UTF8STRING),
	ASN1_IMP_OPT(SIGNER_CERT, email, ASN1_UTF8STRING, 0),
	ASN1_IMP_OPT(SIGNER_CERT, given_name, ASN1_UTF8STRING, 1),
	ASN1_IMP_OPT(SIGNER_CERT, surname, ASN1_UTF8STRING, 2),
	ASN1_IMP_OPT(SIGNER_CERT, common_name, ASN1_UTF8STRING, 3),
	ASN1_IMP_OPT(SIGNER_CERT, dns_name, ASN1_UTF8STRING, 4),
	ASN1_IMP_OPT(SIGNER_CERT, ip, ASN1_UTF8STRING, 5),
	ASN1_SIMPLE(SIGNER_CERT, key, X509_PUBKEY),
	ASN1_SIMPLE(SIGNER_CERT, days, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SIGNER_CERT)

typedef struct {
	X509_CRL *head;
	ASN1_OCTET_STRING *revoked;
} SIGNER_CRL;

ASN1_SEQUENCE(SIGNER_CRL) = {
	ASN1_SIMPLE(SIGNER_CRL, head, X509_CRL),
	ASN1_SIMPLE(SIGNER_CRL, revoked, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(SIGNER_CRL)

#define CERT_IT ASN1_ITEM_rptr(SIGNER_CERT)
#define CRL_IT  ASN1_ITEM_rptr(SIGNER_CRL)

/* ------------------------------------------------------------------ */
/* Both sides: whole reads and writes                                  */

static int
write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 0, or -1 on an error or end of file (errno 0 for end of file). */
static int
read_all(int fd, unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static size_t
req_cap(int type)
{
	switch (type) {
	case CA_SIGNER_CERT:
		return CERT_REQ_MAX;
	case CA_SIGNER_CRL:
		return CRL_REQ_MAX;
	case CA_SIGNER_RECEIPT:
		return RECEIPT_REQ_MAX;
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* The signer's side                                                   */

/* A present optional string as C text, or NULL; -1 when malformed. */
static int
field(const ASN1_UTF8STRING *s, const char **out)
{
	int len;

	*out = NULL;
	if (s == NULL)
		return 0;
	len = ASN1_STRING_length(s);
	if (len <= 0 || len > FIELD_MAX ||
	    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)len) != NULL)
		return -1;
	/* OpenSSL keeps every string's data NUL-terminated */
	*out = (const char *)ASN1_STRING_get0_data(s);
	return 0;
}

static int
handle_cert(ca_ctx *ca, const unsigned char *in, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	const unsigned char *p = in;
	SIGNER_CERT *sc = NULL;
	ca_request req;
	X509 *x = NULL;
	unsigned char *der = NULL;
	int64_t days;
	int dlen, rc = CA_SIGNER_MALFORMED;

	memset(&req, 0, sizeof(req));
	if ((sc = (SIGNER_CERT *)ASN1_item_d2i(NULL, &p, (long)len,
	    CERT_IT)) == NULL || p != in + len ||
	    field(sc->profile, &req.profile) == -1 || req.profile == NULL ||
	    field(sc->email, &req.email) == -1 ||
	    field(sc->given_name, &req.given_name) == -1 ||
	    field(sc->surname, &req.surname) == -1 ||
	    field(sc->common_name, &req.common_name) == -1 ||
	    field(sc->dns_name, &req.dns_name) == -1 ||
	    field(sc->ip, &req.ip) == -1 ||
	    ASN1_INTEGER_get_int64(&days, sc->days) != 1 || days < 0 ||
	    days > (int64_t)100 * 366 ||
	    (req.pubkey = X509_PUBKEY_get0(sc->key)) == NULL) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "malformed certificate request");
		goto out;
	}
	req.days = (int)days;
	req.spki = sc->key;
	/* the profile's own checks, with the key that signs */
	rc = -1;
	if ((x = ca_build_cert(ca, &req, true, err)) == NULL)
		goto out;
	/* belt and braces: no profile builds one, and none ever may */
	if (X509_check_ca(x) != 0) {
		lb_err_set(err, LB_EFORBIDDEN, "refusing to sign a CA "
		    "certificate");
		goto out;
	}
	if ((dlen = i2d_X509(x, &der)) <= 0 ||
	    (*out = malloc((size_t)dlen)) == NULL) {
		log_openssl("i2d_X509");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the certificate");
		goto out;
	}
	memcpy(*out, der, (size_t)dlen);
	*out_len = (size_t)dlen;
	rc = 0;
out:
	OPENSSL_free(der);
	X509_free(x);
	ASN1_item_free((ASN1_VALUE *)sc, CERT_IT);
	return rc;
}

/* The CRL extensions crl/ sets; anything else is not ours. */
static bool
crl_ext_known(X509_EXTENSION *ext)
{
	switch (OBJ_obj2nid(X509_EXTENSION_get_object(ext))) {
	case NID_authority_key_identifier:
	case NID_crl_number:
	case NID_delta_crl:
	case NID_freshest_crl:
		return true;
	default:
		return false;
	}
}

static int
handle_crl(ca_ctx *ca, const unsigned char *in, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	const unsigned char *p = in;
	const STACK_OF(X509_EXTENSION) *exts;
	STACK_OF(X509_REVOKED) *rev;
	SIGNER_CRL *sc = NULL;
	int i, rc = CA_SIGNER_MALFORMED;

	if ((sc = (SIGNER_CRL *)ASN1_item_d2i(NULL, &p, (long)len,
	    CRL_IT)) == NULL || p != in + len) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "malformed CRL request");
		goto out;
	}
	rev = X509_CRL_get_REVOKED(sc->head);
	exts = X509_CRL_get0_extensions(sc->head);
	if (rev != NULL && sk_X509_REVOKED_num(rev) > 0) {
		lb_err_set(err, LB_EINVAL, "malformed CRL request: entries in "
		    "the header");
		goto out;
	}
	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		if (!crl_ext_known(sk_X509_EXTENSION_value(exts, i))) {
			lb_err_set(err, LB_EINVAL, "malformed CRL request: an "
			    "extension this CA does not set");
			goto out;
		}
	/* version, times and the entries' shape: checked as for every CRL */
	rc = ca_sign_crl_der(ca, sc->head, ASN1_STRING_get0_data(sc->revoked),
	    (size_t)ASN1_STRING_length(sc->revoked), out, out_len, err) == 0 ?
	    0 : -1;
out:
	ASN1_item_free((ASN1_VALUE *)sc, CRL_IT);
	return rc;
}

/* ca_sign_receipt, its DER moved to malloc'd memory like the others'. */
static int
receipt(ca_ctx *ca, const unsigned char *in, size_t len, unsigned char **out,
    size_t *out_len, lb_err *err)
{
	unsigned char *der = NULL;
	size_t dlen = 0;

	if (ca_sign_receipt(ca, in, len, &der, &dlen, err) == -1)
		return -1;
	if ((*out = malloc(dlen)) != NULL) {
		memcpy(*out, der, dlen);
		*out_len = dlen;
	}
	OPENSSL_free(der);
	return *out != NULL ? 0 : lb_err_set(err, LB_EINTERNAL,
	    "out of memory");
}

int
ca_signer_handle(ca_ctx *ca, int type, const unsigned char *in, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	*out = NULL;
	*out_len = 0;
	if (ca->key == NULL) {
		lb_err_set(err, LB_EINTERNAL, "the CA key is not loaded");
		return -1;
	}
	if (len == 0 || len > req_cap(type)) {
		lb_err_set(err, LB_EINVAL, "malformed request: type %d, %zu "
		    "bytes", type, len);
		return CA_SIGNER_MALFORMED;
	}
	switch (type) {
	case CA_SIGNER_CERT:
		return handle_cert(ca, in, len, out, out_len, err);
	case CA_SIGNER_CRL:
		return handle_crl(ca, in, len, out, out_len, err);
	default: /* CA_SIGNER_RECEIPT: its size is checked above */
		return receipt(ca, in, len, out, out_len, err);
	}
}

static int
answer(int fd, uint32_t status, const unsigned char *p, size_t len)
{
	unsigned char hdr[HDR_LEN];

	put32(hdr, status);
	put32(hdr + 4, (uint32_t)len);
	return write_all(fd, hdr, sizeof(hdr)) == -1 ||
	    write_all(fd, p, len) == -1 ? -1 : 0;
}

/* The child's loop: until end of file (0) or anything malformed (1). */
static int
serve(ca_ctx *ca, int fd)
{
	unsigned char hdr[HDR_LEN], *buf = NULL, *out = NULL;
	size_t len, out_len;
	lb_err err;
	int type, r;

	for (;;) {
		if (read_all(fd, hdr, sizeof(hdr)) == -1)
			return errno == 0 ? 0 : 1;
		type = hdr[2];
		len = get32(hdr + 4);
		if (hdr[0] != MAGIC0 || hdr[1] != MAGIC1 || hdr[3] != 0 ||
		    req_cap(type) == 0 || len == 0 || len > req_cap(type)) {
			log_warnx("refusing a malformed request (type %d, %zu "
			    "bytes): stopping", type, len);
			return 1;
		}
		if ((buf = malloc(len)) == NULL) {
			log_warnx("no memory for a request of %zu bytes", len);
			return 1;
		}
		if (read_all(fd, buf, len) == -1) {
			log_warnx("a request ended early: stopping");
			free(buf);
			return 1;
		}
		memset(&err, 0, sizeof(err));
		r = ca_signer_handle(ca, type, buf, len, &out, &out_len, &err);
		free(buf);
		buf = NULL;
		if (r == 0)
			r = answer(fd, 0, out, out_len);
		else if (r == CA_SIGNER_MALFORMED) {
			log_warnx("%s: stopping", err.msg);
			answer(fd, LB_EINTERNAL, (const unsigned char *)
			    "the signer refused a malformed request", 38);
			r = -2;
		} else
			r = answer(fd, (uint32_t)err.code, (const unsigned char *)
			    err.msg, strlen(err.msg));
		free(out);
		out = NULL;
		if (r != 0)
			return 1;
	}
}

/* The highest open descriptor below 64, for RLIMIT_NOFILE. */
static int
max_fd(void)
{
	int fd, hi = 2;

	for (fd = 3; fd < 64; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			hi = fd;
	return hi;
}

/* In the child: confine, then serve.  Never returns. */
__attribute__((noreturn))
static void
child(ca_ctx *ca, int fd, pid_t parent, const uid_t *uid, gid_t gid)
{
	struct rlimit rl;
	lb_err err = { 0 };
	int rc = 1;

	/* the parent's view of the signers, copied by fork: here we sign */
	free(ca->signer);
	ca->signer = NULL;
	signal(SIGINT, SIG_IGN);   /* a terminal's ^C: the parent decides */
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 ||
	    getppid() != parent)
		_exit(1);
	/* the socket as 3, stdio kept, everything else closed */
	if ((fd != 3 && (dup2(fd, 3) == -1 || close(fd) == -1)) ||
	    close_range(4, ~0U, 0) == -1) {
		log_warn("cannot close inherited descriptors");
		_exit(1);
	}
	log_rename("lockbox-signer");
	/* not dumpable already (core_process_harden); dropping keeps it so */
	if (uid != NULL && core_drop_privileges(*uid, gid, &err) == -1) {
		log_warnx("%s", err.msg);
		_exit(1);
	}
	/* no further file, socket or database */
	rl.rlim_cur = rl.rlim_max = (rlim_t)max_fd() + 1;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("setrlimit");
		_exit(1);
	}
	log_debug("pid %d holds the CA key", (int)getpid());
	rc = serve(ca, 3);
	ca_free(ca);
	_exit(rc);
}

/* ------------------------------------------------------------------ */
/* The network process's side                                          */

/* Forks one signer; its end of the socketpair into *p. */
static int
spawn(ca_ctx *ca, struct ca_signer_proc *p, const uid_t *uid, gid_t gid,
    lb_err *err)
{
	pid_t parent = getpid(), pid;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return lb_err_set(err, LB_EINTERNAL, "socketpair: %s",
		    strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1) {
		close(sv[0]);
		close(sv[1]);
		return lb_err_set(err, LB_EINTERNAL, "fork: %s",
		    strerror(errno));
	}
	if (pid == 0) {
		close(sv[0]);
		child(ca, sv[1], parent, uid, gid);
	}
	close(sv[1]);
	p->fd = sv[0];
	p->pid = pid;
	return 0;
}

int
ca_signer_start(ca_ctx *ca, const char *user, int nproc, lb_err *err)
{
	struct ca_signer *s = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	bool drop = false;
	int i;

	if (ca->key == NULL || ca->signer != NULL)
		return lb_err_set(err, LB_EINTERNAL, "the CA key is not "
		    "loaded here");
	if (nproc < 1 || nproc > CA_SIGNER_MAX)
		return lb_err_set(err, LB_EINVAL, "signer processes: 1 to %d, "
		    "not %d", CA_SIGNER_MAX, nproc);
	if (user != NULL && geteuid() == 0) {
		if (core_user_lookup(user, &uid, &gid, err) == -1)
			return -1;
		drop = true;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	atomic_init(&s->dead, false);
	atomic_init(&s->next, 0);
	ca->signer = s;
	for (i = 0; i < nproc; i++) {
		if (pthread_mutex_init(&s->proc[i].lock, NULL) != 0) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			break;
		}
		s->proc[i].fd = -1;
		s->n = i + 1;
		if (spawn(ca, &s->proc[i], drop ? &uid : NULL, gid, err) == -1)
			break;
	}
	if (i < nproc) {
		ca_signer_stop(ca);
		return -1;
	}
	/* from now on only the children have the key */
	EVP_PKEY_free(ca->key);
	ca->key = NULL;
	return 0;
}

int
ca_signer_pids(const ca_ctx *ca, pid_t *pids, int max)
{
	int i;

	for (i = 0; ca->signer != NULL && i < ca->signer->n && i < max; i++)
		pids[i] = ca->signer->proc[i].pid;
	return i;
}

/*
 * Whether a signer has stopped: its socket hung up.  Safe while others
 * use the sockets (a signer never hangs up in the middle of an answer it
 * will still give), so every request checks them all, and a stopped
 * signer is noticed before its siblings sign anything more.
 */
static bool
hung_up(struct ca_signer *s)
{
	struct pollfd pfd[CA_SIGNER_MAX];
	int i;

	if (atomic_load(&s->dead))
		return true;
	for (i = 0; i < s->n; i++) {
		pfd[i].fd = s->proc[i].fd;
		pfd[i].events = 0;
		pfd[i].revents = 0;
	}
	if (poll(pfd, (nfds_t)s->n, 0) <= 0)
		return false;
	for (i = 0; i < s->n; i++)
		if (pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			if (!atomic_exchange(&s->dead, true))
				log_warnx("the signer process (pid %d) is gone: "
				    "nothing can be signed until lockbox serve "
				    "is restarted", (int)s->proc[i].pid);
			return true;
		}
	return false;
}

bool
ca_signer_alive(ca_ctx *ca)
{
	if (ca->signer == NULL)
		return ca->key != NULL;
	return !hung_up(ca->signer);
}

void
ca_signer_stop(ca_ctx *ca)
{
	struct ca_signer *s = ca->signer;
	int i, st;

	if (s == NULL)
		return;
	ca->signer = NULL;
	/* end of file: each child finishes what it signs and exits */
	for (i = 0; i < s->n; i++)
		if (s->proc[i].fd != -1)
			close(s->proc[i].fd);
	for (i = 0; i < s->n; i++) {
		while (s->proc[i].fd != -1 && waitpid(s->proc[i].pid, &st,
		    0) == -1 && errno == EINTR)
			;
		pthread_mutex_destroy(&s->proc[i].lock);
	}
	free(s);
}

/*
 * Marks the signers gone (logged once): one that stopped may have been
 * made to, so none is trusted any more.  p->lock held.
 */
static int
gone(struct ca_signer *s, const struct ca_signer_proc *p, lb_err *err)
{
	if (!atomic_exchange(&s->dead, true))
		log_warnx("the signer process (pid %d) is gone: nothing can "
		    "be signed until lockbox serve is restarted", (int)p->pid);
	return lb_err_set(err, LB_EINTERNAL, "the CA's signer process has "
	    "stopped: restart the daemon");
}

/* An idle signer, locked; the next in turn (waited for) when all are
 * busy. */
static struct ca_signer_proc *
take(struct ca_signer *s)
{
	unsigned start = atomic_fetch_add(&s->next, 1), i, n;
	struct ca_signer_proc *p;

	/* ca_signer_start keeps none with fewer than one */
	n = s->n > 0 ? (unsigned)s->n : 1;
	for (i = 0; i < n; i++) {
		p = &s->proc[(start + i) % n];
		if (pthread_mutex_trylock(&p->lock) == 0)
			return p;
	}
	p = &s->proc[start % n];
	pthread_mutex_lock(&p->lock);
	return p;
}

/*
 * One request and its answer.  *out (malloc) is the DER on success;
 * otherwise -1 with the signer's error class and message.
 */
static int
exchange(ca_ctx *ca, int type, const unsigned char *req, size_t len,
    size_t cap, unsigned char **out, size_t *out_len, lb_err *err)
{
	struct ca_signer *s = ca->signer;
	struct ca_signer_proc *p;
	unsigned char hdr[HDR_LEN], *buf = NULL;
	uint32_t status;
	size_t alen;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	hdr[0] = MAGIC0;
	hdr[1] = MAGIC1;
	hdr[2] = (unsigned char)type;
	hdr[3] = 0;
	put32(hdr + 4, (uint32_t)len);
	p = take(s);
	if (hung_up(s)) {
		gone(s, p, err);
		goto out;
	}
	if (write_all(p->fd, hdr, sizeof(hdr)) == -1 ||
	    write_all(p->fd, req, len) == -1 ||
	    read_all(p->fd, hdr, sizeof(hdr)) == -1) {
		gone(s, p, err);
		goto out;
	}
	status = get32(hdr);
	alen = get32(hdr + 4);
	if (alen > (status == 0 ? cap : ERR_ANS_MAX) ||
	    (status == 0 && alen == 0) || status > LB_ETHROTTLED ||
	    (buf = malloc(alen + 1)) == NULL ||
	    read_all(p->fd, buf, alen) == -1) {
		gone(s, p, err);
		goto out;
	}
	if (status != 0) {
		buf[alen] = '\0';
		lb_err_set(err, (enum lb_errcode)status, "%s", (char *)buf);
		goto out;
	}
	*out = buf;
	*out_len = alen;
	buf = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&p->lock);
	free(buf);
	return rc;
}

static int
str_field(ASN1_UTF8STRING **f, const char *v, bool optional)
{
	if (v == NULL)
		return optional ? 0 : -1;
	if (*f == NULL && (*f = ASN1_UTF8STRING_new()) == NULL)
		return -1;
	return ASN1_STRING_set(*f, v, -1) == 1 ? 0 : -1;
}

/* The request's key: the caller's encoding (borrowed) when it has one. */
static int
set_key(SIGNER_CERT *sc, const ca_request *req)
{
	if (req->spki == NULL)
		return X509_PUBKEY_set(&sc->key, req->pubkey) == 1 ? 0 : -1;
	X509_PUBKEY_free(sc->key);
	sc->key = req->spki;
	return 0;
}

X509 *
ca_signer_sign_cert(ca_ctx *ca, const ca_request *req, lb_err *err)
{
	SIGNER_CERT *sc = NULL;
	unsigned char *der = NULL, *ans = NULL;
	const unsigned char *p;
	size_t alen;
	X509 *x = NULL;
	int dlen;

	if (req->profile == NULL || req->pubkey == NULL) {
		lb_err_set(err, LB_EINVAL, "a certificate needs a profile and "
		    "a public key");
		return NULL;
	}
	if ((sc = (SIGNER_CERT *)ASN1_item_new(CERT_IT)) == NULL ||
	    str_field(&sc->profile, req->profile, false) == -1 ||
	    str_field(&sc->email, req->email, true) == -1 ||
	    str_field(&sc->given_name, req->given_name, true) == -1 ||
	    str_field(&sc->surname, req->surname, true) == -1 ||
	    str_field(&sc->common_name, req->common_name, true) == -1 ||
	    str_field(&sc->dns_name, req->dns_name, true) == -1 ||
	    str_field(&sc->ip, req->ip, true) == -1 ||
	    set_key(sc, req) == -1 ||
	    ASN1_INTEGER_set_int64(sc->days, req->days) != 1 ||
	    (dlen = ASN1_item_i2d((ASN1_VALUE *)sc, &der, CERT_IT)) <= 0) {
		log_openssl("ca_signer_sign_cert");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the request");
		goto out;
	}
	if ((size_t)dlen > CERT_REQ_MAX) {
		lb_err_set(err, LB_EINVAL, "the certificate request is too "
		    "large (%d bytes)", dlen);
		goto out;
	}
	if (exchange(ca, CA_SIGNER_CERT, der, (size_t)dlen, SMALL_ANS_MAX,
	    &ans, &alen, err) == -1)
		goto out;
	p = ans;
	if ((x = d2i_X509(NULL, &p, (long)alen)) == NULL) {
		log_openssl("d2i_X509");
		lb_err_set(err, LB_EINTERNAL, "the signer's certificate does "
		    "not parse");
	}
out:
	if (sc != NULL && req->spki != NULL && sc->key == req->spki)
		sc->key = NULL;   /* borrowed */
	free(ans);
	OPENSSL_free(der);
	ASN1_item_free((ASN1_VALUE *)sc, CERT_IT);
	return x;
}

int
ca_signer_sign_crl(ca_ctx *ca, X509_CRL *head, const unsigned char *revoked,
    size_t rlen, unsigned char **out, size_t *out_len, lb_err *err)
{
	EVP_PKEY *carrier = NULL;
	unsigned char *h = NULL, *req = NULL, *p;
	int hlen, inner, total, rc = -1;

	*out = NULL;
	*out_len = 0;
	if (rlen > CRL_REQ_MAX - (size_t)64 * 1024)
		return lb_err_set(err, LB_ETOOBIG, "the CRL is too large to "
		    "sign (%zu bytes of entries)", rlen);
	/* an unsigned CRL does not encode: a throwaway signature carries
	 * the header, and the signer replaces it */
	if ((carrier = EVP_EC_gen("P-256")) == NULL ||
	    X509_CRL_sign(head, carrier, EVP_sha256()) <= 0 ||
	    (hlen = i2d_X509_CRL(head, &h)) <= 0) {
		log_openssl("ca_signer_sign_crl");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the CRL request");
		goto out;
	}
	/* SignerCrl, its header written here: the entries are copied once */
	inner = hlen + ASN1_object_size(0, (int)rlen, V_ASN1_OCTET_STRING);
	total = ASN1_object_size(1, inner, V_ASN1_SEQUENCE);
	if ((req = malloc((size_t)total)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory for the CRL");
		goto out;
	}
	p = req;
	ASN1_put_object(&p, 1, inner, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, h, (size_t)hlen);
	p += hlen;
	ASN1_put_object(&p, 0, (int)rlen, V_ASN1_OCTET_STRING,
	    V_ASN1_UNIVERSAL);
	if (rlen > 0)
		memcpy(p, revoked, rlen);
	rc = exchange(ca, CA_SIGNER_CRL, req, (size_t)total, CRL_REQ_MAX,
	    out, out_len, err);
out:
	free(req);
	OPENSSL_free(h);
	EVP_PKEY_free(carrier);
	return rc;
}

int
ca_signer_sign_receipt(ca_ctx *ca, const unsigned char *data, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	unsigned char *ans = NULL;
	size_t alen = 0;

	*out = NULL;
	*out_len = 0;
	if (len == 0 || len > RECEIPT_REQ_MAX)
		return lb_err_set(err, LB_EINVAL, "a receipt holds 1 to 4096 "
		    "bytes");
	if (exchange(ca, CA_SIGNER_RECEIPT, data, len, SMALL_ANS_MAX, &ans,
	    &alen, err) == -1)
		return -1;
	/* ca_sign_receipt's contract: OPENSSL_free */
	*out = OPENSSL_memdup(ans, alen);
	free(ans);
	if (*out == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	*out_len = alen;
	return 0;
}
