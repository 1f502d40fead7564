/* cmd_token.c - placeholder until the command lands. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_token(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "lockbox: token: not available yet\n");
	return 1;
}
