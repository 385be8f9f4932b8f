/*
 * test_snapshot.c - reference-counted objects in a slot (milter/snapshot.h):
 * install, acquire and release; the free function called exactly once, and
 * only after the last reference is dropped; readers on several threads
 * acquiring and releasing while another thread installs new objects.
 * Objects are never really freed here: "freed" marks them, so that a
 * reader that sees a freed object, or a second free, is counted rather
 * than a crash.  Output is TAP, for automake's tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "snapshot.h"

#define READERS		4
#define INSTALLS	2000

struct object {
	int	value;
	atomic_int frees;		/* times its free function ran */
	struct snapshot snap;		/* not first: snapshot_owner must do the arithmetic */
};

static atomic_int frees_total;

/* The free function: count, do not free. */
static void
object_free(struct snapshot *snap)
{
	struct object *o = snapshot_owner(snap, struct object, snap);

	atomic_fetch_add(&o->frees, 1);
	atomic_fetch_add(&frees_total, 1);
}

/* A fresh object holding value, with the caller's one reference. */
static void
object_init(struct object *o, int value)
{
	o->value = value;
	atomic_init(&o->frees, 0);
	snapshot_init(&o->snap, object_free);
}

/* The slot's current object, acquired, or NULL. */
static struct object *
acquire(struct snapshot_slot *slot)
{
	struct snapshot *snap = snapshot_acquire(slot);

	return snap != NULL ? snapshot_owner(snap, struct object, snap) : NULL;
}

static void
test_install_acquire_release(void **state)
{
	struct snapshot_slot slot = SNAPSHOT_SLOT_INITIALIZER;
	struct object a, *got;

	(void)state;
	atomic_store(&frees_total, 0);
	assert_null(acquire(&slot));
	object_init(&a, 7);
	snapshot_install(&slot, &a.snap);
	got = acquire(&slot);
	assert_ptr_equal(got, &a);
	assert_int_equal(got->value, 7);
	snapshot_release(&got->snap);
	/* The slot still holds it. */
	assert_int_equal(atomic_load(&a.frees), 0);
	assert_ptr_equal(acquire(&slot), &a);
	snapshot_release(&a.snap);
	snapshot_install(&slot, NULL);
	assert_int_equal(atomic_load(&a.frees), 1);
	assert_null(acquire(&slot));
	/* Releasing NULL is allowed and does nothing. */
	snapshot_release(NULL);
	assert_int_equal(atomic_load(&frees_total), 1);
}

static void
test_free_after_last_release(void **state)
{
	struct snapshot_slot slot = SNAPSHOT_SLOT_INITIALIZER;
	struct object a, b;
	struct object *r1, *r2;

	(void)state;
	atomic_store(&frees_total, 0);
	object_init(&a, 1);
	object_init(&b, 2);
	snapshot_install(&slot, &a.snap);
	r1 = acquire(&slot);
	r2 = acquire(&slot);
	snapshot_hold(&r2->snap);
	/* Replaced: the slot's reference goes, three readers' remain. */
	snapshot_install(&slot, &b.snap);
	assert_ptr_equal(acquire(&slot), &b);
	snapshot_release(&b.snap);
	assert_int_equal(atomic_load(&a.frees), 0);
	snapshot_release(&r1->snap);
	assert_int_equal(atomic_load(&a.frees), 0);
	snapshot_release(&r2->snap);
	assert_int_equal(atomic_load(&a.frees), 0);
	snapshot_release(&r2->snap);
	assert_int_equal(atomic_load(&a.frees), 1);
	assert_int_equal(atomic_load(&b.frees), 0);
	snapshot_install(&slot, NULL);
	assert_int_equal(atomic_load(&b.frees), 1);
	assert_int_equal(atomic_load(&a.frees), 1);
	assert_int_equal(atomic_load(&frees_total), 2);
}

struct shared {
	struct snapshot_slot slot;
	atomic_bool done;
	atomic_int bad;			/* a reader saw a freed object or a wrong value */
	atomic_long reads;
};

/* A reader: acquire, check the object is alive and what it was made as, release. */
static void *
reader(void *arg)
{
	struct shared *sh = arg;

	while (!atomic_load(&sh->done)) {
		struct object *o = acquire(&sh->slot);

		if (o == NULL)
			continue;
		if (atomic_load(&o->frees) != 0 || o->value < 0 || o->value >= INSTALLS)
			atomic_fetch_add(&sh->bad, 1);
		/* Sometimes keep it a little, as a session does. */
		if (o->value % 3 == 0)
			sched_yield();
		if (atomic_load(&o->frees) != 0)
			atomic_fetch_add(&sh->bad, 1);
		snapshot_release(&o->snap);
		atomic_fetch_add(&sh->reads, 1);
	}
	return NULL;
}

/* Wait until the readers made at least n reads, or 5 s went by. */
static void
wait_for_reads(struct shared *sh, long n)
{
	for (int spins = 0; atomic_load(&sh->reads) < n && spins < 5000; spins++)
		usleep(1000);
}

static void
test_concurrent_readers(void **state)
{
	struct shared sh = {.slot = SNAPSHOT_SLOT_INITIALIZER};
	struct object *objs = calloc(INSTALLS, sizeof(*objs));
	pthread_t th[READERS];

	(void)state;
	assert_non_null(objs);
	atomic_store(&frees_total, 0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &sh), 0);
	for (int i = 0; i < INSTALLS; i++) {
		object_init(&objs[i], i);
		snapshot_install(&sh.slot, &objs[i].snap);
		if (i % 16 == 0)
			sched_yield();
		/* On a busy machine the readers may not have run yet: let them (bounded). */
		if (i % 100 == 99)
			wait_for_reads(&sh, i / 100 + 1);
	}
	snapshot_install(&sh.slot, NULL);
	atomic_store(&sh.done, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&sh.bad), 0);
	assert_true(atomic_load(&sh.reads) > 0);
	/* Every object freed exactly once, once nobody held it. */
	for (int i = 0; i < INSTALLS; i++)
		assert_int_equal(atomic_load(&objs[i].frees), 1);
	assert_int_equal(atomic_load(&frees_total), INSTALLS);
	free(objs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_install_acquire_release),
		cmocka_unit_test(test_free_after_last_release),
		cmocka_unit_test(test_concurrent_readers),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
