/*
 * stats.c - the counters (stats.h).
 */
#include "stats.h"

#include <pthread.h>
#include <string.h>

const uint64_t stats_bucket_us[STATS_NBUCKETS - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 250000, 1000000,
};

static atomic_ulong decisions[STATS_CHECKS][STATS_NACTIONS];
static atomic_ulong sessions_active, sessions_total, reloads_ok, reloads_failed, fallbacks;

/* Slots are only ever added, under the lock; nslots is published after the slot is filled. */
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stats_backend slots[STATS_BACKENDS];
static atomic_size_t nslots;

static const char *const action_names[STATS_NACTIONS] = {
	"reject", "reject_warning", "hold", "warn", "accept_on_error",
};
static const char *const result_names[STATS_NRESULTS] = {
	"ok", "not_found", "error", "skipped",
};

void
stats_decision(size_t check, enum stats_action action)
{
	if (check < STATS_CHECKS && action < STATS_NACTIONS)
		atomic_fetch_add_explicit(&decisions[check][action], 1, memory_order_relaxed);
}

void
stats_session(bool opened)
{
	if (opened) {
		atomic_fetch_add_explicit(&sessions_active, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sessions_total, 1, memory_order_relaxed);
	} else
		atomic_fetch_sub_explicit(&sessions_active, 1, memory_order_relaxed);
}

void
stats_reload(bool ok)
{
	atomic_fetch_add_explicit(ok ? &reloads_ok : &reloads_failed, 1, memory_order_relaxed);
}

void
stats_ratelimit_fallback(void)
{
	atomic_fetch_add_explicit(&fallbacks, 1, memory_order_relaxed);
}

/* Copy src into a fixed field, cut to fit. */
static void
name_copy(char *dst, size_t size, const char *src)
{
	size_t	len = strlen(src);

	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

struct stats_backend *
stats_backend_slot(const char *backend, const char *server)
{
	struct stats_backend *slot = NULL;
	size_t	n;

	pthread_mutex_lock(&slots_lock);
	n = atomic_load(&nslots);
	for (size_t i = 0; i < n && slot == NULL; i++)
		if (strncmp(slots[i].backend, backend, sizeof(slots[i].backend) - 1) == 0 &&
		    strncmp(slots[i].server, server, sizeof(slots[i].server) - 1) == 0)
			slot = &slots[i];
	if (slot == NULL && n < STATS_BACKENDS) {
		slot = &slots[n];
		name_copy(slot->backend, sizeof(slot->backend), backend);
		name_copy(slot->server, sizeof(slot->server), server);
		atomic_store(&nslots, n + 1);
	}
	pthread_mutex_unlock(&slots_lock);
	return slot;
}

void
stats_backend_request(struct stats_backend *slot, enum stats_result result, uint64_t elapsed_us)
{
	size_t	b = 0;

	if (slot == NULL || result >= STATS_NRESULTS)
		return;
	while (b < STATS_NBUCKETS - 1 && elapsed_us > stats_bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&slot->results[result], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&slot->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&slot->latency_us_sum, elapsed_us, memory_order_relaxed);
}

void
stats_read(struct stats_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t c = 0; c < STATS_CHECKS; c++)
		for (size_t a = 0; a < STATS_NACTIONS; a++)
			out->decisions[c][a] = atomic_load_explicit(&decisions[c][a], memory_order_relaxed);
	out->sessions_active = atomic_load(&sessions_active);
	out->sessions_total = atomic_load(&sessions_total);
	out->reloads_ok = atomic_load(&reloads_ok);
	out->reloads_failed = atomic_load(&reloads_failed);
	out->ratelimit_local_fallbacks = atomic_load(&fallbacks);
	out->nbackends = atomic_load(&nslots);
	for (size_t i = 0; i < out->nbackends; i++) {
		const struct stats_backend *s = &slots[i];

		memcpy(out->backends[i].backend, s->backend, sizeof(s->backend));
		memcpy(out->backends[i].server, s->server, sizeof(s->server));
		for (size_t r = 0; r < STATS_NRESULTS; r++)
			out->backends[i].results[r] = atomic_load(&s->results[r]);
		for (size_t b = 0; b < STATS_NBUCKETS; b++)
			out->backends[i].buckets[b] = atomic_load(&s->buckets[b]);
		out->backends[i].latency_us_sum = atomic_load(&s->latency_us_sum);
	}
}

const char *
stats_action_name(enum stats_action action)
{
	return action < STATS_NACTIONS ? action_names[action] : "?";
}

const char *
stats_result_name(enum stats_result result)
{
	return result < STATS_NRESULTS ? result_names[result] : "?";
}
