/*
 * services.h - process-wide back ends: set up before milter_run, told about
 * reloads, torn down at exit (database library, memcached pools, the
 * overload sampler).  Called from main.c only.
 */
#ifndef MXGATE_SERVICES_H
#define MXGATE_SERVICES_H

#include <stdbool.h>

#include "config.h"

/* Before milter_run(), single-threaded; false when mxgate cannot run. */
bool	services_start(const struct config *cfg);

/* A new snapshot was installed (the reload thread). */
void	services_reload(const struct config *cfg);

/* After milter_run() returned. */
void	services_stop(void);

#endif
