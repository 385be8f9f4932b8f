/*
 * checks.h - the check descriptor, and the table that says which checks
 * run, in which order and at which stages.
 *
 * A check is one file exporting one struct check.  Its run function is a
 * plain function of the session: it never speaks the milter protocol, and
 * it never decides what a backend failure means (it returns VERDICT_ERROR
 * and policy.c applies the check's on_error).  A check that keeps state
 * for a connection declares its size; policy.c keeps it beside the
 * session and hands it to run and end.  A check with a process-wide
 * service (a pool, a sampler) names its start, reload and stop, which
 * services.c calls in table order (stop in reverse).  Adding a check is
 * its file and one row in checks.c's table.
 */
#ifndef MXGATE_CHECKS_H
#define MXGATE_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "session.h"
#include "verdict.h"

enum stage {
	STAGE_MAIL = 1 << 0,
	STAGE_RCPT = 1 << 1,
	STAGE_EOM = 1 << 2,		/* end of message: tx.message_size is the real size */
};

struct check {
	const char *name;		/* check= in the decision line */
	unsigned stages;		/* enum stage bits it runs at */
	size_t	state_size;		/* per-connection state, zeroed at connect; 0: none */

	/* Judge the stage: leave v alone (no opinion) or fill it. */
	void	(*run)(struct session *s, void *state, enum stage stage, struct verdict *v);

	/* The transaction ended, accepted or not: give back what it charged. NULL: nothing. */
	void	(*end)(struct session *s, void *state, bool accepted);

	/* How a VERDICT_ERROR is settled.  NULL: a check without a backend, tempfail. */
	enum on_error (*on_error)(const struct config *cfg);

	/* The process-wide service, each may be NULL (services.c). */
	bool	(*start)(const struct config *cfg);	/* false: mxgate cannot run */
	void	(*reload)(const struct config *cfg);
	void	(*stop)(void);
};

/* In the order they run: cheapest and broadest first, rate limits last. */
extern const struct check *const check_table[];
extern const size_t check_count;

extern const struct check check_overload;	/* check_overload.c */
extern const struct check check_helo_required;	/* check_helo_required.c */
extern const struct check check_helo;		/* check_helo.c */
extern const struct check check_quota;		/* check_quota.c */
extern const struct check check_ratelimit;	/* check_ratelimit.c */

/*
 * True when cfg needs the real size of messages sent without SIZE= (a
 * count = "bytes" rule, quota.check_real_size): only then are header and
 * body events negotiated (callbacks.c), and only a transaction that set
 * tx.count_size gets them.
 */
bool	checks_want_message_size(const struct config *cfg);

/* A client the HELO rules spare: authenticated, or through an exempt daemon (check_helo.c). */
bool	check_helo_exempt(const struct session *s);

/*
 * True when the HELO name (len bytes, as sent) is one of
 * helo.reject_own_names, or an address literal of a listed address or of
 * the connection's own (session_set_server); false when the list is empty.
 */
bool	check_helo_own_name(const struct session *s, const char *name, size_t len);

#endif
