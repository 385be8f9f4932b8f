/*
 * counter_store_memory.c - the in-process counter store: one host's
 * counters, and the fallback of on_error = "local".
 *
 * Keys are spread over COUNTER_SHARDS shards by a hash, each shard a
 * mutex and a fixed table of chained buckets, so that threads counting
 * different keys rarely meet.  An entry expires ttl seconds after it was
 * created (memcached's incr semantics).  Expired entries are reclaimed as
 * lookups walk past them, by a small sweep on every insert, and by a full
 * sweep of a shard before it is declared full.  Memory is bounded: each
 * shard holds at most max_entries / COUNTER_SHARDS entries; past that,
 * incr fails (STORE_ERROR) and the first failure is logged.
 *
 * Thread-safety: every entry point takes its shard's lock, and nothing
 * inside a lock blocks on anything but memory.
 */
#include "counter_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define COUNTER_SHARDS 64
#define SWEEP_BUCKETS 2 /* buckets checked per insert */

struct entry {
	struct entry *next;
	uint64_t expires_ms;
	uint64_t value;
	uint64_t hash;
	size_t key_len;
	char key[];
};

struct shard {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t count;
	size_t sweep_at; /* next bucket of the incremental sweep */
};

struct memory_store {
	struct counter_store base;
	counter_clock_fn *clock;
	size_t nbuckets; /* per shard, a power of two */
	size_t shard_cap;
	atomic_bool full_logged;
	struct shard shards[COUNTER_SHARDS];
};

/* FNV-1a: keys are ours (they end in a digest), so no need for a keyed hash. */
static uint64_t
key_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct memory_store *
memory_of(struct counter_store *cs)
{
	return (struct memory_store *)cs;
}

static struct shard *
shard_of(struct memory_store *ms, uint64_t hash)
{
	return &ms->shards[hash % COUNTER_SHARDS];
}

static struct entry **
bucket_of(struct memory_store *ms, struct shard *sh, uint64_t hash)
{
	return &sh->buckets[(hash / COUNTER_SHARDS) & (ms->nbuckets - 1)];
}

/* Unlink and free every expired entry of one bucket (shard locked). */
static void
bucket_reclaim(struct shard *sh, struct entry **link, uint64_t now)
{
	while (*link != NULL) {
		struct entry *e = *link;

		if (e->expires_ms <= now) {
			*link = e->next;
			free(e);
			sh->count--;
		} else
			link = &e->next;
	}
}

/* The live entry for key, reclaiming expired ones on the way (shard locked). */
static struct entry *
shard_find(struct shard *sh, struct entry **bucket, const char *key, size_t len, uint64_t hash,
	   uint64_t now)
{
	bucket_reclaim(sh, bucket, now);
	for (struct entry *e = *bucket; e != NULL; e = e->next)
		if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* Room for one more entry in sh, sweeping it whole if need be (shard locked). */
static bool
shard_make_room(struct memory_store *ms, struct shard *sh, uint64_t now)
{
	for (size_t i = 0; i < SWEEP_BUCKETS; i++) {
		bucket_reclaim(sh, &sh->buckets[sh->sweep_at], now);
		sh->sweep_at = (sh->sweep_at + 1) & (ms->nbuckets - 1);
	}
	if (sh->count < ms->shard_cap)
		return true;
	for (size_t i = 0; i < ms->nbuckets; i++)
		bucket_reclaim(sh, &sh->buckets[i], now);
	return sh->count < ms->shard_cap;
}

/* A new entry at the head of bucket (shard locked); NULL when full or out of memory. */
static struct entry *
shard_insert(struct memory_store *ms, struct shard *sh, struct entry **bucket, const char *key,
	     size_t len, uint64_t hash, uint64_t now, unsigned ttl)
{
	struct entry *e;

	if (!shard_make_room(ms, sh, now))
		return NULL;
	if ((e = malloc(sizeof(*e) + len)) == NULL)
		return NULL;
	e->hash = hash;
	e->key_len = len;
	memcpy(e->key, key, len);
	e->expires_ms = now + (uint64_t)ttl * 1000;
	e->value = 0;
	e->next = *bucket;
	*bucket = e;
	sh->count++;
	return e;
}

/* One log line when the cap is first reached; again after it was relieved. */
static void
memory_report_full(struct memory_store *ms, bool full)
{
	if (full && !atomic_exchange(&ms->full_logged, true))
		log_error("in-process counter store full (%zu entries): new keys are not "
			  "counted until old ones expire",
			  ms->shard_cap * COUNTER_SHARDS);
	else if (!full && atomic_load(&ms->full_logged) && atomic_exchange(&ms->full_logged, false))
		log_info("in-process counter store has room again");
}

/*
 * The live entry of key with its shard locked (*shp: the caller unlocks
 * it), created with ttl when created is not NULL (*created then says
 * whether it was); NULL when absent, or when the store is full or out of
 * memory.
 */
static struct entry *
entry_lock(struct memory_store *ms, const char *key, size_t len, bool *created, unsigned ttl,
	   uint64_t *now, struct shard **shp)
{
	uint64_t hash = key_hash(key, len);
	struct shard *sh = shard_of(ms, hash);
	struct entry **bucket = bucket_of(ms, sh, hash);
	struct entry *e;

	*now = ms->clock();
	*shp = sh;
	pthread_mutex_lock(&sh->lock);
	e = shard_find(sh, bucket, key, len, hash, *now);
	if (created != NULL && (*created = e == NULL))
		e = shard_insert(ms, sh, bucket, key, len, hash, *now, ttl);
	return e;
}

/* Create-or-increment under the shard's lock. */
static enum store_status
memory_incr(struct counter_store *cs, const char *key, size_t len, uint64_t delta, unsigned ttl,
	    uint64_t *value)
{
	struct shard *sh;
	uint64_t now;
	struct memory_store *ms = memory_of(cs);
	bool created;
	struct entry *e = entry_lock(ms, key, len, &created, ttl, &now, &sh);

	if (e != NULL) {
		e->value = e->value + delta < e->value ? UINT64_MAX : e->value + delta;
		*value = e->value;
	}
	pthread_mutex_unlock(&sh->lock);
	memory_report_full(ms, e == NULL);
	return e != NULL ? STORE_OK : STORE_ERROR;
}

/* Decrement, flooring at 0; NOT_FOUND for a missing or expired key. */
static enum store_status
memory_decr(struct counter_store *cs, const char *key, size_t len, uint64_t delta)
{
	struct shard *sh;
	uint64_t now;
	struct entry *e = entry_lock(memory_of(cs), key, len, NULL, 0, &now, &sh);

	if (e != NULL)
		e->value = e->value > delta ? e->value - delta : 0;
	pthread_mutex_unlock(&sh->lock);
	return e != NULL ? STORE_OK : STORE_NOT_FOUND;
}

/* Create a marker unless the key is live; EXISTS when it is. */
static enum store_status
memory_add(struct counter_store *cs, const char *key, size_t len, unsigned ttl)
{
	struct shard *sh;
	uint64_t now;
	struct memory_store *ms = memory_of(cs);
	bool created;
	struct entry *e = entry_lock(ms, key, len, &created, ttl, &now, &sh);

	if (e != NULL && created)
		e->value = 1;
	pthread_mutex_unlock(&sh->lock);
	memory_report_full(ms, e == NULL);
	return e == NULL ? STORE_ERROR : created ? STORE_OK : STORE_EXISTS;
}

/* The value of a live key. */
static enum store_status
memory_get(struct counter_store *cs, const char *key, size_t len, uint64_t *value)
{
	struct shard *sh;
	uint64_t now;
	struct entry *e = entry_lock(memory_of(cs), key, len, NULL, 0, &now, &sh);

	if (e != NULL)
		*value = e->value;
	pthread_mutex_unlock(&sh->lock);
	return e != NULL ? STORE_OK : STORE_NOT_FOUND;
}

/* Unlink and free a live key. */
static enum store_status
memory_del(struct counter_store *cs, const char *key, size_t len)
{
	uint64_t hash = key_hash(key, len), now;
	struct memory_store *ms = memory_of(cs);
	struct shard *sh = shard_of(ms, hash);
	struct entry **link = bucket_of(ms, sh, hash), *e = NULL;

	now = ms->clock();
	pthread_mutex_lock(&sh->lock);
	bucket_reclaim(sh, link, now);
	for (; *link != NULL; link = &(*link)->next)
		if ((*link)->hash == hash && (*link)->key_len == len &&
		    memcmp((*link)->key, key, len) == 0) {
			e = *link;
			*link = e->next;
			sh->count--;
			break;
		}
	pthread_mutex_unlock(&sh->lock);
	free(e);
	return e != NULL ? STORE_OK : STORE_NOT_FOUND;
}

enum store_status
counter_store_memory_set(struct counter_store *cs, const char *key, size_t len, uint64_t value,
			 unsigned ttl)
{
	struct shard *sh;
	uint64_t now;
	bool created;
	struct entry *e = entry_lock(memory_of(cs), key, len, &created, ttl, &now, &sh);

	if (e != NULL) {
		e->value = value;
		e->expires_ms = now + (uint64_t)ttl * 1000;
	}
	pthread_mutex_unlock(&sh->lock);
	return e != NULL ? STORE_OK : STORE_ERROR;
}

size_t
counter_store_memory_count(struct counter_store *cs)
{
	struct memory_store *ms = memory_of(cs);
	size_t n = 0;

	for (size_t i = 0; i < COUNTER_SHARDS; i++) {
		pthread_mutex_lock(&ms->shards[i].lock);
		n += ms->shards[i].count;
		pthread_mutex_unlock(&ms->shards[i].lock);
	}
	return n;
}

/* True unless the cap was reached and not relieved since. */
static bool
memory_healthy(struct counter_store *cs)
{
	return !atomic_load(&memory_of(cs)->full_logged);
}

/* Free every entry, table and lock. */
static void
memory_destroy(struct counter_store *cs)
{
	struct memory_store *ms = memory_of(cs);

	for (size_t i = 0; i < COUNTER_SHARDS; i++) {
		struct shard *sh = &ms->shards[i];

		for (size_t b = 0; sh->buckets && b < ms->nbuckets; b++) {
			struct entry *e = sh->buckets[b], *next;

			for (; e != NULL; e = next) {
				next = e->next;
				free(e);
			}
		}
		free(sh->buckets);
		pthread_mutex_destroy(&sh->lock);
	}
	free(ms);
}

/* What it is, the counter operations, and its upkeep. */
static const struct counter_store_ops memory_ops = {
    .name = "memory", .remote = false,
    .incr = memory_incr, .decr = memory_decr, .add = memory_add, .get = memory_get,
    .del = memory_del,
    .healthy = memory_healthy, .destroy = memory_destroy,
};

struct counter_store *
counter_store_memory_create(size_t max_entries, counter_clock_fn *clock)
{
	struct memory_store *ms = calloc(1, sizeof(*ms));

	if (ms == NULL)
		return NULL;
	ms->base.ops = &memory_ops;
	ms->clock = clock ? clock : clock_ms;
	ms->shard_cap = max_entries / COUNTER_SHARDS ? max_entries / COUNTER_SHARDS : 1;
	/* About one entry per bucket at the cap; at most 64 Ki buckets a shard. */
	ms->nbuckets = 16;
	while (ms->nbuckets < ms->shard_cap && ms->nbuckets < 65536)
		ms->nbuckets *= 2;
	for (size_t i = 0; i < COUNTER_SHARDS; i++)
		pthread_mutex_init(&ms->shards[i].lock, NULL);
	for (size_t i = 0; i < COUNTER_SHARDS; i++) {
		ms->shards[i].buckets = calloc(ms->nbuckets, sizeof(struct entry *));
		if (ms->shards[i].buckets == NULL) {
			memory_destroy(&ms->base);
			return NULL;
		}
	}
	return &ms->base;
}
