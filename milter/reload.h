/*
 * reload.h - one reload of the configuration, for SIGUSR1 (main.c's
 * reload thread) and the control socket's "reload" (control.c): both get
 * the same behaviour, logging and counting.
 *
 * Contract: the file the running configuration came from is read again
 * (the embedded defaults when it came from none).  On success the new
 * snapshot is installed and the services told; on failure every error is
 * logged, and passed to report as well, and the running configuration
 * stays.  Each outcome is counted (stats_reload).
 *
 * Thread-safety: callable from any thread; reloads run one at a time.
 */
#ifndef MXGATE_RELOAD_H
#define MXGATE_RELOAD_H

#include <stdbool.h>

#include "config.h"

/* Reload; true when the new configuration runs.  report (may be NULL) gets each "FILE:LINE: message". */
bool	mxgate_reload(config_report_fn *report, void *arg);

#endif
