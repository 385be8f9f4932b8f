/*
 * test_maildirsize.c - unit tests for maildirsize.c: the Maildir++ parser
 * (quota line, usage lines, negative lines, overflow, missing newline,
 * NUL/CR), ",S=" in file names, opening a maildir below maildir_root
 * without following symlinks, and the recalculation walk and its bounds
 * on fixture maildirs built in a temporary directory.  mxgate must never
 * write a maildir, so each test also checks that maildirsize is unchanged.
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "maildirsize.h"
#include "fixture.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* ---- parser ---------------------------------------------------------- */

struct parse_row {
	const char *text;
	size_t	len;
	bool	quota_valid;
	unsigned long long quota_bytes, quota_count;
	bool	usage_valid;
	long long bytes, count;
};

#define P(s, qv, qb, qc, uv, b, c)	{ (s), sizeof(s) - 1, (qv), (qb), (qc), (uv), (b), (c) }

static void
test_parse_rows(void **state)
{
	static const struct parse_row rows[] = {
		P("1000S\n100 1\n", true, 1000, 0, true, 100, 1),
		P("1000S,50C\n100 1\n200 2\n", true, 1000, 50, true, 300, 3),
		P("50C,1000S\n0 0\n", true, 1000, 50, true, 0, 0),
		P("1000S\n500 5\n-200 -2\n", true, 1000, 0, true, 300, 3),
		P("1000S\n  500   5  \n\t-200\t-2\n", true, 1000, 0, true, 300, 3),
		/* a negative total is wrong: recalculate */
		P("1000S\n100 1\n-200 -2\n", true, 1000, 0, false, 0, 0),
		/* no usage line at all */
		P("1000S\n", true, 1000, 0, false, 0, 0),
		P("1000S", true, 1000, 0, false, 0, 0),
		/* last line without its newline: maybe a write in progress */
		P("1000S\n100 1\n200 2", true, 1000, 0, false, 0, 0),
		/* empty file, empty quota line */
		P("", true, 0, 0, false, 0, 0),
		P("\n100 1\n", true, 0, 0, true, 100, 1),
		/* 19 digits fit, 20 do not */
		P("9223372036854775807S\n9223372036854775807 1\n", true, 9223372036854775807ULL, 0,
		  true, 9223372036854775807LL, 1),
		P("99999999999999999999S\n1 1\n", false, 0, 0, true, 1, 1),
		P("1000S\n99999999999999999999 1\n", true, 1000, 0, false, 0, 0),
		P("9223372036854775808S\n1 1\n", false, 0, 0, true, 1, 1),
		/* the sum overflows */
		P("1S\n9223372036854775807 1\n1 1\n", true, 1, 0, false, 0, 0),
		/* malformed quota lines */
		P("-1000S\n1 1\n", false, 0, 0, true, 1, 1),
		P("1000\n1 1\n", false, 0, 0, true, 1, 1),
		P("1000X\n1 1\n", false, 0, 0, true, 1, 1),
		P("1000S,\n1 1\n", false, 0, 0, true, 1, 1),
		P("1000S,2000S\n1 1\n", false, 0, 0, true, 1, 1),
		P("S\n1 1\n", false, 0, 0, true, 1, 1),
		P(" 1000S\n1 1\n", false, 0, 0, true, 1, 1),
		/* malformed usage lines */
		P("1000S\n100\n", true, 1000, 0, false, 0, 0),
		P("1000S\n100 1 2\n", true, 1000, 0, false, 0, 0),
		P("1000S\n100 x\n", true, 1000, 0, false, 0, 0),
		P("1000S\n--1 1\n", true, 1000, 0, false, 0, 0),
		P("1000S\n\n", true, 1000, 0, false, 0, 0),
		P("1000S\n+1 1\n", true, 1000, 0, false, 0, 0),
		/* NUL and CR anywhere: nothing is trusted */
		P("1000S\n1\0 1\n", false, 0, 0, false, 0, 0),
		P("1000S\r\n1 1\r\n", false, 0, 0, false, 0, 0),
		P("\x7f\x45\x4c\x46\x02\x01\x01\n", false, 0, 0, false, 0, 0),
	};

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		struct maildirsize m;

		maildirsize_parse(rows[i].text, rows[i].len, &m);
		if (m.quota_valid != rows[i].quota_valid || m.usage_valid != rows[i].usage_valid ||
		    (m.quota_valid && (m.quota_bytes != rows[i].quota_bytes ||
				       m.quota_count != rows[i].quota_count)) ||
		    (m.usage_valid && (m.bytes != rows[i].bytes || m.count != rows[i].count)))
			fail_msg("row %zu: quota %d %llu %llu usage %d %lld %lld", i, m.quota_valid,
				 m.quota_bytes, m.quota_count, m.usage_valid, m.bytes, m.count);
	}
}

/* A 1 MiB file of valid lines still parses (the size rule is the caller's). */
static void
test_parse_huge(void **state)
{
	size_t	size = 1 << 20, n = 0;
	char   *buf = malloc(size);
	struct maildirsize m;

	(void)state;
	assert_non_null(buf);
	n += (size_t)sprintf(buf, "5000S\n");
	while (n + 16 < size)
		n += (size_t)sprintf(buf + n, "%d %d\n", 10, 1);
	maildirsize_parse(buf, n, &m);
	assert_true(m.quota_valid);
	assert_int_equal(m.quota_bytes, 5000);
	assert_true(m.usage_valid);
	assert_true(m.bytes > 5000);
	/* random bytes of the same length never crash and never give negative usage */
	srand(4);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(rand() % 7 == 0 ? '\n' : rand() % 4 == 0 ? ' ' : '0' + rand() % 12);
	maildirsize_parse(buf, size, &m);
	assert_true(!m.usage_valid || (m.bytes >= 0 && m.count >= 0));
	free(buf);
}

static void
test_name_size(void **state)
{
	static const struct {
		const char *name;
		bool	found;
		unsigned long long size;
	} rows[] = {
		{"1700000000.M1P2.host,S=4567:2,S", true, 4567},
		{"1700000000.M1P2.host,S=4567,W=4600:2,", true, 4567},
		{"1700000000.M1P2.host,W=4600,S=12", true, 12},
		{"1700000000.M1P2.host", false, 0},
		{"1700000000.M1P2.host:2,S", false, 0},
		{"x,S=:2,", false, 0},
		{"x,S=12a:2,", false, 0},
		{"x:2,S=99", false, 0},	/* after ':' are flags */
		{"x,S=99999999999999999999", false, 0},
		{"x,S=9223372036854775807", true, 9223372036854775807ULL},
		{"x,s=5", false, 0},
		{"S=5", false, 0},
	};

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		unsigned long long size = 0;
		bool	found = maildir_name_size(rows[i].name, &size);

		if (found != rows[i].found || (found && size != rows[i].size))
			fail_msg("%s: found %d size %llu", rows[i].name, found, size);
	}
}

/* ---- fixtures ------------------------------------------------------------ */

static char tmpdir[256];

static int
setup_tmp(void **state)
{
	(void)state;
	return fixture_mkdtemp(tmpdir, sizeof(tmpdir), "test_maildirsize") ? 0 : -1;
}

static int
teardown_tmp(void **state)
{
	(void)state;
	return fixture_rmtree(tmpdir);
}

/* tmpdir/REL from a printf format (one of four static buffers, so two fit in a call). */
static const char * __attribute__((format(printf, 1, 2)))
path(const char *fmt, ...)
{
	static char bufs[4][1024];
	static unsigned next;
	char   *buf = bufs[next++ % 4];
	int	n = snprintf(buf, sizeof(bufs[0]), "%s/", tmpdir);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(bufs[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	return buf;
}

/* mkdir -p of tmpdir/REL. */
static void
mkdirs(const char *rel)
{
	char	buf[1024];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, rel);
	for (char *p = buf + strlen(tmpdir) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

/* Write len bytes to tmpdir/REL. */
static void
write_file(const char *rel, const char *data, size_t len)
{
	FILE   *fp = fopen(path("%s", rel), "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* A file of size bytes at tmpdir/REL. */
static void
sized_file(const char *rel, size_t size)
{
	char   *buf = calloc(1, size + 1);

	assert_non_null(buf);
	memset(buf, 'x', size);
	write_file(rel, buf, size);
	free(buf);
}

/* Set tmpdir/REL's mtime to seconds ago. */
static void
age(const char *rel, time_t seconds)
{
	struct timeval tv[2];

	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - seconds;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	assert_int_equal(utimes(path("%s", rel), tv), 0);
}

/* A maildir named rel with cur/ new/ tmp/. */
static void
make_maildir(const char *rel)
{
	char	sub[512];

	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", rel, i == 0 ? "cur" : i == 1 ? "new" : "tmp");
		mkdirs(sub);
	}
}

/* Open tmpdir/rel as a maildir under tmpdir. */
static int
open_md(const char *rel)
{
	char	full[1024];
	int	fd = -1;

	snprintf(full, sizeof(full), "%s/%s", tmpdir, rel);
	assert_int_equal(maildir_open(tmpdir, full, &fd), MAILDIR_OK);
	return fd;
}

/* The file's bytes, to prove nothing was written. */
static char *
slurp(const char *rel)
{
	static char buf[8192];
	FILE   *fp = fopen(path("%s", rel), "rb");
	size_t	n;

	if (fp == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* ---- maildir_open ---------------------------------------------------- */

static void
test_open(void **state)
{
	char	full[1024], outside[1024];
	int	fd;

	(void)state;
	make_maildir("o/example.org/bob");
	mkdirs("elsewhere/cur");
	snprintf(full, sizeof(full), "%s/o/example.org/bob/", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_OK);
	assert_true(fd >= 0);
	close(fd);
	/* the root may carry a trailing slash */
	assert_int_equal(maildir_open(path("o/"), full, &fd), MAILDIR_OK);
	close(fd);
	/* missing */
	snprintf(full, sizeof(full), "%s/o/example.org/nobody", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_MISSING);
	assert_int_equal(fd, -1);
	/* a regular file where the maildir should be: no mailbox */
	write_file("o/example.org/file", "x", 1);
	snprintf(full, sizeof(full), "%s/o/example.org/file", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_MISSING);
	/* a symlink below the root is not followed */
	snprintf(outside, sizeof(outside), "%s/elsewhere", tmpdir);
	assert_int_equal(symlink(outside, path("o/example.org/link")), 0);
	snprintf(full, sizeof(full), "%s/o/example.org/link", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_ERROR);
	assert_int_equal(errno, ELOOP);
	/* a symlinked domain directory neither */
	assert_int_equal(symlink(path("o/example.org"), path("o/example.net")), 0);
	snprintf(full, sizeof(full), "%s/o/example.net/bob", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_ERROR);
	/* but the root itself may be a symlink (the administrator's choice) */
	assert_int_equal(symlink(path("o"), path("rootlink")), 0);
	snprintf(full, sizeof(full), "%s/rootlink/example.org/bob", tmpdir);
	assert_int_equal(maildir_open(path("rootlink"), full, &fd), MAILDIR_OK);
	close(fd);
	/* ".." and paths outside the root are refused */
	snprintf(full, sizeof(full), "%s/o/example.org/../example.org/bob", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_ERROR);
	assert_int_equal(errno, EINVAL);
	snprintf(full, sizeof(full), "%s/o/./example.org/bob", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_ERROR);
	assert_int_equal(maildir_open(path("o"), "/etc", &fd), MAILDIR_ERROR);
	assert_int_equal(errno, EINVAL);
	snprintf(full, sizeof(full), "%s/other/x", tmpdir);
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_ERROR);
	snprintf(full, sizeof(full), "%s/oo/x", tmpdir);	/* a prefix is not a parent */
	assert_int_equal(maildir_open(path("o"), full, &fd), MAILDIR_ERROR);
	/* a missing root is a missing maildir */
	snprintf(full, sizeof(full), "%s/none/x", tmpdir);
	assert_int_equal(maildir_open(path("none"), full, &fd), MAILDIR_MISSING);
}

/* ---- the walk ---------------------------------------------------------- */

static void
test_walk(void **state)
{
	struct maildir_count c;
	int	fd;

	(void)state;
	make_maildir("w");
	sized_file("w/cur/1.M1.h,S=1000:2,S", 10);	/* the name wins over stat */
	sized_file("w/cur/2.M2.h:2,", 300);		/* no S=: stat */
	sized_file("w/new/3.M3.h,S=20", 1);
	sized_file("w/new/.hidden,S=99999", 1);		/* dot files are no messages */
	sized_file("w/tmp/4.M4.h,S=777777", 1);		/* tmp/ does not count */
	sized_file("w/maildirsize", 5);			/* nor the maildir's own files */
	make_maildir("w/.Sent");
	sized_file("w/.Sent/cur/5.M5.h,S=4000:2,S", 1);
	make_maildir("w/.Lists.mxgate");
	sized_file("w/.Lists.mxgate/new/6.M6.h", 50);
	mkdirs("w/notafolder/cur");			/* no leading dot: not a folder */
	sized_file("w/notafolder/cur/7,S=100000", 1);
	/* symlinks: to a big file, a folder, a cur/ directory */
	sized_file("big", 100000);
	assert_int_equal(symlink(path("big"), path("w/cur/8.M8.h:2,")), 0);
	assert_int_equal(symlink(path("w/.Sent"), path("w/.Loop")), 0);
	make_maildir("elsewhere");
	sized_file("elsewhere/cur/9,S=500000", 1);
	make_maildir("w/.Linked");
	rmdir(path("w/.Linked/cur"));
	assert_int_equal(symlink(path("elsewhere/cur"), path("w/.Linked/cur")), 0);
	/* a directory in cur/ is skipped */
	mkdirs("w/cur/10.M10.h,S=123456");

	fd = open_md("w");
	assert_int_equal(maildir_walk(fd, NULL, &c), MAILDIR_OK);
	assert_false(c.incomplete);
	assert_int_equal(c.bytes, 1000 + 300 + 20 + 4000 + 50);
	assert_int_equal(c.files, 5);
	assert_int_equal(c.folders, 3);	/* .Sent, .Lists.mxgate, .Linked */
	close(fd);
}

static void
test_walk_bounds(void **state)
{
	struct maildir_count c;
	struct maildir_walk_limits lim = {0};
	char	name[64];
	int	fd;

	(void)state;
	make_maildir("b");
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "b/cur/%d.M.h,S=10:2,", i);
		sized_file(name, 0);
	}
	fd = open_md("b");
	lim.max_files = 50;
	assert_int_equal(maildir_walk(fd, &lim, &c), MAILDIR_OK);
	assert_true(c.incomplete);
	assert_true(c.files <= 50);
	/* a deadline already past: cut at once */
	lim.max_files = 0;
	lim.deadline_ms = 1;
	assert_int_equal(maildir_walk(fd, &lim, &c), MAILDIR_OK);
	assert_true(c.incomplete);
	/* default bounds: complete */
	assert_int_equal(maildir_walk(fd, NULL, &c), MAILDIR_OK);
	assert_false(c.incomplete);
	assert_int_equal(c.files, 300);
	assert_int_equal(c.bytes, 3000);
	close(fd);
}

/* ---- maildir_usage and maildir_read_quota -------------------------------- */

/* Usage of maildir rel with effective quota q. */
static struct maildir_usage
usage_of(const char *rel, unsigned long long q)
{
	struct maildir_usage u;
	int	fd = open_md(rel);

	assert_int_equal(maildir_usage(fd, q, time(NULL), NULL, &u), MAILDIR_OK);
	close(fd);
	return u;
}

/* Quota line of maildir rel. */
static unsigned long long
quota_of(const char *rel, bool *has)
{
	unsigned long long q, n;
	int	fd = open_md(rel);

	assert_int_equal(maildir_read_quota(fd, has, &q, &n), MAILDIR_OK);
	close(fd);
	return q;
}

/* Message limit on the quota line of maildir rel (0: none). */
static unsigned long long
count_of(const char *rel)
{
	unsigned long long q, n;
	bool	has;
	int	fd = open_md(rel);

	assert_int_equal(maildir_read_quota(fd, &has, &q, &n), MAILDIR_OK);
	close(fd);
	return n;
}

static void
test_usage(void **state)
{
	struct maildir_usage u;
	bool	has;
	char   *before;
	char	big[MAILDIRSIZE_MAX + 100];

	(void)state;
	make_maildir("u");
	sized_file("u/cur/1,S=700:2,", 1);

	/* trusted file: no walk */
	write_file("u/maildirsize", "1000S\n500 3\n100 1\n", 18);
	u = usage_of("u", 1000);
	assert_false(u.recalculated);
	assert_int_equal(u.bytes, 600);
	assert_int_equal(u.count, 4);
	assert_true(u.file.quota_valid);
	assert_int_equal(quota_of("u", &has), 1000);
	assert_true(has);

	/* over quota, fresh: trusted; older than 15 minutes: recalculated */
	write_file("u/maildirsize", "1000S\n5000 3\n", 13);
	before = strdup(slurp("u/maildirsize"));
	u = usage_of("u", 1000);
	assert_false(u.recalculated);
	assert_int_equal(u.bytes, 5000);
	age("u/maildirsize", 16 * 60);
	u = usage_of("u", 1000);
	assert_true(u.recalculated);
	assert_int_equal(u.bytes, 700);
	/* ...but not when it is not over the quota given */
	u = usage_of("u", 10000);
	assert_false(u.recalculated);
	assert_string_equal(slurp("u/maildirsize"), before);	/* never written */
	free(before);

	/* at or over its message limit: the same 15 minutes (the walk counts 1 file) */
	write_file("u/maildirsize", "0S,5C\n500 5\n", 12);
	u = usage_of("u", 0);
	assert_false(u.recalculated);
	assert_int_equal(u.count, 5);
	assert_int_equal(u.file.quota_count, 5);
	age("u/maildirsize", 16 * 60);
	u = usage_of("u", 0);
	assert_true(u.recalculated);
	assert_int_equal(u.count, 1);
	assert_int_equal(u.file.quota_count, 5);	/* the limit still counts */
	write_file("u/maildirsize", "0S,5C\n500 4\n", 12);
	age("u/maildirsize", 16 * 60);
	assert_false(usage_of("u", 0).recalculated);
	assert_int_equal(count_of("u"), 5);
	/* a malformed quota line sets no limit, not half of one */
	write_file("u/maildirsize", "0S,5C,7Q\n500 4\n", 15);
	assert_false(usage_of("u", 0).file.quota_valid);
	assert_int_equal(usage_of("u", 0).file.quota_count, 0);
	assert_int_equal(count_of("u"), 0);

	/* malformed, negative total, no newline, empty, binary: walk */
	write_file("u/maildirsize", "1000S\n100 1\n-500 -2\n", 20);
	assert_true(usage_of("u", 1000).recalculated);
	write_file("u/maildirsize", "1000S\n100 1", 11);
	assert_true(usage_of("u", 1000).recalculated);
	assert_int_equal(quota_of("u", &has), 1000);	/* the first line still counts */
	write_file("u/maildirsize", "", 0);
	u = usage_of("u", 1000);
	assert_true(u.recalculated);
	assert_int_equal(u.bytes, 700);
	quota_of("u", &has);
	assert_true(has);	/* an empty quota line: no limits */
	write_file("u/maildirsize", "\x01\x02\x00\xff\n\x80", 6);
	assert_true(usage_of("u", 1000).recalculated);
	quota_of("u", &has);
	assert_false(has);
	write_file("u/maildirsize", "1000S\n99999999999999999999 1\n", 29);
	assert_true(usage_of("u", 1000).recalculated);
	write_file("u/maildirsize", "99999999999999999999S\n1 1\n", 26);
	quota_of("u", &has);
	assert_false(has);
	write_file("u/maildirsize", "-5S\n1 1\n", 8);
	quota_of("u", &has);
	assert_false(has);

	/* 5120 bytes or more: walk, quota from the first line */
	memset(big, ' ', sizeof(big));
	memcpy(big, "2000S\n", 6);
	for (size_t i = 6; i + 4 <= sizeof(big); i += 4)
		memcpy(big + i, "1 1\n", 4);
	write_file("u/maildirsize", big, sizeof(big) - sizeof(big) % 4);
	u = usage_of("u", 2000);
	assert_true(u.recalculated);
	assert_int_equal(u.bytes, 700);
	assert_int_equal(quota_of("u", &has), 2000);
	/* 1 MiB */
	sized_file("u/maildirsize", 1 << 20);
	assert_true(usage_of("u", 2000).recalculated);

	/* a directory, a FIFO, a symlink named maildirsize: walk, never hang */
	unlink(path("u/maildirsize"));
	mkdirs("u/maildirsize");
	assert_true(usage_of("u", 1000).recalculated);
	quota_of("u", &has);
	assert_false(has);
	rmdir(path("u/maildirsize"));
	assert_int_equal(mkfifo(path("u/maildirsize"), 0600), 0);
	assert_true(usage_of("u", 1000).recalculated);
	quota_of("u", &has);
	assert_false(has);
	unlink(path("u/maildirsize"));
	write_file("other-maildirsize", "1S\n1 1\n", 7);
	assert_int_equal(symlink(path("other-maildirsize"), path("u/maildirsize")), 0);
	u = usage_of("u", 1000);
	assert_true(u.recalculated);
	assert_false(u.file.quota_valid);
	quota_of("u", &has);
	assert_false(has);
	unlink(path("u/maildirsize"));

	/* missing: walk; no quota */
	u = usage_of("u", 1000);
	assert_true(u.recalculated);
	assert_int_equal(u.bytes, 700);
	quota_of("u", &has);
	assert_false(has);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rows),
		cmocka_unit_test(test_parse_huge),
		cmocka_unit_test(test_name_size),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_walk_bounds),
		cmocka_unit_test(test_usage),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
