/*
 * checks.h - the checks, and the table that says where each one runs.
 *
 * A check is a plain function of the session: it never speaks the milter protocol, and
 * it never decides what a backend failure means (it returns VERDICT_ERROR
 * and policy.c applies the check's on_error).  Adding a check is one file
 * and one row in policy.c's table.
 */
#ifndef MXGATE_CHECKS_H
#define MXGATE_CHECKS_H

#include "session.h"
#include "verdict.h"

enum stage {
	STAGE_MAIL = 1 << 0,
	STAGE_RCPT = 1 << 1,
};

typedef void check_fn(struct session *s, enum stage stage, struct verdict *v);

/* HELO/EHLO name as Postfix's reject_invalid/non_fqdn_helo_hostname. */
check_fn check_helo;

/* Server overloaded: unauthenticated MAIL FROM gets 451 4.3.2 (check_overload.c). */
check_fn check_overload;

/* Recipient's mailbox over quota (check_quota.c). */
check_fn check_quota;

/* Rate limits (check_ratelimit.c); runs last so that nothing it charged is then refused. */
check_fn check_ratelimit;

/*
 * The transaction ends: accepted (the MTA took the message) or not (RSET,
 * QUIT, disconnect, every recipient refused).  Checks that charged
 * something give it back here when it was not accepted.
 */
void	check_ratelimit_end(struct session *s, bool accepted);

#endif
