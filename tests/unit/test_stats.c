/*
 * test_stats.c - the counters (milter/stats.h): decisions by row and
 * action, the session gauge, back-end slots registered once and shared by
 * name, latency buckets at their bounds, every slot taken, and counts from
 * several threads adding up exactly.  Output is TAP, for automake's
 * tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "stats.h"

#define THREADS		4
#define PER_THREAD	100000

static void
test_decisions_and_gauges(void **state)
{
	struct stats_snapshot s;

	(void)state;
	stats_decision(1, STATS_REJECT);
	stats_decision(1, STATS_REJECT);
	stats_decision(3, STATS_ACCEPT_ON_ERROR);
	stats_decision(STATS_CHECKS, STATS_REJECT);	/* out of range: ignored */
	stats_session(true);
	stats_session(true);
	stats_session(false);
	stats_reload(true);
	stats_reload(false);
	stats_ratelimit_fallback();
	stats_read(&s);
	assert_int_equal(s.decisions[1][STATS_REJECT], 2);
	assert_int_equal(s.decisions[3][STATS_ACCEPT_ON_ERROR], 1);
	assert_int_equal(s.decisions[0][STATS_REJECT], 0);
	assert_int_equal(s.sessions_active, 1);
	assert_int_equal(s.sessions_total, 2);
	assert_int_equal(s.reloads_ok, 1);
	assert_int_equal(s.reloads_failed, 1);
	assert_int_equal(s.ratelimit_local_fallbacks, 1);
	assert_string_equal(stats_action_name(STATS_HOLD), "hold");
	assert_string_equal(stats_result_name(STATS_SKIPPED), "skipped");
}

static void
test_backend_slots(void **state)
{
	struct stats_backend *a = stats_backend_slot("memcached", "127.0.0.1:11211");
	struct stats_backend *b = stats_backend_slot("memcached", "127.0.0.1:11212");
	struct stats_snapshot s;
	char	name[32];

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	/* The same pair again (a reload) shares the slot. */
	assert_ptr_equal(stats_backend_slot("memcached", "127.0.0.1:11211"), a);
	/* Latencies land in the bucket whose bound they do not exceed; past the last, +Inf. */
	stats_backend_request(a, STATS_OK, 0);
	stats_backend_request(a, STATS_OK, stats_bucket_us[0]);
	stats_backend_request(a, STATS_NOT_FOUND, stats_bucket_us[0] + 1);
	stats_backend_request(a, STATS_ERROR, 10000000);
	stats_backend_request(NULL, STATS_OK, 1);	/* no slot: nothing counted, no crash */
	stats_read(&s);
	assert_int_equal(s.nbackends, 2);
	assert_string_equal(s.backends[0].server, "127.0.0.1:11211");
	assert_int_equal(s.backends[0].results[STATS_OK], 2);
	assert_int_equal(s.backends[0].results[STATS_NOT_FOUND], 1);
	assert_int_equal(s.backends[0].results[STATS_ERROR], 1);
	assert_int_equal(s.backends[0].buckets[0], 2);
	assert_int_equal(s.backends[0].buckets[1], 1);
	assert_int_equal(s.backends[0].buckets[STATS_NBUCKETS - 1], 1);
	assert_int_equal(s.backends[0].latency_us_sum, 2 * stats_bucket_us[0] + 1 + 10000000);
	/* Every slot taken: NULL, and the taken ones keep working. */
	for (int i = 2; i < STATS_BACKENDS; i++) {
		snprintf(name, sizeof(name), "db%d:3306", i);
		assert_non_null(stats_backend_slot("mysql", name));
	}
	assert_null(stats_backend_slot("mysql", "one-too-many:3306"));
	assert_ptr_equal(stats_backend_slot("memcached", "127.0.0.1:11212"), b);
}

/* One counting thread. */
static void *
counter(void *arg)
{
	struct stats_backend *slot = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		stats_decision(2, STATS_WARN);
		stats_backend_request(slot, STATS_OK, 1);
	}
	return NULL;
}

static void
test_threads_add_up(void **state)
{
	struct stats_backend *slot = stats_backend_slot("memcached", "127.0.0.1:11211");
	struct stats_snapshot before, after;
	pthread_t t[THREADS];

	(void)state;
	stats_read(&before);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, counter, slot), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	stats_read(&after);
	assert_int_equal(after.decisions[2][STATS_WARN] - before.decisions[2][STATS_WARN],
			 THREADS * PER_THREAD);
	assert_int_equal(after.backends[0].results[STATS_OK] - before.backends[0].results[STATS_OK],
			 THREADS * PER_THREAD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions_and_gauges),
		cmocka_unit_test(test_backend_slots),
		cmocka_unit_test(test_threads_add_up),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
