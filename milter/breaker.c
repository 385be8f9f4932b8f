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
	uint64_t until = atomic_load(&b->open_until), now;

	if (until == 0)
		return true;
	now = clock_ms();
	if (now < until)
		return false;
	/* The probe: whoever moves the deadline on goes; the others wait for its outcome. */
	return atomic_compare_exchange_strong(&b->open_until, &until, now + b->open_ms);
}

enum breaker_change
breaker_record(struct breaker *b, bool ok)
{
	uint64_t closed = 0;

	if (ok) {
		atomic_store(&b->failures, 0);
		if (atomic_load(&b->open_until) != 0 && atomic_exchange(&b->open_until, 0) != 0)
			return BREAKER_CLOSED;
		return BREAKER_SAME;
	}
	if (atomic_load(&b->open_until) != 0) {
		/* A failed probe, or a call that began before the opening. */
		atomic_store(&b->open_until, clock_ms() + b->open_ms);
		return BREAKER_SAME;
	}
	if (atomic_fetch_add(&b->failures, 1) + 1 < b->threshold)
		return BREAKER_SAME;
	atomic_store(&b->failures, 0);
	if (atomic_compare_exchange_strong(&b->open_until, &closed, clock_ms() + b->open_ms))
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
