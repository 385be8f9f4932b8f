/*
 * log.h - every log line mxgate writes: syslog, and stderr with -f.
 *
 * The decision line is policy.c's.  Thread-safe (syslog(3) is; the level is atomic).
 */
#ifndef MXGATE_LOG_H
#define MXGATE_LOG_H

#include <stdbool.h>

#include "config.h"

void	log_open(const char *ident, int facility, bool to_stderr);
void	log_set_level(enum log_level level);
void	log_close(void);

/* True when a line of level is written (to skip building one that is not). */
bool	log_enabled(enum log_level level);

void	log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
