/*
 * test_overload.c - unit tests for overload.c and overload_queue.c:
 * loadavg parsing, the hysteresis rule, the state machine (entering and
 * leaving logged once each, problems logged once), queue counting on
 * Postfix and Sendmail fixture trees made in a temporary directory
 * (including the bounds), one sample of each signal, and the sampler
 * thread with a reload.
 * Output is TAP, for automake's tap-driver.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "config.h"
#include "overload.h"
#include "fixture.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* ---- fixtures --------------------------------------------------------- */

static char tmpdir[256];

static int
setup_tmp(void **state)
{
	(void)state;
	return fixture_mkdtemp(tmpdir, sizeof(tmpdir), "test_overload") ? 0 : -1;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	return fixture_rmtree(tmpdir);
}

/* tmpdir/REL, made from a printf format. */
static const char * __attribute__((format(printf, 1, 2)))
path_of(const char *fmt, ...)
{
	static char buf[4][512];
	static int next;
	char	rel[256];
	va_list ap;
	char   *p = buf[next++ % 4];

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(p, 512, "%s/%s", tmpdir, rel);
	return p;
}

static void
make_dir(const char *rel)
{
	assert_int_equal(mkdir(path_of("%s", rel), 0755), 0);
}

static void
write_file(const char *path, const char *content)
{
	FILE   *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(content, fp);
	assert_int_equal(fclose(fp), 0);
}

/* n empty files PREFIX0..PREFIX{n-1} in tmpdir/REL. */
static void
make_files(const char *rel, const char *prefix, int n)
{
	for (int i = 0; i < n; i++) {
		int	fd = open(path_of("%s/%s%d", rel, prefix, i), O_CREAT | O_WRONLY, 0600);

		assert_true(fd >= 0);
		close(fd);
	}
}

static const struct overload_scan_limits unbounded = {(unsigned long)-1, (unsigned long)-1, 0};

/* ---- loadavg parsing ------------------------------------------------- */

static void
test_parse_loadavg(void **state)
{
	static const struct {
		const char *text;
		size_t	len;
		bool	ok;
		double	value;
	} rows[] = {
#define ROW(s, ok, v)	{ (s), sizeof(s) - 1, (ok), (v) }
		ROW("0.52 0.58 0.59 1/467 12345\n", true, 0.52),
		ROW("12.00 8.31 4.07 7/1200 99999\n", true, 12.0),
		ROW("3", true, 3),
		ROW("3\n", true, 3),
		ROW("  4.25\t1", true, 4.25),
		ROW("999999999.999999999", true, 999999999.999999999),
		ROW("0.00", true, 0),
		ROW("", false, 0),
		ROW("\n", false, 0),
		ROW("garbage", false, 0),
		ROW("-1.00 0 0", false, 0),
		ROW("+1.00", false, 0),
		ROW("nan", false, 0),
		ROW("inf", false, 0),
		ROW("1e9", false, 0),
		ROW("0x10", false, 0),
		ROW("3.", false, 0),
		ROW(".5", false, 0),
		ROW("1234567890", false, 0),
		ROW("1.1234567890", false, 0),
		ROW("2,50 1,00", false, 0),
		ROW("1.5\0002", false, 0),
		ROW("7.5\r\n", false, 0),
#undef ROW
	};

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		double	v = -1;
		bool	ok = overload_parse_loadavg(rows[i].text, rows[i].len, &v);

		if (ok != rows[i].ok)
			print_error("row %zu: \"%s\"\n", i, rows[i].text);
		assert_int_equal(ok, rows[i].ok);
		if (ok)
			assert_true(v >= rows[i].value * (1 - 1e-12) && v <= rows[i].value * (1 + 1e-12));
		else
			assert_true(v == -1);	/* untouched */
	}
	/* The length is respected: no read past it. */
	double	v;
	assert_true(overload_parse_loadavg("1.25xyz", 4, &v));
	assert_true(v == 1.25);
}

/* ---- hysteresis ------------------------------------------------------ */

static void
test_hysteresis(void **state)
{
	(void)state;
	/* Off when high is 0, whatever else. */
	assert_false(overload_hysteresis(false, 1e9, 0, 0));
	assert_false(overload_hysteresis(true, 1e9, 0, 0));
	/* Not over: enters at high, not below. */
	assert_false(overload_hysteresis(false, 99, 100, 20));
	assert_true(overload_hysteresis(false, 100, 100, 20));
	assert_true(overload_hysteresis(false, 101, 100, 20));
	/* Over: stays over above low, leaves at low. */
	assert_true(overload_hysteresis(true, 99, 100, 20));
	assert_true(overload_hysteresis(true, 21, 100, 20));
	assert_false(overload_hysteresis(true, 20, 100, 20));
	assert_false(overload_hysteresis(true, 0, 100, 20));
	/* low = high: a plain threshold with no band. */
	assert_true(overload_hysteresis(false, 50, 50, 50));
	assert_true(overload_hysteresis(true, 51, 50, 50));
	assert_false(overload_hysteresis(true, 50, 50, 50));
	/* Load averages are fractions. */
	assert_true(overload_hysteresis(false, 8.0, 8.0, 4.5));
	assert_true(overload_hysteresis(true, 4.51, 8.0, 4.5));
	assert_false(overload_hysteresis(true, 4.5, 8.0, 4.5));
}

/* ---- the state machine ----------------------------------------------- */

struct emitted {
	int	count;
	enum log_level level[32];
	char	line[32][1024];
};

static void
collect(void *arg, enum log_level level, const char *line)
{
	struct emitted *e = arg;

	assert_true(e->count < 32);
	e->level[e->count] = level;
	snprintf(e->line[e->count], sizeof(e->line[0]), "%s", line);
	e->count++;
}

static struct overload_settings
settings(unsigned long qhigh, unsigned long qlow, double lhigh, double llow)
{
	static char flag[] = "/run/overload.flag", queue[] = "/var/spool/postfix",
	    load[] = "/proc/loadavg";
	struct overload_settings set = {
		.enabled = true, .flag_file = flag, .queue_directory = queue,
		.loadavg_file = load, .queue_format = QUEUE_FORMAT_POSTFIX,
		.queue_high = qhigh, .queue_low = qlow, .load_high = lhigh, .load_low = llow,
		.sample_interval = 1,
	};
	return set;
}

static void
reading_ok(struct overload_reading *r, double value)
{
	memset(r, 0, sizeof(*r));
	r->status = OVERLOAD_READING_OK;
	r->value = value;
}

static void
reading_error(struct overload_reading *r, const char *why)
{
	memset(r, 0, sizeof(*r));
	r->status = OVERLOAD_READING_ERROR;
	snprintf(r->error, sizeof(r->error), "%s", why);
}

/* One step with the queue at depth and the other signals as given. */
static unsigned
step(struct overload_machine *m, const struct overload_settings *set, double flag,
     double depth, double load, struct emitted *e)
{
	struct overload_reading r[OVERLOAD_NSIGNALS];

	reading_ok(&r[0], flag);
	reading_ok(&r[1], depth);
	reading_ok(&r[2], load);
	return overload_machine_step(m, set, r, collect, e);
}

static void
test_machine_queue_hysteresis(void **state)
{
	struct overload_settings set = settings(100, 20, 0, 0);
	struct overload_machine m = {0};
	struct emitted e = {0};
	static const double rising[] = {0, 50, 99};
	static const double falling[] = {100, 500, 99, 50, 21};

	(void)state;
	for (size_t i = 0; i < NROWS(rising); i++)
		assert_int_equal(step(&m, &set, 0, rising[i], 0, &e), 0);
	assert_int_equal(e.count, 0);
	/* Reaches the high mark: entering, logged once. */
	assert_int_equal(step(&m, &set, 0, 100, 0, &e), OVERLOAD_QUEUE);
	assert_int_equal(e.count, 1);
	assert_int_equal(e.level[0], LOG_LEVEL_WARNING);
	assert_string_equal(e.line[0],
			    "overload: entering overload state: queue depth 100 reached queue_high 100");
	/* Stays overloaded all the way down to just above the low mark, silently. */
	for (size_t i = 0; i < NROWS(falling); i++)
		assert_int_equal(step(&m, &set, 0, falling[i], 0, &e), OVERLOAD_QUEUE);
	assert_int_equal(e.count, 1);
	/* At the low mark: leaving, logged once. */
	assert_int_equal(step(&m, &set, 0, 20, 0, &e), 0);
	assert_int_equal(e.count, 2);
	assert_string_equal(e.line[1],
			    "overload: leaving overload state: queue depth 20 fell to queue_low 20");
	/* And does not come back before the high mark. */
	assert_int_equal(step(&m, &set, 0, 99, 0, &e), 0);
	assert_int_equal(e.count, 2);
}

static void
test_machine_signals_combine(void **state)
{
	struct overload_settings set = settings(100, 20, 8.0, 4.0);
	struct overload_machine m = {0};
	struct emitted e = {0};
	struct overload_reading r[OVERLOAD_NSIGNALS];

	(void)state;
	/* The flag alone. */
	assert_int_equal(step(&m, &set, 1, 0, 0.5, &e), OVERLOAD_FLAG);
	assert_int_equal(e.count, 1);
	assert_string_equal(e.line[0],
			    "overload: entering overload state: flag file /run/overload.flag exists");
	/* Load joins: still overloaded, not a second "entering" line. */
	assert_int_equal(step(&m, &set, 1, 0, 9.5, &e), OVERLOAD_FLAG | OVERLOAD_LOAD);
	assert_true(e.count == 1 || e.level[1] == LOG_LEVEL_DEBUG);
	int	warnings = 0;
	for (int i = 0; i < e.count; i++)
		warnings += e.level[i] == LOG_LEVEL_WARNING;
	assert_int_equal(warnings, 1);
	/* The flag goes: still overloaded by load (hysteresis above load_low). */
	assert_int_equal(step(&m, &set, 0, 0, 5.0, &e), OVERLOAD_LOAD);
	/* Load falls to its low mark: leaving names the load. */
	e.count = 0;
	assert_int_equal(step(&m, &set, 0, 0, 4.0, &e), 0);
	assert_int_equal(e.count, 1);
	assert_string_equal(e.line[0],
			    "overload: leaving overload state: load average 4.00 fell to load_low 4");
	/* Two signals at once are both named; a bounded count says "or more". */
	e.count = 0;
	reading_ok(&r[0], 0);
	reading_ok(&r[1], 101);
	r[1].at_least = true;
	reading_ok(&r[2], 12.25);
	assert_int_equal(overload_machine_step(&m, &set, r, collect, &e),
			 OVERLOAD_QUEUE | OVERLOAD_LOAD);
	assert_int_equal(e.count, 1);
	assert_string_equal(e.line[0],
			    "overload: entering overload state: queue depth 101 or more reached "
			    "queue_high 100, load average 12.25 reached load_high 8");
	/* Disabled by a reload: leaves, and says why. */
	set.enabled = false;
	e.count = 0;
	assert_int_equal(overload_machine_step(&m, &set, r, collect, &e), 0);
	assert_int_equal(e.count, 1);
	assert_non_null(strstr(e.line[0], "leaving overload state: overload check disabled"));
}

static void
test_machine_problems_once(void **state)
{
	/* The readings this test is about: unreadable signals. */
	struct overload_reading r[OVERLOAD_NSIGNALS];
	struct overload_settings set = settings(100, 20, 8.0, 4.0);
	struct overload_machine m = {0};
	struct emitted e = {0};

	(void)state;
	/* Overloaded by the queue, then the directory becomes unreadable. */
	assert_int_equal(step(&m, &set, 0, 150, 0, &e), OVERLOAD_QUEUE);
	e.count = 0;
	reading_ok(&r[0], 0);
	reading_error(&r[1], "queue directory /q: Permission denied");
	reading_error(&r[2], "loadavg file /l: no load average at its start");
	for (int i = 0; i < 5; i++)
		assert_int_equal(overload_machine_step(&m, &set, r, collect, &e), 0);
	/* Each problem once, plus leaving once: nothing repeats. */
	assert_int_equal(e.count, 3);
	assert_string_equal(e.line[0], "overload: queue directory /q: Permission denied; "
			    "queue depth treated as not overloaded");
	assert_string_equal(e.line[1], "overload: loadavg file /l: no load average at its start; "
			    "load average treated as not overloaded");
	assert_string_equal(e.line[2],
			    "overload: leaving overload state: queue depth cannot be read");
	/* A different problem is a new line. */
	reading_error(&r[1], "queue directory /q: No such file or directory");
	overload_machine_step(&m, &set, r, collect, &e);
	assert_int_equal(e.count, 4);
	/* Recovery is said once too, and the signal counts again. */
	reading_ok(&r[1], 10);
	reading_ok(&r[2], 1.0);
	assert_int_equal(overload_machine_step(&m, &set, r, collect, &e), 0);
	assert_int_equal(overload_machine_step(&m, &set, r, collect, &e), 0);
	assert_int_equal(e.count, 6);
	assert_string_equal(e.line[4], "overload: queue depth readable again");
	assert_int_equal(e.level[4], LOG_LEVEL_INFO);
	reading_ok(&r[1], 100);
	assert_int_equal(overload_machine_step(&m, &set, r, collect, &e), OVERLOAD_QUEUE);
}

/* ---- queue counting -------------------------------------------------- */

static void
make_postfix_queue(void)
{
	make_dir("pf");
	make_dir("pf/incoming");
	make_dir("pf/active");
	make_dir("pf/maildrop");
	make_dir("pf/deferred");
	make_dir("pf/incoming/A");
	make_dir("pf/incoming/A/B");
	make_files("pf/incoming", "1F2E3D", 5);
	make_files("pf/incoming/A", "A0B1C", 3);
	make_files("pf/incoming/A/B", "AB", 2);
	make_files("pf/active", "9A8B7C", 7);
	make_files("pf/maildrop", "C0FFEE", 4);
	make_files("pf/deferred", "DEFE", 50);	/* not waiting to be taken in */
}

static void
test_count_postfix(void **state)
{
	struct overload_count c;

	(void)state;
	make_postfix_queue();
	overload_count_queue(path_of("pf"), QUEUE_FORMAT_POSTFIX, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_OK);
	assert_int_equal(c.messages, 5 + 3 + 2 + 7 + 4);
	/* A symbolic link to a directory is never followed. */
	assert_int_equal(symlink(path_of("pf/deferred"), path_of("pf/active/loop")), 0);
	overload_count_queue(path_of("pf"), QUEUE_FORMAT_POSTFIX, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_OK);
	assert_int_equal(c.messages, 5 + 3 + 2 + 7 + 4 + 1);
	/* A missing queue is an empty one. */
	make_dir("pf2");
	make_dir("pf2/active");
	make_files("pf2/active", "X", 3);
	overload_count_queue(path_of("pf2"), QUEUE_FORMAT_POSTFIX, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_OK);
	assert_int_equal(c.messages, 3);
}

static void
test_count_errors(void **state)
{
	struct overload_count c;

	(void)state;
	/* No such directory. */
	overload_count_queue(path_of("nonexistent"), QUEUE_FORMAT_POSTFIX, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_ERROR);
	assert_non_null(strstr(c.error, "No such file or directory"));
	overload_count_queue(path_of("nonexistent"), QUEUE_FORMAT_SENDMAIL, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_ERROR);
	/* A file where the directory should be. */
	write_file(path_of("plain"), "x");
	overload_count_queue(path_of("plain"), QUEUE_FORMAT_SENDMAIL, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_ERROR);
	assert_non_null(strstr(c.error, "Not a directory"));
	/* A directory with none of Postfix's queues. */
	make_dir("empty");
	overload_count_queue(path_of("empty"), QUEUE_FORMAT_POSTFIX, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_ERROR);
	assert_non_null(strstr(c.error, "not a Postfix queue directory"));
	/* ...but an empty Sendmail queue is just empty. */
	overload_count_queue(path_of("empty"), QUEUE_FORMAT_SENDMAIL, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_OK);
	assert_int_equal(c.messages, 0);
	/* incoming that is a file, not a directory. */
	make_dir("pfbad");
	write_file(path_of("pfbad/incoming"), "x");
	overload_count_queue(path_of("pfbad"), QUEUE_FORMAT_POSTFIX, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_ERROR);
	assert_non_null(strstr(c.error, "pfbad/incoming: Not a directory"));
}

static void
test_count_sendmail(void **state)
{
	struct overload_count c;

	(void)state;
	make_dir("sm");
	make_files("sm", "qfA", 6);
	make_files("sm", "dfA", 6);
	make_files("sm", "xfA", 2);
	make_files("sm", "tfA", 1);
	make_files("sm", "hfA", 1);		/* quarantined: not counted */
	make_dir("sm/qf");
	make_files("sm/qf", "qfB", 4);
	make_dir("sm/df");
	make_files("sm/df", "qfC", 9);		/* not where qf files live */
	make_dir("sm/q1");			/* a queue group */
	make_files("sm/q1", "qfD", 3);
	make_dir("sm/q1/qf");
	make_files("sm/q1/qf", "qfE", 2);
	make_dir("sm/q1/q9");			/* groups do not nest */
	make_files("sm/q1/q9", "qfF", 5);
	make_dir("sm/qfdir");			/* a directory named qf*: not a message */
	make_files("sm/qfdir", "qfG", 1);
	overload_count_queue(path_of("sm"), QUEUE_FORMAT_SENDMAIL, &unbounded, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_OK);
	/* qfdir is a q* directory, so a queue group: its qfG0 counts. */
	assert_int_equal(c.messages, 6 + 4 + 3 + 2 + 1);
}

static void
test_count_bounds(void **state)
{
	struct overload_count c;
	struct overload_scan_limits lim = {0};

	(void)state;
	make_dir("big");
	make_dir("big/incoming");
	make_files("big/incoming", "M", 500);
	/* Stops as soon as the bound is counted. */
	lim.max_messages = 101;
	lim.max_entries = (unsigned long)-1;
	overload_count_queue(path_of("big"), QUEUE_FORMAT_POSTFIX, &lim, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_BOUND);
	assert_int_equal(c.messages, 101);
	assert_int_equal(c.entries, 101);
	/* A bound above the depth is an exact count. */
	lim.max_messages = 501;
	overload_count_queue(path_of("big"), QUEUE_FORMAT_POSTFIX, &lim, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_OK);
	assert_int_equal(c.messages, 500);
	/* Too many entries that are not messages reads as the bound. */
	make_dir("smbig");
	make_files("smbig", "df", 300);
	make_files("smbig", "qf", 2);
	lim.max_messages = 50;
	lim.max_entries = 100;
	overload_count_queue(path_of("smbig"), QUEUE_FORMAT_SENDMAIL, &lim, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_BOUND);
	assert_int_equal(c.messages, 50);
	assert_true(c.entries <= 101);
	/* A bound of 0 reads nothing. */
	lim.max_messages = 0;
	overload_count_queue(path_of("big"), QUEUE_FORMAT_POSTFIX, &lim, &c);
	assert_int_equal(c.status, OVERLOAD_COUNT_BOUND);
	assert_int_equal(c.entries, 0);
	/* The sampler's own limits: queue_high + 1 messages. */
	struct overload_settings set = settings(200, 100, 0, 0);
	overload_scan_limits_for(&set, &lim);
	assert_int_equal(lim.max_messages, 201);
	assert_true(lim.max_entries >= 4 * 201);
	assert_true(lim.budget_ms > 0 && lim.budget_ms <= 1000);
}

/* ---- one sample ------------------------------------------------------ */

static void
test_sample(void **state)
{
	struct overload_settings set = settings(10, 5, 2.0, 1.0);
	struct overload_reading r[OVERLOAD_NSIGNALS];
	char	flag[512], queue[512], load[512];

	(void)state;
	snprintf(flag, sizeof(flag), "%s", path_of("flag"));
	snprintf(queue, sizeof(queue), "%s", path_of("q"));
	snprintf(load, sizeof(load), "%s", path_of("loadavg"));
	set.flag_file = flag;
	set.queue_directory = queue;
	set.loadavg_file = load;
	make_dir("q");
	make_dir("q/incoming");
	make_files("q/incoming", "F", 30);
	write_file(load, "2.50 1.00 0.50 1/100 4242\n");

	/* Flag absent; queue counted to its bound (11); load read. */
	overload_sample(&set, r);
	assert_int_equal(r[0].status, OVERLOAD_READING_OK);
	assert_true(r[0].value == 0);
	assert_int_equal(r[1].status, OVERLOAD_READING_OK);
	assert_true(r[1].value == 11 && r[1].at_least);
	assert_int_equal(r[2].status, OVERLOAD_READING_OK);
	assert_true(r[2].value == 2.5);

	/* Flag present (any file, even empty). */
	write_file(flag, "");
	overload_sample(&set, r);
	assert_true(r[0].status == OVERLOAD_READING_OK && r[0].value == 1);
	/* A flag path that is a directory is a problem, not a flag. */
	assert_int_equal(unlink(flag), 0);
	assert_int_equal(mkdir(flag, 0755), 0);
	overload_sample(&set, r);
	assert_int_equal(r[0].status, OVERLOAD_READING_ERROR);
	assert_non_null(strstr(r[0].error, "is a directory"));

	/* Garbage, a directory, a FIFO and nothing at the loadavg path. */
	write_file(load, "garbage\n");
	overload_sample(&set, r);
	assert_int_equal(r[2].status, OVERLOAD_READING_ERROR);
	assert_non_null(strstr(r[2].error, "no load average"));
	assert_int_equal(unlink(load), 0);
	overload_sample(&set, r);
	assert_int_equal(r[2].status, OVERLOAD_READING_ERROR);
	assert_non_null(strstr(r[2].error, "No such file or directory"));
	assert_int_equal(mkfifo(load, 0644), 0);
	overload_sample(&set, r);	/* must not hang on the FIFO */
	assert_int_equal(r[2].status, OVERLOAD_READING_ERROR);
	assert_non_null(strstr(r[2].error, "not a regular file"));

	/* Signals that are off are not read at all. */
	set.queue_high = 0;
	set.load_high = 0;
	set.flag_file[0] = '\0';
	overload_sample(&set, r);
	for (int i = 0; i < OVERLOAD_NSIGNALS; i++)
		assert_int_equal(r[i].status, OVERLOAD_READING_OFF);
	set.enabled = false;
	overload_sample(&set, r);
	assert_int_equal(r[1].status, OVERLOAD_READING_OFF);
}

/* ---- the sampler thread ---------------------------------------------- */

static void
report_fail(void *arg, const char *message)
{
	(void)arg;
	print_error("config: %s\n", message);
}

/* A configuration whose only overload signal is the flag file flag. */
static struct config *
flag_config(const char *flag)
{
	char	text[1024];
	const char *path = path_of("mxgate.conf");

	snprintf(text, sizeof(text),
		 "overload: { flag_file = \"%s\"; sample_interval = 1; };\n", flag);
	write_file(path, text);
	return config_load(path, report_fail, NULL);
}

/* Wait up to seconds for overload_active() to become want. */
static bool
wait_active(bool want, int seconds)
{
	struct timespec nap = {0, 20 * 1000 * 1000};

	for (int i = 0; i < seconds * 50; i++) {
		if (overload_active() == want)
			return true;
		nanosleep(&nap, NULL);
	}
	return overload_active() == want;
}

static void
test_sampler_thread(void **state)
{
	char	flag_a[512], flag_b[512];
	struct config *cfg;

	(void)state;
	snprintf(flag_a, sizeof(flag_a), "%s", path_of("flag-a"));
	snprintf(flag_b, sizeof(flag_b), "%s", path_of("flag-b"));
	write_file(flag_a, "");
	write_file(flag_b, "");
	assert_non_null(cfg = flag_config(flag_a));

	/* The first sample is taken before start returns. */
	assert_true(overload_start(cfg));
	assert_true(overload_active());
	assert_int_equal(overload_signals(), OVERLOAD_FLAG);
	config_release(cfg);
	/* The sampler notices the flag going within a couple of intervals. */
	assert_int_equal(unlink(flag_a), 0);
	assert_true(wait_active(false, 3));
	/* A reload is applied at once, not after the interval. */
	assert_non_null(cfg = flag_config(flag_b));
	overload_reload(cfg);
	config_release(cfg);
	assert_true(wait_active(true, 1));
	overload_stop();
	assert_false(overload_active());
	/* Start again after a stop. */
	assert_non_null(cfg = flag_config(flag_b));
	assert_true(overload_start(cfg));
	config_release(cfg);
	assert_true(overload_active());
	overload_stop();
	overload_stop();		/* twice is harmless */
}

/* The debug line of a sample: every watched signal as read, then the state. */
static void
test_sample_line(void **state)
{
	struct overload_settings set = settings(20, 5, 4, 2);
	struct overload_reading r[OVERLOAD_NSIGNALS];
	char	line[512];

	(void)state;
	reading_ok(&r[0], 0);
	reading_ok(&r[1], 19);
	reading_ok(&r[2], 0.1);
	overload_sample_line(line, sizeof(line), 7, &set, r, 0);
	assert_string_equal(line, "overload: sample 7: flag file absent, queue depth 19, "
			    "load average 0.10; not overloaded");
	reading_ok(&r[0], 1);
	r[1].at_least = true;
	r[1].value = 9;
	overload_sample_line(line, sizeof(line), 8, &set, r, OVERLOAD_FLAG | OVERLOAD_QUEUE);
	assert_string_equal(line, "overload: sample 8: flag file present, queue depth 9 or more, "
			    "load average 0.10; overloaded (flag file, queue depth)");
	reading_error(&r[1], "queue directory /q: Permission denied");
	memset(&r[2], 0, sizeof(r[2]));
	overload_sample_line(line, sizeof(line), 9, &set, r, OVERLOAD_FLAG);
	assert_string_equal(line, "overload: sample 9: flag file present, queue depth unreadable; "
			    "overloaded (flag file)");
	memset(r, 0, sizeof(r));
	overload_sample_line(line, sizeof(line), 10, &set, r, 0);
	assert_string_equal(line, "overload: sample 10: nothing watched; not overloaded");
	set.enabled = false;
	overload_sample_line(line, sizeof(line), 11, &set, r, 0);
	assert_string_equal(line, "overload: sample 11: overload check disabled");
	/* A short buffer is cut, never overrun. */
	reading_ok(&r[1], 19);
	set.enabled = true;
	overload_sample_line(line, 16, 12, &set, r, OVERLOAD_QUEUE);
	assert_string_equal(line, "overload: sampl");
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_loadavg),
		cmocka_unit_test(test_sample_line),
		cmocka_unit_test(test_hysteresis),
		cmocka_unit_test(test_machine_queue_hysteresis),
		cmocka_unit_test(test_machine_signals_combine),
		cmocka_unit_test(test_machine_problems_once),
		cmocka_unit_test_setup_teardown(test_count_postfix, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_count_errors, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_count_sendmail, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_count_bounds, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_sample, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_sampler_thread, setup_tmp, teardown_tmp),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
