/*
 * cli.h - what the lockbox subcommands share: the state directory default,
 * opening the CA and its database, error reporting with the exit codes
 * every command uses (0 ok, 1 failure, 2 usage) and --help handling.
 */
#ifndef LOCKBOX_CLI_H
#define LOCKBOX_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "ca/ca.h"

#define EXIT_USAGE 2

/* A subcommand: argv[0] is its name. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

int cmd_init(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_issue(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_operator(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_crl(int argc, char **argv);

int cmd_agent(int argc, char **argv);
int cmd_escrow(int argc, char **argv);
/*
 * A member's client audits the escrows since its last clean audit
 * (archive_client_audit) beside another command: each mismatch is a
 * warning on standard error.  Their number (0 also without a pin), or -1
 * when the audit could not run (warned).
 */
struct archive_transport;
int cli_escrow_audit_note(const struct archive_transport *t,
    const char *home, const char *trust);
int cmd_recovery(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_enrollment(int argc, char **argv);
/* The CRL's publication targets, one line each, as `crl status` has them. */
int cli_crl_targets_print(sqlite3 *db, lb_err *err);
int cmd_publish(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);

/* ------------------------------------------------------------------ */
/* One skeleton for every subcommand (util.c)                          */

/* What cli_run opens before the work: nothing, the CA without its key
 * and its database, or with the key (commands that sign). */
enum cli_open { CLI_NONE, CLI_DB, CLI_KEY };

/* The CA a subcommand works on, opened by cli_run. */
typedef struct cli_ctx {
	const char *dir;         /* --dir, else $LOCKBOX_DIR, else default */
	const char *dir_opt;     /* --dir as given, NULL without */
	ca_ctx *ca;
	sqlite3 *db;
	int argc;                /* the positional arguments */
	char **argv;
} cli_ctx;

/*
 * A subcommand as a table entry.  name is how usage errors name it
 * ("token create"); opts its options without --dir and --help, which
 * every subcommand takes; option is called for each of its options
 * (getopt's value and optarg) and returns -1 to go on or an exit code
 * (cli_usage's; NULL: the options need no handling); nargs_min..nargs_max positional arguments are allowed
 * (args_msg says what was wrong otherwise, NULL: "unexpected argument");
 * check, when given, looks at the whole command line before anything is
 * opened (-1 to go on, or an exit code); run does the work and returns
 * the exit code.  state is the subcommand's own struct.
 */
typedef struct cli_sub {
	const char *name;
	const char *help;
	const struct option *opts;
	int (*option)(void *state, int c, const char *arg);
	int nargs_min, nargs_max;
	const char *args_msg;
	int (*check)(void *state, const cli_ctx *c);
	enum cli_open open;
	int (*run)(void *state, cli_ctx *c);
} cli_sub;

/*
 * Runs sub over argv (argv[0] its name): --help prints sub->help and
 * exits 0, an unknown option or a wrong number of positional arguments
 * is a usage error (2), the CA is opened as sub->open says (1 when it
 * cannot be) and closed after sub->run, whose value is returned.
 */
int cli_run(const cli_sub *sub, void *state, int argc, char **argv);
/*
 * A command of several subcommands ("token create|list|revoke"): runs
 * the one argv[1] names, or prints help for --help, or is a usage error
 * naming what is expected.  Each sub's name ends in its own word.
 */
int cli_dispatch(const char *cmd, const char *help,
    const cli_sub *const *subs, void *const *states, size_t n, int argc,
    char **argv);

/*
 * `operator add` and `operator remove` (cmd_operator.c), shared with
 * `agent add|remove`: name and help as the command says them; add's
 * state is a cli_operator_add_state whose fixed is the role the command
 * implies (CA_ROLE_NONE: --role required), cmd the word its report
 * begins with and usage how its usage errors name it; remove takes no
 * state.
 */
typedef struct cli_operator_add_state {
	enum ca_role fixed, role;
	const char *cmd, *usage;
	const char *csr, *name, *email, *out, *p12, *p12_pass;
	bool keygen;
	enum ca_key_type kt;
} cli_operator_add_state;
cli_sub cli_operator_add_sub(const char *name, const char *help);
cli_sub cli_operator_remove_sub(const char *name, const char *help);
/*
 * `agent|operator request` and `... install` (cred.c): the credential made
 * on its holder's machine.  cmd is "agent" or "operator", usage how usage
 * errors name the subcommand, kt_default the key type without --key-type,
 * role_hint what add needs beside --csr (" --role ROLE" or "").
 */
typedef struct cli_cred_state {
	const char *cmd, *usage, *role_hint;
	enum ca_key_type kt_default, kt;
	const char *name, *email, *out_key, *out_csr, *pass_file;
	const char *cert, *key, *out_p12, *ca_cert;
} cli_cred_state;
cli_sub cli_cred_request_sub(const char *name, const char *help);
cli_sub cli_cred_install_sub(const char *name, const char *help);
/* --json alone: the state is a bool, set by cli_json_option. */
extern const struct option cli_json_opts[];
int cli_json_option(void *state, int c, const char *arg);

/* As cli_dispatch for subcommands in one array sharing one state. */
#define CLI_SUBS_MAX 16
int cli_dispatch_shared(const char *cmd, const char *help,
    const cli_sub *subs, size_t n, void *state, int argc, char **argv);

/* --dir, else $LOCKBOX_DIR, else ./lockbox-data. */
const char *cli_dir(const char *opt);
/* Prints "lockbox: MSG" for err and returns 1. */
int cli_fail(const lb_err *err);
/* Prints a usage error and a hint to --help; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Opens the CA (flags as ca_open) and its database; 1 on failure. */
int cli_open(const char *dir, unsigned flags, ca_ctx **ca, sqlite3 **db);
/* "local:USER": the actor recorded in the audit log for CLI changes. */
const char *cli_actor(void);
/*
 * Runs getopt_long over a subcommand's argv, handling -h/--help by printing
 * help and returning -2 (caller exits 0) and unknown options by returning
 * -3 (caller exits 2).  Otherwise returns what getopt_long returns.
 */
int cli_getopt(int argc, char **argv, const struct option *opts,
    const char *help);
/* Reads a whole file (or "-" for stdin) of at most max bytes. */
int cli_read_input(const char *path, size_t max, unsigned char **buf,
    size_t *len, lb_err *err);
/* Writes a certificate as PEM to path (0644), or stdout when path is NULL. */
int cli_write_cert(const char *path, X509 *cert, lb_err *err);
/*
 * A directory of the user's own: opt (--dir) when given, else $HOME/sub
 * (the password database's home when HOME is unset); created with its
 * parents, 0700.  malloc'ed; NULL with err when there is none ("no
 * directory for WHAT: name one with --dir") or it cannot be created.
 */
char *cli_user_dir(const char *opt, const char *sub, const char *what,
    lb_err *err);

#endif
