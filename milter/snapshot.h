/*
 * snapshot.h - a reference-counted object that a reload replaces while
 * the sessions that started with the old one keep using it.
 *
 * The object embeds a struct snapshot; a slot holds the current one.  A
 * reader takes a reference (snapshot_acquire) and drops it when done; the
 * last reference frees the object, outside any lock.  The configuration,
 * the quota service and the rate-limit back end are all held this way.
 * Thread-safe: the slot's mutex guards only the pointer swap, the count
 * is atomic.
 */
#ifndef MXGATE_SNAPSHOT_H
#define MXGATE_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct snapshot {
	atomic_int refs;
	void	(*free)(struct snapshot *);	/* frees the object embedding this */
};

struct snapshot_slot {
	pthread_mutex_t lock;
	struct snapshot *current;
};

#define SNAPSHOT_SLOT_INITIALIZER {PTHREAD_MUTEX_INITIALIZER, NULL}

/* The object embedding member of type type that snap points into. */
#define snapshot_owner(snap, type, member) \
	((type *)(void *)((char *)(snap) - offsetof(type, member)))

/* A new object's counter: one reference, the caller's. */
void	snapshot_init(struct snapshot *snap, void (*free_fn)(struct snapshot *));

/* One more reference to an object the caller already holds. */
void	snapshot_hold(struct snapshot *snap);

/* Drop a reference (NULL is ignored); the last one frees the object. */
void	snapshot_release(struct snapshot *snap);

/* A new reference to the slot's current object, or NULL when it has none. */
struct snapshot *snapshot_acquire(struct snapshot_slot *slot);

/* Make snap (may be NULL) current, taking over the caller's reference; the old one is released. */
void	snapshot_install(struct snapshot_slot *slot, struct snapshot *snap);

#endif
