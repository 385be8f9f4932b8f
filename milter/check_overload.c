/*
 * check_overload.c - placeholder until the overload check lands: no opinion.
 */
#include "checks.h"

void
check_overload(struct session *s, enum stage stage, struct verdict *v)
{
	(void)s;
	(void)stage;
	(void)v;
}
