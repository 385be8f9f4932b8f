/*
 * log.h - every log line mxgate writes: syslog, and stderr with -f.
 *
 * Contract: log_decision() writes the one Postfix-style line per decision
 * that README.md "Logging" fixes; every client string in it is made
 * printable and bounded.  Thread-safe (syslog(3) is; the level is atomic).
 */
#ifndef MXGATE_LOG_H
#define MXGATE_LOG_H

#include <stdbool.h>

#include "config.h"
#include "session.h"
#include "verdict.h"

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

/*
 * "QUEUEID: ACTION: STAGE from NAME[ADDR]: CODE DSN TEXT; from=<..> to=<..>
 * helo=<..> check=CHECK".  action is "reject", "reject_warning", "hold",
 * "warn" or "accept" (a backend failure let through); stage is "MAIL" or "RCPT".
 */
void	log_decision(const struct session *s, const char *action, const char *stage,
		     const struct verdict *v, const char *detail);

#endif
