/*
 * breaker.c - the circuit breaker of every back end (breaker.h).
 */
#include "breaker.h"

#include "clock.h"

void
breaker_init(struct breaker *b, unsigned threshold, unsigned open_ms)
{
	b->threshold = threshold > 0 ? threshold : 1;
	b->open_ms = open_ms;
	atomic_init(&b->failures, 0);
	atomic_init(&b->open_until, 0);
}

bool
breaker_allow(struct breaker *b)
{
	uint64_t until = atomic_load(&b->open_until);

	if (until == 0)
		return true;
	if (until == BREAKER_PROBING || clock_ms() < until)
		return false;
	/* The probe: whoever marks it in flight goes; the others wait for its outcome. */
	return atomic_compare_exchange_strong(&b->open_until, &until, BREAKER_PROBING);
}

enum breaker_change
breaker_record(struct breaker *b, bool ok)
{
	uint64_t cur;

	if (ok) {
		atomic_store(&b->failures, 0);
		if (atomic_load(&b->open_until) != 0 && atomic_exchange(&b->open_until, 0) != 0)
			return BREAKER_CLOSED;
		return BREAKER_SAME;
	}
	cur = atomic_load(&b->open_until);
	while (cur != 0) {
		/* A failed probe, or a call that began before the opening: open for open_ms. */
		if (atomic_compare_exchange_weak(&b->open_until, &cur, clock_ms() + b->open_ms))
			return BREAKER_SAME;
	}
	/* Closed (a success or a reset may just have closed it): count the failure. */
	if (atomic_fetch_add(&b->failures, 1) + 1 < b->threshold)
		return BREAKER_SAME;
	atomic_store(&b->failures, 0);
	if (atomic_compare_exchange_strong(&b->open_until, &cur, clock_ms() + b->open_ms))
		return BREAKER_OPENED;
	return BREAKER_SAME;
}

bool
breaker_is_open(struct breaker *b)
{
	return atomic_load(&b->open_until) != 0;
}

void
breaker_reset(struct breaker *b)
{
	atomic_store(&b->failures, 0);
	atomic_store(&b->open_until, 0);
}
