/*
 * quota_cache.h - the quota service's bounded cache of what the source
 * said: alias-domain, alias and mailbox answers (found and not found
 * alike) and maildir usage, each for cache_ttl seconds, so that a message
 * to 50 recipients of one mailbox costs one lookup of each kind.
 *
 * Contract: memory is bounded whatever the traffic (a full set replaces
 * the entry nearest to expiry); errors are never cached; a value longer
 * than QUOTA_CACHE_VALUE_MAX is not cached, and one that does not fit the
 * caller's buffer is a miss.  quota_cache_flush() empties the cache at
 * once, without touching every entry.
 * Thread-safety: get, put and flush from any thread; init before the
 * threads, free after them.
 */
#ifndef MXGATE_QUOTA_CACHE_H
#define MXGATE_QUOTA_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "quota_source.h"

#define QUOTA_CACHE_VALUE_MAX	1024	/* longer goto lists are looked up each time */

/* What an entry answers; the key spaces of the kinds are apart. */
enum quota_cache_kind {
	QUOTA_CACHE_ALIAS_DOMAIN = 'D',
	QUOTA_CACHE_ALIAS = 'A',
	QUOTA_CACHE_MAILBOX = 'M',
	QUOTA_CACHE_USAGE = 'U',
};

/* What a lookup fills in or an insert carries. */
struct quota_cache_item {
	enum source_status status;	/* SOURCE_OK or SOURCE_NOT_FOUND */
	unsigned long long number;	/* quota, or usage bytes */
	unsigned long long count;	/* usage: messages */
	unsigned long long count_limit;	/* quota: messages; usage: maildirsize's "NC" (0 = none) */
	bool	flag;			/* usage: incomplete walk */
	char   *value;			/* the caller's buffer (NULL: no string) */
	size_t	size;			/* its size, for a lookup */
};

/* Allocate the cache (once; again after quota_cache_free); false when out of memory. */
bool	quota_cache_init(void);

/* Free every entry and the cache itself (no other thread may use it). */
void	quota_cache_free(void);

/* Look kind/key up; true (item filled, value copied) on a hit.  Counts hits and misses. */
bool	quota_cache_get(enum quota_cache_kind kind, const char *key,
			struct quota_cache_item *item);

/* Remember kind/key for ttl seconds (0: not at all), replacing what it held. */
void	quota_cache_put(enum quota_cache_kind kind, const char *key, unsigned ttl,
			const struct quota_cache_item *item);

/* Drop every entry (tests, benchmarks; a reload does it too). */
void	quota_cache_flush(void);

/* The hit and miss counts so far. */
void	quota_cache_counts(unsigned long long *hits, unsigned long long *misses);

/* Live entries now, and how many the cache holds at most (control "status"; takes each set's lock in turn). */
size_t	quota_cache_entries(size_t *capacity);

#endif
