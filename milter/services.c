/*
 * services.c - start, reload and stop the process-wide back ends.
 *
 * Each feature adds its start/reload/stop calls here, in the order of
 * the table; stop runs in reverse.
 */
#include "services.h"

#include "overload.h"
#include "quota.h"
#include "ratelimit.h"

bool
services_start(const struct config *cfg)
{
	if (!overload_start(cfg))
		return false;
	if (!quota_start(cfg))
		return false;
	if (!ratelimit_start(cfg))
		return false;
	return true;
}

void
services_reload(const struct config *cfg)
{
	overload_reload(cfg);
	quota_reload(cfg);
	ratelimit_reload(cfg);
}

void
services_stop(void)
{
	ratelimit_stop();
	quota_stop();
	overload_stop();
}
