/*
 * test_quota.c - unit tests for quota.c, the quota service: verdicts from
 * real fixture maildirs (full, room left, SIZE=, grace_percent, unlimited,
 * missing maildir, symlinked maildir), multi_target all/any with remote
 * and failing targets, the cache (one lookup for many recipients, ttl 0,
 * flush, reload), the circuit breaker in front of a failing server
 * source, and the real maildir source end to end.  The source is a fake
 * in-memory table (pure logic); the maildirs are real.
 * Output is TAP, for automake's tap-driver.sh.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "address.h"
#include "clock.h"
#include "config.h"
#include "maildirsize.h"
#include "quota.h"
#include "quota_cache.h"
#include "quota_source.h"
#include "fake_source.h"
#include "fixture.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

static char tmpdir[256];
static struct config *cfg;

/* ---- fixtures ---------------------------------------------------------- */

/* Make maildir tmpdir/name with a maildirsize of text (NULL: none). */
static void
maildir(const char *name, const char *text)
{
	char	path[1024];
	FILE   *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/cur", tmpdir, name);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/new", tmpdir, name);
	mkdir(path, 0755);
	if (text == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s/maildirsize", tmpdir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* ---- the fake source ------------------------------------------------------ */

static const struct fake_row aliases[] = {
	{"both@example.org", "bob@example.org, alice@example.org", 0},
	{"fulls@example.org", "bob@example.org, carl@example.org", 0},
	{"fullext@example.org", "bob@example.org, someone@remote.example", 0},
	{"fullerr@example.org", "bob@example.org, linked@example.org", 0},
	{"roomerr@example.org", "alice@example.org, linked@example.org", 0},
	{"aliasfail@example.org", NULL, 0},
};

static const struct fake_row mailboxes[] = {
	{"bob@example.org", "bob", 1000},	/* 1200 used: full */
	{"carl@example.org", "carl", 1000},	/* 1000 used: exactly at the limit */
	{"alice@example.org", "alice", 2000},	/* 100 used */
	{"free@example.org", "free", 0},	/* unlimited */
	{"new@example.org", "never-delivered", 10},
	{"linked@example.org", "linked", 10},	/* a symlink: unreadable */
	/* An SQL-like source has no message limits: maildirsize's "NC" applies to a byte quota. */
	{"sqlcount@example.org", "count5", 1000000},	/* 5 messages of 5 */
	{"sqlfree@example.org", "count5", 0},		/* unlimited: NC not read */
};

/* No alias domains: every alias_domain lookup is "not found" (or fails with the rest). */
static struct fake_tables tables = {
	.aliases = aliases, .naliases = NROWS(aliases),
	.mailboxes = mailboxes, .nmailboxes = NROWS(mailboxes),
	.maildir_root = tmpdir,
};

/* Start the service on the fake source (which has nothing to close). */
static void
start_fake(bool remote)
{
	static struct quota_source src = {.ops = &fake_source_ops, .state = &tables};

	assert_true(quota_start_with(cfg, &src, remote));
}

static int
setup(void **state)
{
	char	target[512], link[512];

	(void)state;
	if (!fixture_mkdtemp(tmpdir, sizeof(tmpdir), "test_quota"))
		return -1;
	maildir("bob", "1000S\n1200 12\n");
	maildir("carl", "1000S\n1000 10\n");
	maildir("alice", "2000S\n100 1\n");
	maildir("free", NULL);
	maildir("count5", "0S,5C\n100 5\n");		/* full by count, no byte limit */
	maildir("count4", "0S,5C\n100 4\n");		/* one message of room */
	maildir("count6", "0S,5C\n100 6\n");
	maildir("bothlim", "1000S,5C\n900 2\n");	/* bytes and messages: room in both */
	maildir("elsewhere", "10S\n100000 1\n");
	snprintf(target, sizeof(target), "%s/elsewhere", tmpdir);
	snprintf(link, sizeof(link), "%s/linked", tmpdir);
	if (symlink(target, link) != 0)
		return -1;
	if ((cfg = config_load(NULL, NULL, NULL)) == NULL)
		return -1;
	free(cfg->quota.maildir_root);
	cfg->quota.maildir_root = strdup(tmpdir);
	config_install(cfg);	/* the service holds its own reference */
	cfg = config_current();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	quota_stop();
	config_release(cfg);
	config_shutdown();
	return fixture_rmtree(tmpdir);
}

/* Point the real maildir source at tmpdir + tmpl. */
static void
set_template(const char *tmpl)
{
	free(cfg->quota.maildir_template);
	assert_non_null(cfg->quota.maildir_template = strdup(tmpl));
}

/* The verdict for text with SIZE=size. */
static enum quota_verdict
verdict(const char *text, unsigned long long size, struct quota_result *res)
{
	struct address a;
	struct quota_result local;

	assert_int_equal(address_parse(text, strlen(text), cfg->quota.recipient_delimiter, &a),
			 ADDRESS_OK);
	return quota_check(cfg, &a, size, res ? res : &local);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_not_started(void **state)
{
	(void)state;
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_ERROR);
}

static void
test_verdicts(void **state)
{
	struct quota_result res;

	(void)state;
	start_fake(false);
	cfg->quota.cache_ttl = 0;
	assert_int_equal(verdict("<bob@example.org>", 0, &res), QUOTA_FULL);
	assert_string_equal(res.mailbox, "bob@example.org");
	assert_int_equal(res.usage, 1200);
	assert_int_equal(res.limit, 1000);
	assert_int_equal(verdict("<Bob+Tag@Example.ORG>", 0, NULL), QUOTA_FULL);
	/* exactly at the limit is not over it; one more byte is */
	assert_int_equal(verdict("<carl@example.org>", 0, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<carl@example.org>", 1, NULL), QUOTA_FULL);
	assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<alice@example.org>", 1900, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<alice@example.org>", 1901, NULL), QUOTA_FULL);
	assert_int_equal(verdict("<alice@example.org>", ~0ULL, NULL), QUOTA_FULL);
	cfg->quota.use_message_size = false;
	assert_int_equal(verdict("<alice@example.org>", 1901, NULL), QUOTA_NO_OPINION);
	cfg->quota.use_message_size = true;
	/* grace: 1000 + 20 % = 1200, and 1200 is not over */
	cfg->quota.grace_percent = 20;
	assert_int_equal(verdict("<bob@example.org>", 0, &res), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<bob@example.org>", 1, &res), QUOTA_FULL);
	assert_int_equal(res.limit, 1200);
	cfg->quota.grace_percent = 0;
	/* unlimited, never delivered to, unknown */
	assert_int_equal(verdict("<free@example.org>", ~0ULL, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<new@example.org>", 5, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<new@example.org>", 11, NULL), QUOTA_FULL);
	assert_int_equal(verdict("<nobody@example.org>", 0, &res), QUOTA_NO_OPINION);
	assert_string_equal(res.why, "no local mailbox");
	/* a maildir that is a symlink, an alias lookup that fails: errors */
	assert_int_equal(verdict("<linked@example.org>", 0, NULL), QUOTA_ERROR);
	assert_int_equal(verdict("<aliasfail@example.org>", 0, NULL), QUOTA_ERROR);
	quota_stop();
}

static void
test_multi_target(void **state)
{
	static const struct {
		const char *rcpt;
		enum quota_verdict all, any;
	} rows[] = {
		{"<both@example.org>", QUOTA_NO_OPINION, QUOTA_FULL},
		{"<fulls@example.org>", QUOTA_FULL, QUOTA_FULL},
		{"<fullext@example.org>", QUOTA_NO_OPINION, QUOTA_FULL},
		{"<fullerr@example.org>", QUOTA_ERROR, QUOTA_FULL},
		{"<roomerr@example.org>", QUOTA_NO_OPINION, QUOTA_ERROR},
	};

	(void)state;
	start_fake(false);
	cfg->quota.cache_ttl = 0;
	cfg->quota.use_message_size = true;
	for (size_t i = 0; i < NROWS(rows); i++) {
		cfg->quota.multi_target = MULTI_TARGET_ALL;
		if (verdict(rows[i].rcpt, 1, NULL) != rows[i].all)
			fail_msg("%s: all gives %d", rows[i].rcpt, verdict(rows[i].rcpt, 1, NULL));
		cfg->quota.multi_target = MULTI_TARGET_ANY;
		if (verdict(rows[i].rcpt, 1, NULL) != rows[i].any)
			fail_msg("%s: any gives %d", rows[i].rcpt, verdict(rows[i].rcpt, 1, NULL));
	}
	cfg->quota.multi_target = MULTI_TARGET_ALL;
	quota_stop();
}

static void
test_cache(void **state)
{
	struct quota_stats before, after;
	unsigned first;
	char	path[1024];
	FILE   *fp;

	(void)state;
	start_fake(false);
	cfg->quota.cache_ttl = 30;
	fake_calls = 0;
	assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_NO_OPINION);
	first = fake_calls;
	assert_true(first >= 2);
	/* 50 recipients of one mailbox: one lookup */
	quota_stats(&before);
	for (int i = 0; i < 50; i++)
		assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_NO_OPINION);
	quota_stats(&after);
	assert_int_equal(fake_calls, first);
	assert_true(after.hits - before.hits >= 100);
	assert_int_equal(after.source_calls, before.source_calls);
	/* not-found answers are cached too */
	fake_calls = 0;
	verdict("<nobody@example.org>", 0, NULL);
	first = fake_calls;
	verdict("<nobody@example.org>", 0, NULL);
	assert_int_equal(fake_calls, first);
	/* usage is cached: the mailbox fills, the cache does not see it until flushed */
	snprintf(path, sizeof(path), "%s/alice/maildirsize", tmpdir);
	assert_non_null(fp = fopen(path, "a"));
	fputs("5000 1\n", fp);
	fclose(fp);
	assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_NO_OPINION);
	quota_cache_flush();
	fake_calls = 0;
	assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_FULL);
	assert_true(fake_calls > 0);
	/* reload empties the cache too, and keeps a source whose settings did not change */
	fake_calls = 0;
	quota_reload(cfg);
	assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_FULL);
	assert_true(fake_calls > 0);
	/* cache_ttl 0: every check asks */
	cfg->quota.cache_ttl = 0;
	fake_calls = 0;
	verdict("<alice@example.org>", 0, NULL);
	first = fake_calls;
	verdict("<alice@example.org>", 0, NULL);
	assert_int_equal(fake_calls, 2 * first);
	/* errors are not cached */
	cfg->quota.cache_ttl = 30;
	fake_failing = true;
	assert_int_equal(verdict("<carl@example.org>", 0, NULL), QUOTA_ERROR);
	fake_failing = false;
	assert_int_equal(verdict("<carl@example.org>", 1, NULL), QUOTA_FULL);
	/* restore alice */
	assert_non_null(fp = fopen(path, "w"));
	fputs("2000S\n100 1\n", fp);
	fclose(fp);
	quota_stop();
}

/* Many distinct keys: the cache stays bounded and keeps answering. */
static void
test_cache_bounded(void **state)
{
	char	rcpt[64];

	(void)state;
	start_fake(false);
	cfg->quota.cache_ttl = 30;
	for (int i = 0; i < 40000; i++) {
		snprintf(rcpt, sizeof(rcpt), "<u%d@example.org>", i);
		assert_int_equal(verdict(rcpt, 0, NULL), QUOTA_NO_OPINION);
	}
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_FULL);
	quota_stop();
}

static void
test_breaker(void **state)
{
	struct quota_stats before, after;
	unsigned n;
	uint64_t t0;

	(void)state;
	start_fake(true);
	cfg->quota.cache_ttl = 0;
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_FULL);
	fake_failing = true;
	fake_calls = 0;
	for (int i = 0; i < 3; i++)
		assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_ERROR);
	assert_int_equal(fake_calls, 3);	/* each check fails at its first lookup */
	/* open: the server is not asked, the answer is immediate */
	quota_stats(&before);
	t0 = clock_ms();
	for (int i = 0; i < 100; i++)
		assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_ERROR);
	assert_true(clock_ms() - t0 < 1000);
	quota_stats(&after);
	assert_int_equal(fake_calls, 3);
	assert_int_equal(after.breaker_skips - before.breaker_skips, 100);
	/* after the open period one probe goes through; a failure reopens at once */
	sleep(6);
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_ERROR);
	assert_int_equal(fake_calls, 4);
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_ERROR);
	assert_int_equal(fake_calls, 4);
	/* the server is back: the next probe closes the breaker */
	fake_failing = false;
	sleep(6);
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_FULL);
	n = fake_calls;
	assert_int_equal(verdict("<alice@example.org>", 0, NULL), QUOTA_NO_OPINION);
	assert_true(fake_calls > n);
	quota_stop();
}

/* A local (maildir) source has no breaker: one bad maildir does not stop others. */
static void
test_no_breaker_for_maildirs(void **state)
{
	(void)state;
	start_fake(false);
	cfg->quota.cache_ttl = 0;
	for (int i = 0; i < 10; i++)
		assert_int_equal(verdict("<linked@example.org>", 0, NULL), QUOTA_ERROR);
	assert_int_equal(verdict("<bob@example.org>", 0, NULL), QUOTA_FULL);
	quota_stop();
}

/* One worker of test_threads: verdicts that must not change under concurrency. */
static void *
worker(void *arg)
{
	static const char *const rcpts[] = {"<bob@example.org>", "<alice@example.org>",
					    "<both@example.org>", "<nobody@example.org>"};
	static const enum quota_verdict want[] = {QUOTA_FULL, QUOTA_NO_OPINION,
						  QUOTA_NO_OPINION, QUOTA_NO_OPINION};
	long	bad = 0;

	(void)arg;
	for (int i = 0; i < 20000; i++) {
		struct address a;
		struct quota_result res;
		size_t	k = (size_t)i % 4;

		if (address_parse(rcpts[k], strlen(rcpts[k]), "+", &a) != ADDRESS_OK ||
		    quota_check(cfg, &a, 0, &res) != want[k])
			bad++;
	}
	return (void *)bad;
}

/* Four threads check while the cache is flushed and the service reloaded. */
static void
test_threads(void **state)
{
	pthread_t t[4];
	void   *bad;

	(void)state;
	start_fake(false);
	cfg->quota.cache_ttl = 30;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	for (int i = 0; i < 50; i++) {
		quota_cache_flush();
		quota_reload(cfg);
		usleep(1000);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((long)bad, 0);
	}
	quota_stop();
}

/* The real maildir source through the service (quota_start, no SQL configured). */
static void
test_maildir_source(void **state)
{
	struct quota_result res;

	(void)state;
	set_template("%l");
	cfg->quota.cache_ttl = 30;
	assert_true(quota_start(cfg));
	assert_int_equal(verdict("<bob@anything.example>", 0, &res), QUOTA_FULL);
	assert_int_equal(res.usage, 1200);
	assert_int_equal(verdict("<alice@x.example>", 0, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<alice@x.example>", 1901, NULL), QUOTA_FULL);
	assert_int_equal(verdict("<free@x.example>", 1 << 30, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<nobody@x.example>", 0, &res), QUOTA_NO_OPINION);
	assert_string_equal(res.why, "no local mailbox");
	assert_int_equal(verdict("<linked@x.example>", 0, NULL), QUOTA_ERROR);
	assert_int_equal(verdict("<\"..\"@x.example>", 0, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<elsewhere@x.example>", 0, NULL), QUOTA_FULL);
	quota_stop();
	set_template("%d/%l/");
}

/* Maildir++ message limits ("NC"): full at or over the count, with grace rounded up. */
static void
test_count_limit(void **state)
{
	struct quota_result res;
	char	path[1024];
	FILE   *fp;

	(void)state;
	set_template("%l");
	cfg->quota.cache_ttl = 0;
	assert_true(quota_start(cfg));
	assert_int_equal(verdict("<count5@x.example>", 0, &res), QUOTA_FULL);
	assert_true(res.by_count);
	assert_int_equal(res.count, 5);
	assert_int_equal(res.count_limit, 5);
	assert_int_equal(res.limit, 0);
	assert_int_equal(verdict("<count4@x.example>", 0, &res), QUOTA_NO_OPINION);
	/* No byte limit: any SIZE= fits. */
	assert_int_equal(verdict("<count4@x.example>", 1ULL << 40, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<count6@x.example>", 0, NULL), QUOTA_FULL);
	/* Both limits: bytes over is full by bytes, not by count. */
	assert_int_equal(verdict("<bothlim@x.example>", 100, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<bothlim@x.example>", 101, &res), QUOTA_FULL);
	assert_false(res.by_count);
	assert_int_equal(res.count_limit, 5);
	/* grace: 5 x 1.1 = 5.5, so 6 messages are full and 5 are not; 5 x 1.2 = 6 exactly */
	cfg->quota.grace_percent = 10;
	assert_int_equal(verdict("<count5@x.example>", 0, NULL), QUOTA_NO_OPINION);
	assert_int_equal(verdict("<count6@x.example>", 0, &res), QUOTA_FULL);
	assert_int_equal(res.count_limit, 6);
	cfg->quota.grace_percent = 20;
	assert_int_equal(verdict("<count6@x.example>", 0, NULL), QUOTA_FULL);
	cfg->quota.grace_percent = 21;
	assert_int_equal(verdict("<count6@x.example>", 0, &res), QUOTA_NO_OPINION);
	cfg->quota.grace_percent = 0;

	/* The cache keeps the count beside the bytes: a hit judges the same. */
	cfg->quota.cache_ttl = 30;
	assert_int_equal(verdict("<count5@x.example>", 0, NULL), QUOTA_FULL);
	snprintf(path, sizeof(path), "%s/count5/maildirsize", tmpdir);
	assert_non_null(fp = fopen(path, "a"));
	fputs("-10 -1\n", fp);		/* a message deleted */
	fclose(fp);
	assert_int_equal(verdict("<count5@x.example>", 0, &res), QUOTA_FULL);
	assert_true(res.by_count);
	quota_cache_flush();
	assert_int_equal(verdict("<count5@x.example>", 0, &res), QUOTA_NO_OPINION);
	quota_stop();
	set_template("%d/%l/");

	/* A source without message limits (SQL): the byte-quota mailbox's maildirsize "NC" counts. */
	cfg->quota.cache_ttl = 0;
	maildir("count5", "0S,5C\n100 5\n");
	start_fake(false);
	assert_int_equal(verdict("<sqlcount@example.org>", 0, &res), QUOTA_FULL);
	assert_true(res.by_count);
	assert_int_equal(verdict("<sqlfree@example.org>", 0, NULL), QUOTA_NO_OPINION);
	quota_stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_started),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_multi_target),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_breaker),
		cmocka_unit_test(test_no_breaker_for_maildirs),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_maildir_source),
		cmocka_unit_test(test_count_limit),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
