/*
 * control_stubs.c - placeholders for the control commands written in
 * control_explain.c and control_ratelimit.c, so that this branch builds
 * without them: each answers "501 not implemented".  Removed when those
 * files are merged.
 */
#include "control.h"

void
control_cmd_explain(int argc, char **argv, bool json, struct control_out *out)
{
	(void)argc;
	(void)argv;
	(void)json;
	control_fail(out, 501, "not implemented");
}

void
control_cmd_ratelimit(int argc, char **argv, bool json, struct control_out *out)
{
	(void)argc;
	(void)argv;
	(void)json;
	control_fail(out, 501, "not implemented");
}
