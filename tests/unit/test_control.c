/*
 * test_control.c - the control socket's command table (milter/control.c,
 * control_status.c) without a socket: requests that are not commands,
 * help, quota flush, the stats answer in both shapes with rows of the
 * same check name summed, and JSON strings that stay valid JSON whatever
 * bytes they hold.  Output is TAP, for automake's tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "config.h"
#include "control.h"
#include "stats.h"

/* Run line (copied: dispatch splits in place) into out. */
static void
run(const char *line, struct control_out *out)
{
	char	buf[CONTROL_REQUEST_MAX + 1];

	memset(out, 0, sizeof(*out));
	snprintf(buf, sizeof(buf), "%s", line);
	control_dispatch(buf, out);
}

/* Unknown, empty and over-long requests are 400s naming what was wrong. */
static void
test_bad_requests(void **state)
{
	static const struct {
		const char *line, *message;
	} cases[] = {
		{"frobnicate now", "unknown command frobnicate"},
		{"   \t ", "empty request (try \"help\")"},
		{"--json", "empty request (try \"help\")"},
		{"a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7", "too many words (at most 32)"},
		{"quota", "usage: quota flush [ADDRESS]"},
		{"quota drop", "usage: quota flush [ADDRESS]"},
		{"status now", "usage: status"},
		{"reload now", "usage: reload"},
	};
	struct control_out out;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(cases[i].line, &out);
		if (out.status != 400 || strcmp(out.message, cases[i].message) != 0)
			fail_msg("\"%s\": %d %s", cases[i].line, out.status, out.message);
		control_out_free(&out);
	}
}

/* help names every command, in text and in JSON; --json may stand anywhere. */
static void
test_help(void **state)
{
	static const char *const names[] = {"status", "stats", "reload", "quota flush", "explain",
					    "ratelimit show", "help"};
	struct control_out out;

	(void)state;
	run("help", &out);
	assert_int_equal(out.status, 200);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char	want[64];

		snprintf(want, sizeof(want), "\n%s", names[i]);
		if (strncmp(out.buf, names[i], strlen(names[i])) != 0 && strstr(out.buf, want) == NULL)
			fail_msg("help lacks %s:\n%s", names[i], out.buf);
	}
	control_out_free(&out);
	run("--json help", &out);
	assert_int_equal(out.status, 200);
	assert_true(strncmp(out.buf, "{\"commands\":[{\"name\":\"status\",", 30) == 0);
	assert_non_null(strstr(out.buf, "{\"name\":\"help\",\"usage\":\"help\",\"summary\":\"this list\"}]}\n"));
	control_out_free(&out);
}

/* quota flush, with or without an address, flushes everything and says so. */
static void
test_quota_flush(void **state)
{
	struct control_out out;

	(void)state;
	run("quota flush", &out);
	assert_int_equal(out.status, 200);
	assert_string_equal(out.buf, "flushed the whole cache\n");
	control_out_free(&out);
	run("quota flush bob@example.org", &out);
	assert_int_equal(out.status, 200);
	assert_non_null(strstr(out.buf, "flushed the whole cache (removing one address's"));
	control_out_free(&out);
	run("quota flush --json", &out);
	assert_string_equal(out.buf, "{\"flushed\":\"all\",\"address_only\":false}\n");
	control_out_free(&out);
}

/* stats: both "helo" rows summed, in the text table and in the JSON object. */
static void
test_stats_sums_rows(void **state)
{
	struct control_out out;
	size_t	rows[2], n = 0;
	char	want[200];

	(void)state;
	for (size_t i = 0; i < check_count && n < 2; i++)
		if (strcmp(check_table[i]->name, "helo") == 0)
			rows[n++] = i;
	assert_int_equal(n, 2);
	stats_decision(rows[0], STATS_REJECT);
	stats_decision(rows[1], STATS_REJECT);
	stats_decision(rows[1], STATS_REJECT);
	run("stats", &out);
	assert_int_equal(out.status, 200);
	snprintf(want, sizeof(want), "\n%-12s %-16s %10d\n", "helo", "reject", 3);
	if (strstr(out.buf, want) == NULL)
		fail_msg("no row \"%s\" in:\n%s", want + 1, out.buf);
	control_out_free(&out);
	run("stats --json", &out);
	assert_int_equal(out.status, 200);
	assert_non_null(strstr(out.buf, "\"helo\":{\"reject\":3,\"reject_warning\":0,"));
	assert_true(strncmp(out.buf, "{\"decisions\":{\"overload\":{\"reject\":0,", 36) == 0);
	assert_string_equal(out.buf + out.len - 2, "}\n");
	control_out_free(&out);
}

/* Quotes, backslashes and controls escaped; UTF-8 kept; any other byte U+FFFD. */
static void
test_json_strings(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"plain", "\"plain\""},
		{"a\"b\\c", "\"a\\\"b\\\\c\""},
		{"x\ny\x01", "\"x\\u000ay\\u0001\""},
		{"b\xc3\xb3" "b", "\"b\xc3\xb3" "b\""},		/* ó */
		{"\xe2\x80\x8b", "\"\xe2\x80\x8b\""},		/* U+200B */
		{"b\xff" "b", "\"b\\ufffdb\""},			/* not UTF-8 */
		{"\xc3", "\"\\ufffd\""},				/* cut sequence */
		{"\xc0\xaf", "\"\\ufffd\\ufffd\""},		/* overlong '/' */
		{"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},	/* a surrogate */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct control_out out = {.status = 200};

		control_json_string(&out, cases[i].in);
		assert_non_null(out.buf);
		assert_string_equal(out.buf, cases[i].want);
		control_out_free(&out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_quota_flush),
		cmocka_unit_test(test_stats_sums_rows),
		cmocka_unit_test(test_json_strings),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
