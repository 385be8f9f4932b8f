/*
 * services.h - process-wide back ends: set up before smfi_main, told about
 * reloads, torn down at exit (database library, memcached pools, the
 * overload sampler).  Called from main.c only.
 */
#ifndef MXGATE_SERVICES_H
#define MXGATE_SERVICES_H

#include <stdbool.h>

#include "config.h"

/* Before smfi_main(), single-threaded; false when mxgate cannot run. */
bool	services_start(const struct config *cfg);

/* A new snapshot was installed (the reload thread). */
void	services_reload(const struct config *cfg);

/* After smfi_main() returned. */
void	services_stop(void);

#endif
