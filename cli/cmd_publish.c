/* cmd_publish.c - placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_publish(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "lockbox: publish: not available yet\n");
	return 1;
}
