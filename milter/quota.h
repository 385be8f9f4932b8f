/*
 * quota.h - the quota service: which source answers (MariaDB when
 * mysql.host, mysql.socket or mysql.servers is set, else maildirs), a bounded cache of
 * what it said, a circuit breaker in front of a server that keeps
 * failing, and the verdict for one recipient.
 *
 * A mailbox is full when its usage plus SIZE= is over its byte quota, or
 * when its message count is at or over the message limit of its
 * maildirsize ("NC", from the maildir source's quota line or, with SQL,
 * read with the usage of a mailbox that has a byte quota), each limit
 * with grace_percent.
 *
 * Contract: quota_check() says FULL only when every number it used was
 * read (a cut walk that is still under the limit is no opinion); ERROR
 * when the source or a maildir could not be read, so that policy.c
 * applies on_error.  It returns well within the MTA's milter timeout:
 * walks are bounded, SQL calls carry mysql.timeout_ms, and a breaker that
 * is open answers at once.
 *
 * Thread-safety: quota_check() and quota_stats() from any worker thread;
 * quota_start() before milter_run, quota_reload() from the reload thread,
 * quota_stop() after milter_run returned.  The cache (quota_cache.h) is
 * striped by lock; no lock is held across a source call or file system
 * walk.
 */
#ifndef MXGATE_QUOTA_H
#define MXGATE_QUOTA_H

#include <stdbool.h>

#include "address.h"
#include "config.h"
#include "quota_resolve.h"
#include "quota_source.h"

enum quota_verdict {
	QUOTA_NO_OPINION,		/* not full, unlimited, or no local mailbox */
	QUOTA_FULL,
	QUOTA_ERROR,			/* could not look: on_error decides */
};

/* What quota_check() found, for logs and tests. */
struct quota_result {
	enum quota_verdict verdict;
	char	mailbox[ADDRESS_MAX];	/* the (first) full mailbox, or the one that failed */
	unsigned long long usage, limit;	/* of that mailbox; limit includes grace (0: no byte limit) */
	unsigned long long count, count_limit;	/* its messages, and their limit with grace (0: none) */
	bool	by_count;		/* it is full by its message count, not by bytes */
	size_t	nmailboxes, nfull, nerrors, nother;
	const char *why;		/* static: "no local mailbox", "source failed", ... */
	bool	skipped;		/* ERROR without asking: the circuit breaker is open */
	bool	out_of_memory;		/* ERROR because an allocation failed */
};

/* Counters for the benchmark and debug logs. */
struct quota_stats {
	unsigned long long hits, misses;	/* cache */
	unsigned long long source_calls;	/* calls that reached the source */
	unsigned long long walks;		/* maildirsize recalculations */
	unsigned long long breaker_skips;	/* calls refused by an open breaker */
};

/* Where quota_explain() found a mailbox's usage. */
enum quota_usage_from {
	QUOTA_USAGE_NOT_READ,		/* unlimited, or not reached: not needed */
	QUOTA_USAGE_MAILDIRSIZE,	/* the maildirsize file's sum */
	QUOTA_USAGE_WALK,		/* a walk of the maildir's files */
	QUOTA_USAGE_CACHE,		/* the cache, of an earlier read */
	QUOTA_USAGE_NO_MAILDIR,		/* no maildir yet: empty */
	QUOTA_USAGE_ERROR,		/* could not be read */
};

/* How quota_explain() judged one mailbox of the resolution. */
struct quota_mailbox_use {
	unsigned long long limit;	/* quota plus grace_percent; 0 = unlimited */
	unsigned long long usage;	/* bytes */
	unsigned long long need;	/* usage plus SIZE= when use_message_size */
	unsigned long long count;	/* messages */
	unsigned long long count_limit;	/* maildirsize's "NC" plus grace_percent; 0 = no message limit */
	enum quota_usage_from from;
	bool	incomplete;		/* a cut walk: usage is a lower bound */
	bool	full;			/* by bytes or by count */
	bool	full_by_count;		/* count is at or over count_limit */
};

/* What quota_explain() tells besides the result (mxgatectl explain). */
struct quota_explanation {
	resolve_trace_fn *trace;	/* in: hears of every lookup (NULL: nobody) */
	void   *trace_arg;
	const char *source;		/* out: the source's name ("maildir", "mysql", ...) */
	unsigned cache_ttl;		/* out: 0 when the cache was not used */
	struct resolution res;		/* out: the mailboxes, in the order found */
	struct quota_mailbox_use use[RESOLVE_MAX_MAILBOXES];	/* out: one per res.mailboxes */
};

/* Open the source of cfg (and initialise the SQL library); false if it cannot run. */
bool	quota_start(const struct config *cfg);

/* A new configuration: reopen the source if its settings changed; empty the cache. */
void	quota_reload(const struct config *cfg);

/*
 * Start with src (taken over, closed by quota_stop) instead of the source
 * cfg names: tests and benchmarks.  remote puts the breaker in front.
 */
bool	quota_start_with(const struct config *cfg, struct quota_source *src, bool remote);

/* Close the source and free the cache. */
void	quota_stop(void);

/*
 * The verdict for one parsed recipient under the session's configuration
 * cfg; size is the MAIL FROM SIZE= (0 when unknown).
 */
enum quota_verdict quota_check(const struct config *cfg, const struct address *addr,
			       unsigned long long size, struct quota_result *out);

/*
 * quota_check(), and how it got there: every lookup to ex->trace, the
 * mailboxes with their usage into ex (through the cache, as a check would).
 */
enum quota_verdict quota_explain(const struct config *cfg, const struct address *addr,
				 unsigned long long size, struct quota_result *out,
				 struct quota_explanation *ex);

/* A snapshot of the counters. */
void	quota_stats(struct quota_stats *out);

/* True while the breaker in front of a server source (MariaDB) is open. */
bool	quota_breaker_open(void);

/*
 * The current source's servers in order into out (at most max), each
 * shown open while its own breaker or the source's is: 0 for maildirs.
 */
size_t	quota_servers(struct source_server *out, size_t max);

#endif
