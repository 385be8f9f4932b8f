/*
 * check_ratelimit.c - placeholder until the ratelimit check lands: no opinion.
 */
#include "checks.h"

void
check_ratelimit(struct session *s, enum stage stage, struct verdict *v)
{
	(void)s;
	(void)stage;
	(void)v;
}

void
check_ratelimit_end(struct session *s, bool accepted)
{
	(void)s;
	(void)accepted;
}
