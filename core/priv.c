/*
 * priv.c - process privileges: looking up the account a daemon runs as,
 * dropping to it for good, and keeping processes that hold secrets out of
 * core dumps and out of reach of ptrace by their own uid.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "core/core.h"

int
core_user_lookup(const char *name, uid_t *uid, gid_t *gid, lb_err *err)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int e;

	if (name == NULL || *name == '\0')
		return lb_err_set(err, LB_EINVAL, "no user name given");
	e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (e != 0 || res == NULL)
		return lb_err_set(err, LB_EINVAL, "user '%s' does not exist: "
		    "create it (e.g. 'useradd --system %s') or change 'user' "
		    "in lockbox.conf", name, name);
	if (pw.pw_uid == 0)
		return lb_err_set(err, LB_EINVAL, "user '%s' is root: name an "
		    "unprivileged account", name);
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int
core_drop_privileges(uid_t uid, gid_t gid, lb_err *err)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		return lb_err_set(err, LB_EINTERNAL, "cannot drop privileges "
		    "to uid %u: %s", (unsigned)uid, strerror(errno));
	/* for good: every id changed and no way back */
	if (getresuid(&r, &e, &s) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    r != uid || e != uid || s != uid || rg != gid || eg != gid ||
	    sg != gid || setuid(0) != -1)
		return lb_err_set(err, LB_EINTERNAL, "privileges were not "
		    "dropped to uid %u", (unsigned)uid);
	/* a credential change resets the flag from the sysctl: set it again */
	return core_no_dumps(err);
}

int
core_no_dumps(lb_err *err)
{
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    setrlimit(RLIMIT_CORE, &rl) == -1)
		return lb_err_set(err, LB_EINTERNAL, "cannot turn core dumps "
		    "off: %s", strerror(errno));
	return 0;
}
