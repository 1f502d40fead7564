/*
 * bench.h - what the benchmark programs in bench/ share: argument parsing
 * and a monotonic clock.  Header-only: each benchmark is its own program.
 */
#ifndef LOCKBOX_BENCH_H
#define LOCKBOX_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The whole number s in [min, max]; exits 2 naming prog otherwise. */
static inline int
bench_parse_count(const char *prog, const char *s, int min, int max)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: '%s' is not a number in [%d, %d]\n", prog,
		    s, min, max);
		exit(2);
	}
	return (int)v;
}

/* Seconds on the monotonic clock. */
static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
