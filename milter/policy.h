/*
 * policy.h - run the checks of a stage and settle the verdict.
 */
#ifndef MXGATE_POLICY_H
#define MXGATE_POLICY_H

#include "checks.h"

/*
 * Run every check of stage in table order; the first opinion wins.  out
 * is VERDICT_DUNNO (let the command through), VERDICT_REFUSE with the
 * reply to give, or VERDICT_HOLD / VERDICT_WARN.  Backend errors are
 * already settled by on_error, dry_run already applied, and the decision
 * already logged.
 */
void	policy_run(struct session *s, enum stage stage, struct verdict *out);

/* The transaction ended, accepted by the MTA or not; idempotent. */
void	policy_transaction_end(struct session *s, bool accepted);

#endif
