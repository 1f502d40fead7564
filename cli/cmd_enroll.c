/* cmd_enroll.c - placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_enroll(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "lockbox: enroll: not available yet\n");
	return 1;
}
