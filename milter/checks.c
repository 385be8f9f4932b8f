/*
 * checks.c - the check table (checks.h): a check is one row.
 *
 * Order matters twice: the first opinion wins, so the cheapest and
 * broadest checks come first; and rate limits run last, so that nothing
 * they charge is then refused by another check.
 */
#include "checks.h"

#include <assert.h>

#include "stats.h"

const struct check *const check_table[] = {
	&check_overload,
	&check_helo_required,
	&check_helo,
	&check_quota,
	&check_ratelimit,
};

const size_t check_count = sizeof(check_table) / sizeof(check_table[0]);

static_assert(sizeof(check_table) / sizeof(check_table[0]) <= STATS_CHECKS,
	      "stats.h counts decisions for every row");

bool
checks_want_message_size(const struct config *cfg)
{
	if (cfg->quota.enabled && cfg->quota.check_real_size)
		return true;
	if (!cfg->ratelimit.enabled)
		return false;
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++)
		if (cfg->ratelimit.rules[i].count == RATE_COUNT_BYTES)
			return true;
	return false;
}
