/*
 * quota_bench.c - what a quota verdict costs with the maildir source.
 *
 * Builds a maildir tree in a temporary directory (N mailboxes with a
 * maildirsize each, a tenth of them full) and measures, single-threaded
 * and through quota_check() as the milter calls it:
 *   - cold cache: every recipient distinct and the cache flushed, so each
 *     verdict resolves the address, reads the maildir's quota line and its
 *     maildirsize;
 *   - warm cache: the same recipients again within cache_ttl;
 *   - the recalculation walk over one maildir of W messages (default
 *     10,000), with ",S=" sizes in the names and without (one fstatat per
 *     message), dentries warm (dropping the kernel's caches would disturb
 *     the machine).
 * Not a test: it prints numbers.  Usage: quota_bench [-n N] [-r ROUNDS]
 * [-w MESSAGES] [-k] (keep the temporary directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "log.h"
#include "maildirsize.h"
#include "quota.h"
#include "quota_cache.h"
#include "../unit/fixture.h"

static char root[256];

/* mkdir, dying on failure other than EEXIST. */
static void
xmkdir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
}

/* Create a file of size bytes (sparse: only its size matters to stat). */
static void
xfile(const char *path, const char *text, off_t size)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || (text && write(fd, text, strlen(text)) < 0) ||
	    (size > 0 && ftruncate(fd, size) != 0)) {
		perror(path);
		exit(1);
	}
	close(fd);
}

/* A maildir at path with cur/ new/ tmp/. */
static void
make_maildir(const char *path)
{
	char	sub[1024];

	xmkdir(path);
	snprintf(sub, sizeof(sub), "%s/cur", path);
	xmkdir(sub);
	snprintf(sub, sizeof(sub), "%s/new", path);
	xmkdir(sub);
	snprintf(sub, sizeof(sub), "%s/tmp", path);
	xmkdir(sub);
}

/* CLOCK_MONOTONIC in milliseconds, in double: clock_ms() is too coarse to time one pass. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One pass of n verdicts; returns elapsed ms, counts full ones. */
static double
pass(const struct config *cfg, struct address *addrs, int n, int *full)
{
	struct quota_result res;
	double	t0 = now_ms();

	*full = 0;
	for (int i = 0; i < n; i++)
		*full += quota_check(cfg, &addrs[i], 1000, &res) == QUOTA_FULL;
	return now_ms() - t0;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Time the walk of dir over rounds runs: prints median, min, max. */
static void
bench_walk(const char *dir, const char *label, int rounds, unsigned long expect)
{
	double *t = calloc((size_t)rounds, sizeof(*t));
	struct maildir_count c = {0};
	int	fd;

	if (maildir_open(root, dir, &fd) != MAILDIR_OK) {
		fprintf(stderr, "cannot open %s\n", dir);
		exit(1);
	}
	for (int r = 0; r < rounds; r++) {
		double	t0 = now_ms();

		if (maildir_walk(fd, NULL, &c) != MAILDIR_OK || c.incomplete || c.files != expect) {
			fprintf(stderr, "walk of %s failed (%llu files)\n", dir, c.files);
			exit(1);
		}
		t[r] = now_ms() - t0;
	}
	close(fd);
	qsort(t, (size_t)rounds, sizeof(*t), cmp_double);
	printf("walk, %lu messages, %s: median %.2f ms, min %.2f, max %.2f over %d runs "
	       "(%llu bytes)\n", expect, label, t[rounds / 2], t[0], t[rounds - 1], rounds, c.bytes);
	free(t);
}

int
main(int argc, char **argv)
{
	int	n = 2000, rounds = 5, walk_msgs = 10000, ch, full = 0;
	bool	keep = false;
	struct config *cfg;
	struct address *addrs;
	struct quota_stats s0, s1;
	char	path[1024], name[256];
	double	cold = 0, warm = 0;

	while ((ch = getopt(argc, argv, "n:r:w:k")) != -1) {
		switch (ch) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'w':
			walk_msgs = atoi(optarg);
			break;
		case 'k':
			keep = true;
			break;
		default:
			fprintf(stderr, "usage: quota_bench [-n MAILBOXES] [-r ROUNDS] "
				"[-w MESSAGES] [-k]\n");
			return 1;
		}
	}
	if (n < 1 || rounds < 1 || walk_msgs < 1)
		return 1;
	if (!fixture_mkdtemp(root, sizeof(root), "quota_bench")) {
		perror("mkdtemp");
		return 1;
	}
	log_open("quota_bench", 0, false);
	log_set_level(LOG_LEVEL_ERROR);

	/* N mailboxes in example.org; every tenth is full. */
	snprintf(path, sizeof(path), "%s/example.org", root);
	xmkdir(path);
	addrs = calloc((size_t)n, sizeof(*addrs));
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/example.org/user%d", root, i);
		make_maildir(path);
		snprintf(path, sizeof(path), "%s/example.org/user%d/maildirsize", root, i);
		xfile(path, i % 10 == 0 ? "1000000S,1000C\n999500 10\n12 1\n"
		      : "1000000S,1000C\n500000 10\n12 1\n", 0);
		snprintf(name, sizeof(name), "<User%d+tag@Example.org>", i);
		if (address_parse(name, strlen(name), "+", &addrs[i]) != ADDRESS_OK)
			return 1;
	}

	cfg = config_load(NULL, NULL, NULL);
	free(cfg->quota.maildir_root);
	cfg->quota.maildir_root = strdup(root);
	cfg->quota.cache_ttl = 3600;
	config_install(cfg);
	cfg = config_current();
	if (!quota_start(cfg))
		return 1;

	for (int r = 0; r < rounds; r++) {
		quota_cache_flush();
		quota_stats(&s0);
		cold += pass(cfg, addrs, n, &full);
		quota_stats(&s1);
		warm += pass(cfg, addrs, n, &full);
	}
	printf("quota_bench: maildir source, %d mailboxes (%d full), %d rounds, 1 thread\n",
	       n, full, rounds);
	printf("cold cache: %.0f verdicts/s (%.1f us each; %.1f source calls per verdict)\n",
	       n * rounds / (cold / 1e3), cold * 1e3 / (n * rounds),
	       (double)(s1.source_calls - s0.source_calls) / n);
	printf("warm cache: %.0f verdicts/s (%.2f us each)\n", n * rounds / (warm / 1e3),
	       warm * 1e3 / (n * rounds));
	quota_stop();

	/* One maildir of walk_msgs messages, 90 % in cur/, some in folders. */
	for (int variant = 0; variant < 2; variant++) {
		snprintf(path, sizeof(path), "%s/walk%d", root, variant);
		make_maildir(path);
		snprintf(path, sizeof(path), "%s/walk%d/.Sent", root, variant);
		make_maildir(path);
		for (int i = 0; i < walk_msgs; i++) {
			const char *sub = i % 10 == 0 ? "new" : i % 10 == 1 ? ".Sent/cur" : "cur";

			if (variant == 0)
				snprintf(path, sizeof(path), "%s/walk0/%s/17000%05d.M%dP1.mx,S=%d,W=%d:2,S",
					 root, sub, i, i, 2000 + i % 5000, 2050 + i % 5000);
			else
				snprintf(path, sizeof(path), "%s/walk1/%s/17000%05d.M%dP1.mx:2,S", root,
					 sub, i, i);
			xfile(path, NULL, variant == 0 ? 0 : 2000 + i % 5000);
		}
	}
	snprintf(path, sizeof(path), "%s/walk0", root);
	bench_walk(path, "sizes from ,S= names", rounds * 4, (unsigned long)walk_msgs);
	snprintf(path, sizeof(path), "%s/walk1", root);
	bench_walk(path, "sizes from fstatat", rounds * 4, (unsigned long)walk_msgs);

	config_release(cfg);
	config_shutdown();
	free(addrs);
	if (keep)
		printf("kept %s\n", root);
	else
		fixture_rmtree(root);
	return 0;
}
