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
	char *pem;
	size_t len;
	int rc = -1;

	if ((pem = ca_certs_pem(&cert, 1, NULL, &len)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "cannot encode the "
		    "certificate");
	if (path == NULL) {
		if (fwrite(pem, 1, len, stdout) != len || fflush(stdout) != 0) {
			lb_err_set(err, LB_EINTERNAL, "cannot write to stdout");
			goto out;
		}
	} else if (core_file_write(path, pem, len, 0644, false, err) == -1) {
		goto out;
	}
	rc = 0;
out:
	free(pem);
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

/* ------------------------------------------------------------------ */
/* The subcommand skeleton                                             */

/* Options of any one subcommand, --dir and --help included. */
#define OPTS_MAX 32

int
cli_run(const cli_sub *sub, void *state, int argc, char **argv)
{
	struct option all[OPTS_MAX];
	cli_ctx c;
	size_t n = 0, k;
	int ch, rc;

	memset(&c, 0, sizeof(c));
	all[n++] = (struct option){ "dir", required_argument, NULL, 'd' };
	all[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (k = 0; sub->opts != NULL && sub->opts[k].name != NULL &&
	    n < OPTS_MAX - 1; k++)
		all[n++] = sub->opts[k];
	memset(&all[n], 0, sizeof(all[n]));
	argv[0] = (char *)sub->name;
	optind = 1;
	while ((ch = cli_getopt(argc, argv, all, sub->help)) != -1) {
		if (ch == -2)
			return 0;
		if (ch == -3)
			return EXIT_USAGE;
		if (ch == 'd')
			c.dir = optarg;
		else if (sub->option != NULL &&
		    (rc = sub->option(state, ch, optarg)) != -1)
			return rc;
	}
	c.argc = argc - optind;
	c.argv = argv + optind;
	if (c.argc < sub->nargs_min || c.argc > sub->nargs_max) {
		if (sub->args_msg != NULL)
			return cli_usage(sub->name, "%s", sub->args_msg);
		return cli_usage(sub->name, "unexpected argument '%s'",
		    c.argc > sub->nargs_max ? c.argv[sub->nargs_max] : "");
	}
	c.dir_opt = c.dir;
	c.dir = cli_dir(c.dir);
	if (sub->check != NULL && (rc = sub->check(state, &c)) != -1)
		return rc;
	if (sub->open != CLI_NONE && cli_open(c.dir, sub->open == CLI_DB ?
	    CA_OPEN_NO_KEY : 0, &c.ca, &c.db) != 0)
		return 1;
	rc = sub->run(state, &c);
	core_db_close(c.db);
	ca_free(c.ca);
	return rc;
}

int
cli_dispatch(const char *cmd, const char *help, const cli_sub *const *subs,
    void *const *states, size_t n, int argc, char **argv)
{
	char expected[128] = "";
	const char *word;
	size_t i;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(help, stdout);
		return 0;
	}
	for (i = 0; i < n; i++) {
		word = strrchr(subs[i]->name, ' ');
		word = word != NULL ? word + 1 : subs[i]->name;
		if (argc >= 2 && strcmp(argv[1], word) == 0)
			return cli_run(subs[i], states[i], argc - 1, argv + 1);
		snprintf(expected + strlen(expected), sizeof(expected) -
		    strlen(expected), "%s%s", i == 0 ? "" : i + 1 == n ?
		    " or " : ", ", word);
	}
	return cli_usage(cmd, "expected %s", expected);
}

int
cli_dispatch_shared(const char *cmd, const char *help, const cli_sub *subs,
    size_t n, void *state, int argc, char **argv)
{
	const cli_sub *sp[CLI_SUBS_MAX];
	void *st[CLI_SUBS_MAX];
	size_t i;

	for (i = 0; i < n && i < CLI_SUBS_MAX; i++) {
		sp[i] = &subs[i];
		st[i] = state;
	}
	return cli_dispatch(cmd, help, sp, st, i, argc, argv);
}

int
cli_json_option(void *state, int c, const char *arg)
{
	(void)arg;
	if (c == 'j')
		*(bool *)state = true;
	return -1;
}

const struct option cli_json_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};
