/*
 * services.c - start, reload and stop the process-wide back ends of the
 * checks (checks.h): in table order, stop in reverse.
 */
#include "services.h"

#include "checks.h"

bool
services_start(const struct config *cfg)
{
	for (size_t i = 0; i < check_count; i++)
		if (check_table[i]->start != NULL && !check_table[i]->start(cfg))
			return false;
	return true;
}

void
services_reload(const struct config *cfg)
{
	for (size_t i = 0; i < check_count; i++)
		if (check_table[i]->reload != NULL)
			check_table[i]->reload(cfg);
}

void
services_stop(void)
{
	for (size_t i = check_count; i-- > 0;)
		if (check_table[i]->stop != NULL)
			check_table[i]->stop();
}
