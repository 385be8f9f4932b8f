/*
 * test_reply.c - reply building: code/DSN validation, sanitising, '%'
 * doubling, and the 980-byte budget whatever the client sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

/* strlen of "CODE DSN escaped-text" plus separators and NUL, as libmilter counts. */
static size_t
milter_length(const struct reply *r)
{
	char	buf[REPLY_MAX * 2];

	reply_escaped(r, buf, sizeof(buf));
	return strlen(r->code) + strlen(r->dsn) + strlen(buf) + 3;
}

/* reply_set() accepts code, dsn and item and writes want as the text. */
static void
expect_reply(int code, const char *dsn, const char *item, size_t len, const char *text,
    const char *want)
{
	struct reply r;
	char	code_text[8];

	assert_true(reply_set(&r, code, dsn, item, len, text));
	snprintf(code_text, sizeof(code_text), "%d", code);
	assert_string_equal(r.code, code_text);
	assert_string_equal(r.dsn, dsn);
	assert_string_equal(r.text, want);
}

static void
test_helo_reply(void **state)
{
	(void)state;
	expect_reply(504, "5.5.2", "usuario-10c7392", 15,
	    "Helo command rejected: need fully-qualified hostname",
	    "<usuario-10c7392>: Helo command rejected: need fully-qualified hostname");
}

static void
test_no_item(void **state)
{
	(void)state;
	expect_reply(451, "4.3.2", NULL, 0, "Server busy, try again later",
	    "Server busy, try again later");
}

static void
test_code_dsn_class(void **state)
{
	struct reply r;

	(void)state;
	assert_false(reply_set(&r, 250, "2.0.0", NULL, 0, "ok"));
	assert_false(reply_set(&r, 550, "4.7.1", NULL, 0, "x"));
	assert_false(reply_set(&r, 450, "5.7.1", NULL, 0, "x"));
	assert_false(reply_set(&r, 450, "4.7", NULL, 0, "x"));
	assert_false(reply_set(&r, 450, "4..7.1", NULL, 0, "x"));
	assert_false(reply_set(&r, 450, "4.7.1.", NULL, 0, "x"));
	assert_false(reply_set(&r, 450, "4.a.1", NULL, 0, "x"));
	assert_false(reply_set(&r, 600, "6.0.0", NULL, 0, "x"));
	assert_true(reply_code_valid(552, "5.2.2"));
	assert_true(reply_code_valid(450, "4.7.100"));
	assert_string_equal(r.text, "");
}

static void
test_control_bytes(void **state)
{
	struct reply r;
	const char item[] = "a\r\nb\0c\x7f\x01" "d\xc3\xa9";

	(void)state;
	assert_true(reply_set(&r, 501, "5.5.2", item, sizeof(item) - 1, "Helo command rejected: Invalid name"));
	assert_string_equal(r.text, "<a??b?c??d\xc3\xa9>: Helo command rejected: Invalid name");
	assert_null(strchr(r.text, '\r'));
	assert_null(strchr(r.text, '\n'));
}

static void
test_percent_doubled(void **state)
{
	struct reply r;
	char	buf[REPLY_MAX * 2];

	(void)state;
	assert_true(reply_set(&r, 504, "5.5.2", "a%sb%n", 6, "x"));
	assert_string_equal(r.text, "<a%sb%n>: x");
	reply_escaped(&r, buf, sizeof(buf));
	assert_string_equal(buf, "<a%%sb%%n>: x");
}

/* Any length, any share of '%': the escaped reply fits libmilter's limit. */
static void
test_long_items_fit(void **state)
{
	static const size_t lengths[] = {0, 1, 900, 940, 950, 960, 979, 980, 981, 2000, 65536};
	struct reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		for (int fill = 0; fill < 3; fill++) {
			size_t	n = lengths[i];
			char   *item = malloc(n + 1);

			assert_non_null(item);
			for (size_t j = 0; j < n; j++)
				item[j] = fill == 0 ? 'a' : fill == 1 ? '%' : (j % 2 ? '%' : '\n');
			item[n] = '\0';
			assert_true(reply_set(&r, 504, "5.5.2", item, n,
					      "Helo command rejected: need fully-qualified hostname"));
			assert_true(milter_length(&r) <= REPLY_MAX);
			/* The fixed part always survives, after a cut item. */
			assert_non_null(strstr(r.text, ">: Helo command rejected: need fully-qualified hostname"));
			if (fill == 0 && n > 940)
				assert_non_null(strstr(r.text, "...>: "));
			if (fill == 0 && n <= 900)
				assert_int_equal(strlen(r.text), n + 2 + 2 + 52);
			free(item);
		}
	}
}

static void
test_printable(void **state)
{
	char	buf[8];

	(void)state;
	reply_printable(buf, sizeof(buf), "ab\ncdefghij", 11);
	assert_string_equal(buf, "ab?cdef");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helo_reply),
		cmocka_unit_test(test_no_item),
		cmocka_unit_test(test_code_dsn_class),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_percent_doubled),
		cmocka_unit_test(test_long_items_fit),
		cmocka_unit_test(test_printable),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
