/*
 * counter_store.h - where rate-limit counters live: a small table of
 * function pointers with two implementations.
 *
 *   memory     in-process (counter_store_memory.c): the store when no
 *              memcached server is configured, and the fallback of
 *              on_error = "local";
 *   memcached  shared by every mxgate of a fleet (counter_store_memcached.c).
 *
 * Contract: keys are ours (built by ratelimit.c from a digest: printable
 * ASCII, no space, at most COUNTER_KEY_MAX bytes); a client byte never
 * reaches a store.  incr is atomic create-or-increment: a missing key is
 * created holding delta, expiring ttl seconds later (the TTL is set at
 * creation, never extended); decr floors at 0 and never creates; add
 * creates a marker key that expires ttl seconds later, or answers EXISTS
 * when the key is already there (atomic: of two adds racing, exactly one
 * creates it), the building block of count = "distinct"; del removes a key
 * (mxgatectl ratelimit reset), NOT_FOUND when absent.  There is no
 * read-modify-write anywhere.  A status is OK, NOT_FOUND, EXISTS (add only)
 * or ERROR (could not ask, or no answer within the deadline: the caller's
 * on_error decides what that means).
 *
 * Thread-safety: every operation may be called from any thread at once.
 * A store is destroyed only when no thread uses it any more.
 */
#ifndef MXGATE_COUNTER_STORE_H
#define MXGATE_COUNTER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define COUNTER_KEY_MAX 250 /* memcached's limit */

enum store_status {
	STORE_OK = 0,
	STORE_NOT_FOUND,
	STORE_EXISTS, /* add: the key was there already */
	STORE_ERROR,
};

struct counter_store;

struct counter_store_ops {
	const char *name; /* "memory", "memcached" */
	bool remote;	  /* a network round trip per operation */
	enum store_status (*incr)(struct counter_store *cs, const char *key, size_t key_len,
				  uint64_t delta, unsigned ttl, uint64_t *value);
	enum store_status (*decr)(struct counter_store *cs, const char *key, size_t key_len,
				  uint64_t delta);
	enum store_status (*add)(struct counter_store *cs, const char *key, size_t key_len,
				 unsigned ttl);
	enum store_status (*get)(struct counter_store *cs, const char *key, size_t key_len,
				 uint64_t *value);
	enum store_status (*del)(struct counter_store *cs, const char *key, size_t key_len);
	bool (*healthy)(struct counter_store *cs); /* every server answering */
	void (*destroy)(struct counter_store *cs);
};

/* Every store starts with this. */
struct counter_store {
	const struct counter_store_ops *ops;
};

/* Create-or-increment key by delta; *value receives the new count. */
static inline enum store_status
counter_store_incr(struct counter_store *cs, const char *key, size_t key_len, uint64_t delta,
		   unsigned ttl, uint64_t *value)
{
	return cs->ops->incr(cs, key, key_len, delta, ttl, value);
}

/* Give delta back (floors at 0); NOT_FOUND when the key has expired. */
static inline enum store_status
counter_store_decr(struct counter_store *cs, const char *key, size_t key_len, uint64_t delta)
{
	return cs->ops->decr(cs, key, key_len, delta);
}

/* Create key (a marker) unless it exists: OK when created, EXISTS when it was there. */
static inline enum store_status
counter_store_add(struct counter_store *cs, const char *key, size_t key_len, unsigned ttl)
{
	return cs->ops->add(cs, key, key_len, ttl);
}

/* Current count of key. */
static inline enum store_status
counter_store_get(struct counter_store *cs, const char *key, size_t key_len, uint64_t *value)
{
	return cs->ops->get(cs, key, key_len, value);
}

/* Remove key; NOT_FOUND when it was not there (or had expired). */
static inline enum store_status
counter_store_del(struct counter_store *cs, const char *key, size_t key_len)
{
	return cs->ops->del(cs, key, key_len);
}

/* True when nothing is known to be failing. */
static inline bool
counter_store_healthy(struct counter_store *cs)
{
	return cs->ops->healthy(cs);
}

/* Free the store (NULL is fine). */
static inline void
counter_store_destroy(struct counter_store *cs)
{
	if (cs != NULL)
		cs->ops->destroy(cs);
}

/* Milliseconds of some monotonic clock (tests substitute their own). */
typedef uint64_t counter_clock_fn(void);

/*
 * An in-process store holding at most max_entries live keys (expired ones
 * are reclaimed; past the cap, incr fails with STORE_ERROR and one log
 * line says so).  clock NULL: CLOCK_MONOTONIC.  NULL when out of memory.
 */
struct counter_store *counter_store_memory_create(size_t max_entries, counter_clock_fn *clock);

/*
 * Set key to value with a TTL, in a memory store only: ratelimit.c keeps
 * its cache of finished windows' counts with it.  Not a counter operation.
 */
enum store_status counter_store_memory_set(struct counter_store *cs, const char *key,
					   size_t key_len, uint64_t value, unsigned ttl);

/* Live entries of a memory store (tests, benchmarks). */
size_t counter_store_memory_count(struct counter_store *cs);

/*
 * A store over the memcached servers ("host:port", "[v6]:port"), keys
 * spread by consistent hashing (ketama), each operation bounded by
 * timeout_ms.  Connects lazily.  NULL with a message in err on a bad
 * server list or when out of memory.
 */
struct counter_store *counter_store_memcached_create(const struct string_list *servers,
						     unsigned timeout_ms, char *err,
						     size_t err_size);

/*
 * Server i of a memcached store (for the control socket's status): its
 * "host:port" into name, and whether its breaker is open.  False past the
 * last server, and for a store that is not a memcached one.
 */
bool counter_store_memcached_server(struct counter_store *cs, size_t i, char *name, size_t size,
				    bool *breaker_open);

#endif
