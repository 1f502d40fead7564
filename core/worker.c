/*
 * worker.c - the one lifecycle of lockbox's background threads (the CRL
 * and directory publishers, the key pool, the group committer, the
 * connection watchdog): a lock, a condition on CLOCK_MONOTONIC (immune to
 * wall-clock steps), a wake flag and a stop flag; started with every
 * signal blocked, stopped by setting the flag and joining.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "core/core.h"

int
core_worker_start(core_worker *w, void *(*fn)(void *), void *arg,
    const char *what, lb_err *err)
{
	sigset_t all, old;
	int e;

	memset(w, 0, sizeof(*w));
	if (pthread_mutex_init(&w->lock, NULL) != 0)
		return lb_err_set(err, LB_EINTERNAL, "cannot start the %s",
		    what);
	if (core_cond_init_monotonic(&w->cond) == -1) {
		pthread_mutex_destroy(&w->lock);
		return lb_err_set(err, LB_EINTERNAL, "cannot start the %s",
		    what);
	}
	/* the thread inherits a mask blocking every signal: the daemon's
	 * signals go to the threads that wait for them */
	sigfillset(&all);
	if ((e = pthread_sigmask(SIG_BLOCK, &all, &old)) == 0) {
		e = pthread_create(&w->thread, NULL, fn, arg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (e != 0) {
		errno = e;
		log_warn("%s: pthread_create", what);
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		return lb_err_set(err, LB_EINTERNAL, "cannot start the %s",
		    what);
	}
	w->started = true;
	return 0;
}

void
core_worker_wake(core_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->woken = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
core_worker_wait(core_worker *w, time_t until)
{
	int r;

	pthread_mutex_lock(&w->lock);
	core_cond_wait_until(&w->cond, &w->lock, &w->woken, &w->stop, until);
	r = w->stop ? -1 : w->woken ? 1 : 0;
	w->woken = false;
	pthread_mutex_unlock(&w->lock);
	return r;
}

bool
core_worker_stopping(core_worker *w)
{
	bool s;

	pthread_mutex_lock(&w->lock);
	s = w->stop;
	pthread_mutex_unlock(&w->lock);
	return s;
}

void
core_worker_stop(core_worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	w->started = false;
}
