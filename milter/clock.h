/*
 * clock.h - the one monotonic clock mxgate measures deadlines, windows and
 * breaker periods with, in milliseconds.  Thread-safe.
 */
#ifndef MXGATE_CLOCK_H
#define MXGATE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC in microseconds, for latencies (a vDSO call, no system call). */
static inline uint64_t
clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * The deadline of the first of parts attempts that share what is left of
 * deadline equally: a slow first one leaves the others their share.  The
 * last (parts == 1) gets all that is left.  Pure.
 */
static inline uint64_t
clock_share(uint64_t now, uint64_t deadline, unsigned parts)
{
	if (now >= deadline)
		return deadline;
	return now + (deadline - now) / (parts > 0 ? parts : 1);
}

/* The CLOCK_MONOTONIC time ms milliseconds from now, for pthread_cond_timedwait and poll deadlines. */
static inline struct timespec
clock_after_ms(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif
