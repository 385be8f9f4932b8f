/*
 * test_config_oom.c - a failed allocation while loading the configuration
 * is a load error: config_load() reports "out of memory" through its report
 * function and returns NULL (so a reload keeps the running configuration),
 * whichever allocation fails, and frees what it had built.
 *
 * The program is linked with -Wl,--wrap for malloc, calloc, realloc and
 * strdup: the calls libmxgate.a makes come here, where the Nth one can be
 * made to fail.  libconfig's and cmocka's own allocations are not touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#ifndef CONFIG_FIXTURES
#define CONFIG_FIXTURES "tests/unit/configs"
#endif

void   *__real_malloc(size_t size);
void   *__real_calloc(size_t n, size_t size);
void   *__real_realloc(void *p, size_t size);
char   *__real_strdup(const char *s);
void   *__wrap_malloc(size_t size);
void   *__wrap_calloc(size_t n, size_t size);
void   *__wrap_realloc(void *p, size_t size);
char   *__wrap_strdup(const char *s);

static long countdown = -1;		/* allocations left before the failure; -1: none */
static int failed;			/* the failure happened */

/* Whether this allocation is the one to fail. */
static int
fail_now(void)
{
	if (countdown < 0 || countdown-- > 0)
		return 0;
	failed = 1;
	return 1;
}

void *
__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __real_realloc(p, size);
}

char *
__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

static int oom_reports, other_reports;

static void
collect(void *arg, const char *message)
{
	(void)arg;
	if (strstr(message, ": out of memory") != NULL)
		oom_reports++;
	else
		other_reports++;
}

/*
 * Load path with its first, second, ... allocation failing until a load
 * needs no more than were allowed; each failing load must be NULL with
 * exactly one "out of memory" and no other error.  Returns how many
 * allocations a whole load makes.
 */
static long
fail_each_allocation(const char *path)
{
	for (long n = 0; n < 100000; n++) {
		struct config *cfg;

		countdown = n;
		failed = 0;
		oom_reports = other_reports = 0;
		cfg = config_load(path, collect, NULL);
		countdown = -1;
		if (!failed) {
			assert_non_null(cfg);
			assert_int_equal(oom_reports + other_reports, 0);
			config_release(cfg);
			return n;
		}
		if (cfg != NULL || oom_reports != 1 || other_reports != 0)
			fail_msg("%s: allocation %ld failing gave %s, %d out-of-memory and %d other errors",
				 path ? path : "(defaults)", n + 1, cfg ? "a configuration" : "NULL",
				 oom_reports, other_reports);
	}
	fail_msg("%s: a load makes more than 100000 allocations", path ? path : "(defaults)");
	return 0;
}

/* The embedded defaults: strings and the trusted networks. */
static void
test_oom_defaults(void **state)
{
	(void)state;
	assert_true(fail_each_allocation(NULL) > 10);
}

/* A file with every key: string lists, networks, rules, limits and classes. */
static void
test_oom_full_file(void **state)
{
	(void)state;
	assert_true(fail_each_allocation(CONFIG_FIXTURES "/full.conf") > 30);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oom_defaults),
		cmocka_unit_test(test_oom_full_file),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
