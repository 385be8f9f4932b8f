/*
 * check_quota.c - placeholder until the quota check lands: no opinion.
 */
#include "checks.h"

void
check_quota(struct session *s, enum stage stage, struct verdict *v)
{
	(void)s;
	(void)stage;
	(void)v;
}
