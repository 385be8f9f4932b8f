/*
 * services.c - start, reload and stop the process-wide back ends.
 *
 * Each feature adds its start/reload/stop calls here, in the order of
 * the table; stop runs in reverse.
 */
#include "services.h"

bool
services_start(const struct config *cfg)
{
	(void)cfg;
	return true;
}

void
services_reload(const struct config *cfg)
{
	(void)cfg;
}

void
services_stop(void)
{
}
