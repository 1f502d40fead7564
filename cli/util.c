/*
 * util.c - helpers shared by the subcommands (see cli.h).
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cli/cli.h"

const char *
cli_dir(const char *opt)
{
	const char *env;

	if (opt != NULL)
		return opt;
	if ((env = getenv("LOCKBOX_DIR")) != NULL && env[0] != '\0')
		return env;
	return "./lockbox-data";
}

int
cli_fail(const lb_err *err)
{
	fprintf(stderr, "lockbox: %s\n", err->msg[0] ? err->msg :
	    "failed (run with -v for details)");
	return 1;
}

int
cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lockbox %s: ", cmd);
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above */
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'lockbox %s --help'.\n", cmd);
	return EXIT_USAGE;
}

int
cli_open(const char *dir, unsigned flags, ca_ctx **ca, sqlite3 **db)
{
	lb_err err = { 0 };

	*db = NULL;
	if ((*ca = ca_open(dir, flags, &err)) == NULL)
		return cli_fail(&err);
	if ((*db = ca_db_open(*ca, &err)) == NULL) {
		ca_free(*ca);
		*ca = NULL;
		return cli_fail(&err);
	}
	return 0;
}

const char *
cli_actor(void)
{
	static char actor[96];
	struct passwd *pw;

	if (actor[0] == '\0') {
		pw = getpwuid(getuid());
		snprintf(actor, sizeof(actor), "local:%s",
		    pw != NULL ? pw->pw_name : "unknown");
	}
	return actor;
}

int
cli_getopt(int argc, char **argv, const struct option *opts, const char *help)
{
	int c = getopt_long(argc, argv, "h", opts, NULL);

	if (c == 'h') {
		fputs(help, stdout);
		return -2;
	}
	if (c == '?') {
		fprintf(stderr, "Try 'lockbox %s --help'.\n", argv[0]);
		return -3;
	}
	return c;
}

int
cli_read_input(const char *path, size_t max, unsigned char **buf, size_t *len,
    lb_err *err)
{
	return core_file_read(strcmp(path, "-") == 0 ? "/dev/stdin" : path,
	    max, buf, len, err);
}

int
cli_write_cert(const char *path, X509 *cert, lb_err *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = -1;

	if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the certificate");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (path == NULL) {
		if (fwrite(data, 1, (size_t)len, stdout) != (size_t)len ||
		    fflush(stdout) != 0) {
			lb_err_set(err, LB_EINTERNAL, "cannot write to stdout");
			goto out;
		}
	} else if (core_file_write(path, data, (size_t)len, 0644, false,
	    err) == -1) {
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

char *
cli_user_dir(const char *opt, const char *sub, const char *what, lb_err *err)
{
	const char *home = getenv("HOME");
	struct passwd *pw;
	char *dir = NULL, *p, save;

	if (opt != NULL) {
		dir = strdup(opt);
	} else {
		if ((home == NULL || home[0] == '\0') &&
		    (pw = getpwuid(getuid())) != NULL)
			home = pw->pw_dir;
		if (home == NULL || asprintf(&dir, "%s/%s", home, sub) == -1)
			dir = NULL;
	}
	if (dir == NULL || dir[0] == '\0') {
		free(dir);
		lb_err_set(err, LB_EINVAL, "no directory for %s: name one with "
		    "--dir", what);
		return NULL;
	}
	/* each parent in turn: mkdir -p, 0700 for what is new */
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		save = *p;
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			lb_err_set(err, LB_EINVAL, "cannot create %s: %s", dir,
			    strerror(errno));
			free(dir);
			return NULL;
		}
		*p = save;
		if (save == '\0')
			break;
	}
	return dir;
}
