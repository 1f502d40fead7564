/* cmd_request.c - placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_request(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "lockbox: request: not available yet\n");
	return 1;
}
