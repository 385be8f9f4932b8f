/*
 * log.c - syslog and stderr output (the decision line is policy.c's).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static atomic_int max_level = LOG_LEVEL_INFO;
static bool also_stderr;

static const int syslog_priority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
static const char *const level_names[] = {"error", "warning", "info", "debug"};

void
log_open(const char *ident, int facility, bool to_stderr)
{
	also_stderr = to_stderr;
	openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&max_level, (int)level);
}

void
log_close(void)
{
	closelog();
}

bool
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&max_level);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char	line[2048];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	syslog(syslog_priority[level], "%s", line);
	if (also_stderr) {
		/* Warnings and errors are tagged as Postfix does; info lines are not. */
		if (level <= LOG_LEVEL_WARNING)
			fprintf(stderr, "mxgate: %s: %s\n", level_names[level], line);
		else
			fprintf(stderr, "mxgate: %s\n", line);
	}
}
