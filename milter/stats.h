/*
 * stats.h - counters of what mxgate did, for the control socket's "stats"
 * and the metrics endpoint: decisions by check and action, back-end
 * requests by back end, server and result with their latency, rate-limit
 * fallbacks to the in-process store, sessions, reloads.
 *
 * Counting costs the SMTP path no lock and no system call: every counter
 * is a relaxed atomic, and a back end's slot is registered once, when its
 * store or source is made (not per request).  Readers take a snapshot
 * that is consistent per counter, not across counters.  Thread-safe.
 */
#ifndef MXGATE_STATS_H
#define MXGATE_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_CHECKS	8	/* rows of the check table (checks.c asserts it) */
#define STATS_BACKENDS	32	/* back-end slots: servers of every store and source */
#define STATS_NAME_MAX	128

/* What a decision line says (policy.c). */
enum stats_action {
	STATS_REJECT,			/* refused (4xx or 5xx) */
	STATS_REJECT_WARNING,		/* dry_run: would have refused */
	STATS_HOLD,
	STATS_WARN,
	STATS_ACCEPT_ON_ERROR,		/* a back end failed, on_error = accept */
	STATS_NACTIONS
};

/* How one back-end request ended. */
enum stats_result {
	STATS_OK,
	STATS_NOT_FOUND,
	STATS_ERROR,
	STATS_SKIPPED,			/* not asked: its circuit breaker is open */
	STATS_NRESULTS
};

/* Latency buckets' upper bounds in microseconds; the last bucket is +Inf. */
#define STATS_NBUCKETS	12
extern const uint64_t stats_bucket_us[STATS_NBUCKETS - 1];

/* One back end's server: its counters.  Registered slots live until exit. */
struct stats_backend {
	char	backend[32];		/* "memcached", "mysql", "maildir" */
	char	server[STATS_NAME_MAX];
	atomic_ulong results[STATS_NRESULTS];
	atomic_ulong buckets[STATS_NBUCKETS];	/* requests by latency, not cumulative */
	atomic_ulong latency_us_sum;
};

/* A copy of every counter, for a reader. */
struct stats_snapshot {
	unsigned long decisions[STATS_CHECKS][STATS_NACTIONS];
	unsigned long sessions_active, sessions_total;
	unsigned long reloads_ok, reloads_failed;
	unsigned long ratelimit_local_fallbacks;	/* events counted in process instead */
	size_t	nbackends;
	struct {
		char	backend[32], server[STATS_NAME_MAX];
		unsigned long results[STATS_NRESULTS];
		unsigned long buckets[STATS_NBUCKETS];
		unsigned long latency_us_sum;
	} backends[STATS_BACKENDS];
};

/* A decision of the check in table row check (policy.c). */
void	stats_decision(size_t check, enum stats_action action);

/* A session opened or closed. */
void	stats_session(bool opened);

/* A reload's result (main.c). */
void	stats_reload(bool ok);

/* An event counted in process because memcached did not answer. */
void	stats_ratelimit_fallback(void);

/*
 * The slot of backend's server, registered on first use (by whoever makes
 * the store or source: not on the SMTP path); a slot shared when the same
 * pair comes again (a reload).  NULL when every slot is taken: callers
 * then count nothing.
 */
struct stats_backend *stats_backend_slot(const char *backend, const char *server);

/* A request on slot (may be NULL) that took elapsed_us. */
void	stats_backend_request(struct stats_backend *slot, enum stats_result result,
			      uint64_t elapsed_us);

/* Copy every counter into out. */
void	stats_read(struct stats_snapshot *out);

/* Names, for output: "reject", ..., "ok", ... */
const char *stats_action_name(enum stats_action action);
const char *stats_result_name(enum stats_result result);

#endif
