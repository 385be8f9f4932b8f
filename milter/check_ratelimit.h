/*
 * check_ratelimit.h - what the rate-limit check keeps per connection, and
 * the key value a rule counts by.  For check_ratelimit.c and its tests.
 */
#ifndef MXGATE_CHECK_RATELIMIT_H
#define MXGATE_CHECK_RATELIMIT_H

#include <stdbool.h>

#include "checks.h"
#include "ratelimit.h"

#define RATELIMIT_TX_CHARGES	64	/* distinct counters a transaction can give back */

/* The check's state in a session (checks.h). */
struct ratelimit_state {
	bool	connection_charged;	/* count = "connections" rules charged */
	/* The transaction's charges, given back if it is not accepted. */
	struct rate_charge charges[RATELIMIT_TX_CHARGES];
	unsigned ncharges;
	bool	charges_lost;		/* more counters than charges holds */
};

/*
 * The key value of rule for session s at this stage (tx.rcpt is the
 * recipient), as ratelimit.h "Keys" describes it.  False when the rule has
 * nothing to count by (no SASL user, unknown client address, no HELO yet):
 * the rule does not apply.
 */
bool	check_ratelimit_key(const struct rate_rule *rule, const struct session *s,
			    struct rate_value *key);

/*
 * A count = "distinct" rule's value for session s: into value, the digest
 * of key's digest and of the rule's distinct field (normalised as a key
 * part); the marker's digest (ratelimit.h, "Distinct values").  False
 * when the field is not known (no HELO yet).
 */
bool	check_ratelimit_distinct(const struct rate_rule *rule, const struct session *s,
				 const struct rate_value *key,
				 uint8_t value[RATELIMIT_DIGEST_SIZE]);

#endif
