/*
 * policy.h - run the check table for a stage, settle the verdict, write
 * the decision line, and end transactions.
 */
#ifndef MXGATE_POLICY_H
#define MXGATE_POLICY_H

#include "checks.h"

/* A new session for cfg (taking over the reference), with room for every check's state; NULL when out of memory. */
struct session *policy_session_open(struct config *cfg);

/* The state check keeps for session s (NULL for a check without state). */
void   *policy_check_state(struct session *s, const struct check *check);

/*
 * Run every check of stage in table order; the first opinion wins.  out
 * is VERDICT_DUNNO (let the command through), VERDICT_REFUSE with the
 * reply to give, or VERDICT_HOLD / VERDICT_WARN (recorded in the
 * transaction for end of message).  Backend errors are already settled by
 * on_error, dry_run already applied, and the decision already logged.
 */
void	policy_run(struct session *s, enum stage stage, struct verdict *out);

/*
 * The transaction ended, accepted by the MTA or not: every check gives
 * back what it must (each check's end is idempotent), and the transaction
 * is forgotten.
 */
void	policy_transaction_end(struct session *s, bool accepted);

#endif
