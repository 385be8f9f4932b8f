/*
 * metrics.h - the metrics endpoint: GET /metrics in Prometheus's text
 * exposition format (version 0.0.4) on the address the `metrics` key
 * names, "inet:PORT@ADDRESS" or "inet6:PORT@[ADDRESS]" (a numeric address:
 * it listens there only).  Every metric is listed in doc/METRICS.md.
 *
 * Contract: metrics_start() with an empty `metrics` does nothing; with
 * any other spelling, or an address it cannot listen on, it logs why
 * (naming the key) and returns false, and mxgate does not start.  The
 * key is read at start only: a reload keeps the running endpoint.
 * GET and HEAD of /metrics answer 200; another path 404; another method
 * 405 (with "Allow: GET, HEAD").  The HTTP side is libmicrohttpd's own
 * thread, with a connection limit and an idle timeout.
 *
 * The exposition only reads what stats.h, quota_stats(), overload.h and
 * the current configuration snapshot already keep: serving it adds
 * nothing to the SMTP path.
 *
 * Thread-safety: metrics_start() and metrics_stop() from the main thread;
 * metrics_write() from any thread (the endpoint's, tests).
 */
#ifndef MXGATE_METRICS_H
#define MXGATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config.h"

#define METRICS_CONNECTIONS_MAX	16	/* scrapers at once; more are refused */
#define METRICS_PER_CLIENT_MAX	4	/* of them from one address: one slow client cannot take all */
#define METRICS_TIMEOUT_S	5	/* an idle connection is closed after this */

/*
 * Parse a `metrics` value into a socket address (port and numeric
 * address); false with a one-line reason in why when it is not one.
 */
bool	metrics_parse(const char *spec, struct sockaddr_storage *out, socklen_t *len,
		      char *why, size_t why_size);

/* Start the endpoint on cfg->metrics (nothing when empty); false (logged) when it cannot. */
bool	metrics_start(const struct config *cfg);

/* Stop it: no-op when it is not running. */
void	metrics_stop(void);

/*
 * Write the whole exposition to fp, for configuration cfg and the
 * engine named engine ("libmilter", "builtin"); false on a write error.
 * (metrics_expose.c)
 */
bool	metrics_write(FILE *fp, const struct config *cfg, const char *engine);

/* Write value as a label value: quoted, with \\, \" and \n escaped. */
void	metrics_label_value(FILE *fp, const char *value);

#endif
