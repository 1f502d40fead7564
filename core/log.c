/*
 * log.c - a tiny logging module after OpenBSD's: stderr in the foreground,
 * syslog for the daemon, errno preserved, OpenSSL's error queue drained in
 * one place.  Also the lb_err helpers, since both format user messages.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <openssl/err.h>

#include "core/core.h"

static const char *prog = "lockbox";
static bool to_syslog;
static int verbosity;

void
log_init(const char *progname, bool use_syslog)
{
	prog = progname;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_rename(const char *progname)
{
	prog = progname;
	if (to_syslog) {
		closelog();
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

void
log_set_verbosity(int level)
{
	verbosity = level;
}

static void vlog(int, const char *, va_list, const char *)
    __attribute__((format(printf, 2, 0)));

static void
vlog(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char buf[1024];

	/*
	 * Every caller va_starts ap before this call and va_ends it after;
	 * the analyzer's va_list model still calls ap uninitialized here.
	 */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): see above */
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (to_syslog) {
		if (suffix != NULL)
			syslog(pri, "%s: %s", buf, suffix);
		else
			syslog(pri, "%s", buf);
		return;
	}
	if (suffix != NULL)
		fprintf(stderr, "%s: %s: %s\n", prog, buf, suffix);
	else
		fprintf(stderr, "%s: %s\n", prog, buf);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (verbosity < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (verbosity < 2)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
	errno = saved;
}

int
log_openssl(const char *what)
{
	unsigned long e;
	const char *file, *data, *func;
	int line, flags;
	char buf[256];

	log_debug("%s failed", what);
	while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_debug("  openssl: %s%s%s", buf,
		    (flags & ERR_TXT_STRING) ? ": " : "",
		    (flags & ERR_TXT_STRING) ? data : "");
	}
	return -1;
}

int
lb_err_set(lb_err *err, enum lb_errcode code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err->code != LB_OK)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above */
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void
lb_err_clear(lb_err *err)
{
	if (err == NULL)
		return;
	err->code = LB_OK;
	err->msg[0] = '\0';
}

int
lb_err_http_status(enum lb_errcode code)
{
	switch (code) {
	case LB_OK:
		return 200;
	case LB_EINVAL:
		return 400;
	case LB_EFORBIDDEN:
		return 403;
	case LB_ENOTFOUND:
		return 404;
	case LB_ECONFLICT:
		return 409;
	case LB_ETOOBIG:
		return 413;
	case LB_EUNAUTH:
		return 401;
	case LB_ETHROTTLED:
		return 429;
	case LB_EINTERNAL:
	default:
		return 500;
	}
}
