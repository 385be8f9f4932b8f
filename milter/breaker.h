/*
 * breaker.h - a circuit breaker: a back end that keeps failing is not
 * asked for a while, and then one caller probes it.
 *
 * Closed, every call goes ahead.  After threshold failures in a row it
 * opens for open_ms: calls are refused at once.  When that time is up,
 * exactly one caller is let through as the probe, and the others are
 * refused until its outcome is recorded, however long it takes: its
 * success closes the breaker, its failure opens it again for open_ms.
 * So every call breaker_allow() lets through must be recorded.  The quota source opens after 3 failures for 5 s, each
 * memcached server after 1 for its retry interval.  The breaker returns
 * what changed, so that its owner logs in its own words.  Lock-free:
 * atomic words only.
 */
#ifndef MXGATE_BREAKER_H
#define MXGATE_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct breaker {
	unsigned threshold;		/* failures in a row that open it (>= 1) */
	unsigned open_ms;		/* how long it stays open */
	atomic_uint failures;		/* in a row, while closed */
	_Atomic uint64_t open_until;	/* clock_ms() deadline; 0: closed; BREAKER_PROBING */
};

#define BREAKER_PROBING UINT64_MAX	/* open, and the probe is in flight */

enum breaker_change {
	BREAKER_SAME,
	BREAKER_OPENED,			/* the failures reached threshold */
	BREAKER_CLOSED,			/* the back end answered again */
};

void	breaker_init(struct breaker *b, unsigned threshold, unsigned open_ms);

/* May a call go to the back end now?  True while closed, and for the one probe. */
bool	breaker_allow(struct breaker *b);

/* The outcome of a call breaker_allow() let through. */
enum breaker_change breaker_record(struct breaker *b, bool ok);

/* True while open (a probe may be due). */
bool	breaker_is_open(struct breaker *b);

/* Closed again, failures forgotten (a new back end). */
void	breaker_reset(struct breaker *b);

#endif
