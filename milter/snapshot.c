/*
 * snapshot.c - reference-counted objects replaced under readers (snapshot.h).
 */
#include "snapshot.h"

void
snapshot_init(struct snapshot *snap, void (*free_fn)(struct snapshot *))
{
	atomic_init(&snap->refs, 1);
	snap->free = free_fn;
}

void
snapshot_hold(struct snapshot *snap)
{
	atomic_fetch_add(&snap->refs, 1);
}

void
snapshot_release(struct snapshot *snap)
{
	if (snap != NULL && atomic_fetch_sub(&snap->refs, 1) == 1)
		snap->free(snap);
}

struct snapshot *
snapshot_acquire(struct snapshot_slot *slot)
{
	struct snapshot *snap;

	pthread_mutex_lock(&slot->lock);
	if ((snap = slot->current) != NULL)
		snapshot_hold(snap);
	pthread_mutex_unlock(&slot->lock);
	return snap;
}

void
snapshot_install(struct snapshot_slot *slot, struct snapshot *snap)
{
	struct snapshot *old;

	pthread_mutex_lock(&slot->lock);
	old = slot->current;
	slot->current = snap;
	pthread_mutex_unlock(&slot->lock);
	snapshot_release(old);
}
