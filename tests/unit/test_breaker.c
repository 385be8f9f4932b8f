/*
 * test_breaker.c - the circuit breaker (milter/breaker.h): failures
 * counted up to the threshold, an open breaker refusing, exactly one probe
 * when the open period is over (also among racing threads), a failed
 * probe reopening, a success closing it and saying so once, and reset;
 * and clock_share, the deadline each of several servers tried in turn gets.
 * Open periods are short and waited out with usleep.  Output is TAP, for
 * automake's tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "breaker.h"
#include "clock.h"

#define SHORT_MS	50		/* an open period the tests wait out */
#define PAST_SHORT_US	((SHORT_MS + 30) * 1000)
#define RACERS		8
#define RACE_MS		1000		/* the open period of the race */

/* Open b (threshold 1) and check that it says so. */
static void
open_now(struct breaker *b)
{
	assert_int_equal(breaker_record(b, false), BREAKER_OPENED);
	assert_true(breaker_is_open(b));
}

/* A breaker opened for SHORT_MS by one failure, whose probe is now due. */
static void
open_until_due(struct breaker *b)
{
	breaker_init(b, 1, SHORT_MS);
	open_now(b);
	assert_false(breaker_allow(b));
	usleep(PAST_SHORT_US);
}

static void
test_threshold_counting(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 3, 10000);
	assert_false(breaker_is_open(&b));
	assert_true(breaker_allow(&b));
	/* Two failures stay below the threshold; a success forgets them. */
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, true), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_false(breaker_is_open(&b));
	assert_true(breaker_allow(&b));
	/* The third in a row opens it, and only that one says so. */
	assert_int_equal(breaker_record(&b, false), BREAKER_OPENED);
	assert_true(breaker_is_open(&b));
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	/* Threshold 0 is taken as 1. */
	breaker_init(&b, 0, 10000);
	open_now(&b);
}

static void
test_open_refuses(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 1, 10000);
	open_now(&b);
	for (int i = 0; i < 1000; i++)
		assert_false(breaker_allow(&b));
	assert_true(breaker_is_open(&b));
}

static void
test_one_probe_when_due(void **state)
{
	struct breaker b;

	(void)state;
	open_until_due(&b);
	/* Due: the first caller probes, every other one is still refused. */
	assert_true(breaker_allow(&b));
	for (int i = 0; i < 1000; i++)
		assert_false(breaker_allow(&b));
	assert_true(breaker_is_open(&b));
	/* A probe that outlasts the open period still has the back end to itself. */
	usleep(2 * PAST_SHORT_US);
	assert_false(breaker_allow(&b));
}

struct race {
	struct breaker *b;
	pthread_barrier_t *start;
	atomic_int *allowed;
};

/* One racer: wait for the others, then ask once. */
static void *
racer(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(r->start);
	if (breaker_allow(r->b))
		atomic_fetch_add(r->allowed, 1);
	return NULL;
}

static void
test_one_probe_among_threads(void **state)
{
	struct breaker b;
	pthread_barrier_t start;
	pthread_t th[RACERS];
	atomic_int allowed = 0;
	struct race r = {&b, &start, &allowed};

	(void)state;
	/* A period long enough that the racers all ask before a second probe is due. */
	breaker_init(&b, 1, RACE_MS);
	open_now(&b);
	usleep((RACE_MS + 100) * 1000);
	pthread_barrier_init(&start, NULL, RACERS);
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
	for (int i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	assert_int_equal(atomic_load(&allowed), 1);
}

static void
test_failed_probe_reopens(void **state)
{
	struct breaker b;

	(void)state;
	open_until_due(&b);
	assert_true(breaker_allow(&b));
	/* The probe fails: open again, silently, for a whole period. */
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_true(breaker_is_open(&b));
	assert_false(breaker_allow(&b));
	usleep(PAST_SHORT_US);
	assert_true(breaker_allow(&b));
	assert_false(breaker_allow(&b));
	/* And the next probe's success still closes it. */
	assert_int_equal(breaker_record(&b, true), BREAKER_CLOSED);
}

static void
test_reset(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 2, 10000);
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, false), BREAKER_OPENED);
	breaker_reset(&b);
	assert_false(breaker_is_open(&b));
	assert_true(breaker_allow(&b));
	assert_true(breaker_allow(&b));
	/* The failures are forgotten too. */
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	breaker_reset(&b);
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_false(breaker_is_open(&b));
}

static void
test_success_closes_once(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 2, SHORT_MS);
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, false), BREAKER_OPENED);
	usleep(PAST_SHORT_US);
	assert_true(breaker_allow(&b));
	assert_int_equal(breaker_record(&b, true), BREAKER_CLOSED);
	/* A second success (a call that began with the probe) changes nothing. */
	assert_int_equal(breaker_record(&b, true), BREAKER_SAME);
	assert_false(breaker_is_open(&b));
	for (int i = 0; i < 100; i++)
		assert_true(breaker_allow(&b));
	/* Closed afresh: the threshold counts from zero again. */
	assert_int_equal(breaker_record(&b, false), BREAKER_SAME);
	assert_int_equal(breaker_record(&b, false), BREAKER_OPENED);
}

/*
 * clock_share: servers tried in turn within one deadline each get an equal
 * share of what is left, so a first one that eats its whole share leaves
 * the second half of 1000 ms, and the last gets everything left.
 */
static void
test_deadline_share(void **state)
{
	(void)state;
	assert_int_equal(clock_share(10000, 11000, 2), 10500);	/* first of two */
	assert_int_equal(clock_share(10500, 11000, 1), 11000);	/* the last: all that is left */
	assert_int_equal(clock_share(10000, 11000, 3), 10333);
	assert_int_equal(clock_share(10333, 11000, 2), 10666);
	assert_int_equal(clock_share(10010, 11000, 1), 11000);	/* a quick failure leaves more */
	assert_int_equal(clock_share(11000, 11000, 2), 11000);	/* nothing left */
	assert_int_equal(clock_share(12000, 11000, 2), 11000);	/* past: never later than deadline */
	assert_int_equal(clock_share(10000, 11000, 0), 11000);	/* no division by zero */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_counting),
		cmocka_unit_test(test_open_refuses),
		cmocka_unit_test(test_one_probe_when_due),
		cmocka_unit_test(test_one_probe_among_threads),
		cmocka_unit_test(test_failed_probe_reopens),
		cmocka_unit_test(test_success_closes_once),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_deadline_share),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
