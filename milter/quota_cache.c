/*
 * quota_cache.c - the quota service's cache (see quota_cache.h for the
 * contract).
 *
 * Set-associative: CACHE_SETS sets of CACHE_WAYS entries, each set under
 * its own mutex, a key's set chosen by its hash; when a set is full the
 * entry nearest to expiry is replaced, so memory is bounded.  A flush
 * bumps a generation number: entries of an older generation are dead and
 * reused first, so a reload costs no walk over 65,536 entries.
 * Thread-safety: a set's mutex is held only to read or write its entries
 * (never across a source call or allocation of a key); the generation and
 * counters are atomics.
 */
#include "quota_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define CACHE_SETS		8192	/* x CACHE_WAYS = 65,536 entries */
#define CACHE_WAYS		8

struct cache_entry {
	uint64_t hash;
	uint64_t expires_ms;
	unsigned gen;
	char	kind;			/* an enum quota_cache_kind; 0 = free */
	enum source_status status;	/* SOURCE_OK or SOURCE_NOT_FOUND */
	unsigned long long number;	/* quota, or usage bytes */
	unsigned long long count, count_limit;	/* quota_cache_item's */
	bool	flag;			/* usage: incomplete walk */
	char   *key, *value;
};

struct cache_set {
	pthread_mutex_t lock;
	struct cache_entry way[CACHE_WAYS];
};

static struct cache_set *cache;
static atomic_uint cache_gen;
static atomic_ullong stat_hits, stat_misses;

/* FNV-1a over kind and key. */
static uint64_t
cache_hash(char kind, const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	h = (h ^ (unsigned char)kind) * 1099511628211ULL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

/* Free one entry's strings and mark it free. */
static void
cache_entry_clear(struct cache_entry *e)
{
	free(e->key);
	free(e->value);
	memset(e, 0, sizeof(*e));
}

/* True when the entry holds kind/key, is current and unexpired. */
static bool
cache_entry_live(const struct cache_entry *e, char kind, uint64_t hash, const char *key,
		 uint64_t now, unsigned gen)
{
	return e->kind == kind && e->hash == hash && e->gen == gen && e->expires_ms > now &&
	    strcmp(e->key, key) == 0;
}

bool
quota_cache_get(enum quota_cache_kind kind, const char *key, struct quota_cache_item *item)
{
	uint64_t hash = cache_hash((char)kind, key), now = clock_ms();
	unsigned gen = atomic_load(&cache_gen);
	struct cache_set *set;
	bool	hit = false;

	if (cache == NULL)
		return false;
	set = &cache[hash % CACHE_SETS];
	pthread_mutex_lock(&set->lock);
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->way[i];

		if (!cache_entry_live(e, (char)kind, hash, key, now, gen))
			continue;
		item->status = e->status;
		item->number = e->number;
		item->count = e->count;
		item->count_limit = e->count_limit;
		item->flag = e->flag;
		if (item->value != NULL && item->size > 0) {
			size_t	n = e->value ? strlen(e->value) : 0;

			if (n >= item->size)
				break;	/* does not fit the caller: a miss */
			memcpy(item->value, e->value ? e->value : "", n + 1);
		}
		hit = true;
		break;
	}
	pthread_mutex_unlock(&set->lock);
	atomic_fetch_add(hit ? &stat_hits : &stat_misses, 1);
	return hit;
}

/*
 * The entry of set to overwrite with kind/key: the key's own, else a free,
 * stale or expired one, else the live one nearest to expiry.
 */
static struct cache_entry *
cache_victim(struct cache_set *set, char kind, uint64_t hash, const char *key, uint64_t now,
	     unsigned gen)
{
	struct cache_entry *victim = NULL;

	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->way[i];

		if (e->kind == kind && e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	}
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->way[i];

		if (e->kind == 0 || e->gen != gen || e->expires_ms <= now)
			return e;
		if (victim == NULL || e->expires_ms < victim->expires_ms)
			victim = e;
	}
	return victim;
}

void
quota_cache_put(enum quota_cache_kind kind, const char *key, unsigned ttl,
		const struct quota_cache_item *item)
{
	uint64_t hash = cache_hash((char)kind, key), now = clock_ms();
	unsigned gen = atomic_load(&cache_gen);
	struct cache_set *set;
	struct cache_entry *victim = NULL;
	char   *k, *v = NULL;

	if (cache == NULL || ttl == 0 || item->status == SOURCE_ERROR)
		return;
	if (item->value != NULL && strlen(item->value) >= QUOTA_CACHE_VALUE_MAX)
		return;
	/* Copied before the lock is taken: the set is held only to swap the entry. */
	if ((k = strdup(key)) == NULL ||
	    (item->value != NULL && (v = strdup(item->value)) == NULL)) {
		free(k);
		return;
	}
	set = &cache[hash % CACHE_SETS];
	pthread_mutex_lock(&set->lock);
	victim = cache_victim(set, (char)kind, hash, key, now, gen);
	cache_entry_clear(victim);
	victim->hash = hash;
	victim->kind = (char)kind;
	victim->gen = gen;
	victim->expires_ms = now + (uint64_t)ttl * 1000;
	victim->status = item->status;
	victim->number = item->number;
	victim->count = item->count;
	victim->count_limit = item->count_limit;
	victim->flag = item->flag;
	victim->key = k;
	victim->value = v;
	pthread_mutex_unlock(&set->lock);
}

bool
quota_cache_init(void)
{
	if (cache != NULL)
		return true;
	if ((cache = calloc(CACHE_SETS, sizeof(*cache))) == NULL)
		return false;
	for (int i = 0; i < CACHE_SETS; i++)
		pthread_mutex_init(&cache[i].lock, NULL);
	return true;
}

void
quota_cache_free(void)
{
	if (cache == NULL)
		return;
	for (int i = 0; i < CACHE_SETS; i++) {
		for (int j = 0; j < CACHE_WAYS; j++)
			cache_entry_clear(&cache[i].way[j]);
		pthread_mutex_destroy(&cache[i].lock);
	}
	free(cache);
	cache = NULL;
}

void
quota_cache_flush(void)
{
	atomic_fetch_add(&cache_gen, 1);
}

void
quota_cache_counts(unsigned long long *hits, unsigned long long *misses)
{
	*hits = atomic_load(&stat_hits);
	*misses = atomic_load(&stat_misses);
}

size_t
quota_cache_entries(size_t *capacity)
{
	uint64_t now = clock_ms();
	unsigned gen = atomic_load(&cache_gen);
	size_t	n = 0;

	*capacity = cache ? (size_t)CACHE_SETS * CACHE_WAYS : 0;
	for (int i = 0; cache != NULL && i < CACHE_SETS; i++) {
		pthread_mutex_lock(&cache[i].lock);
		for (int j = 0; j < CACHE_WAYS; j++) {
			const struct cache_entry *e = &cache[i].way[j];

			n += e->kind != 0 && e->gen == gen && e->expires_ms > now;
		}
		pthread_mutex_unlock(&cache[i].lock);
	}
	return n;
}
