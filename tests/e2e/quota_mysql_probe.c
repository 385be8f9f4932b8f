/*
 * quota_mysql_probe.c - drive the MariaDB quota source directly, for
 * tests/e2e/quota_mysql.sh and the benchmark.
 *
 *   quota_mysql_probe -c CONFIG
 *	reads "KIND KEY" lines on stdin (KIND: mailbox, alias, domain; KEY may
 *	use \xHH escapes) and answers each with one line:
 *	"OK|NOT_FOUND|ERROR MILLISECONDS [VALUE]", VALUE printed with \xHH
 *	escapes.  One process keeps its pooled connections across lines, as
 *	the daemon does.
 *   quota_mysql_probe -c CONFIG -b SECONDS [-t THREADS] KIND KEY...
 *	looks the keys up in a loop from THREADS threads for SECONDS and
 *	prints "lookups N seconds S per_second R errors E".
 *
 * Not a unit test: it needs the server that quota_mysql.sh starts.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "quota_source.h"

static struct quota_source *src;
static const char *bench_kind;
static char **bench_keys;
static int bench_nkeys;
static double bench_seconds;
static atomic_ulong bench_done, bench_errors;

static double
now_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
report(void *arg, const char *message)
{
	(void)arg;
	fprintf(stderr, "%s\n", message);
}

/* Decode \xHH escapes in place; the decoded length. */
static size_t
unescape(char *s)
{
	char   *in = s, *out = s;
	unsigned v;

	while (*in != '\0') {
		if (in[0] == '\\' && in[1] == 'x' && sscanf(in + 2, "%2x", &v) == 1 && v != 0) {
			*out++ = (char)v;
			in += 4;
		} else
			*out++ = *in++;
	}
	*out = '\0';
	return (size_t)(out - s);
}

/* Print s with every byte outside printable ASCII (and backslash) as \xHH. */
static void
print_escaped(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x21 || c > 0x7e || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static const char *
status_name(enum source_status st)
{
	return st == SOURCE_OK ? "OK" : st == SOURCE_NOT_FOUND ? "NOT_FOUND" : "ERROR";
}

/* One lookup of kind for key; value receives what was found. */
static enum source_status
lookup(const char *kind, const char *key, char *value, size_t size)
{
	struct quota_mailbox mb;
	enum source_status st;

	value[0] = '\0';
	if (strcmp(kind, "mailbox") == 0) {
		st = src->ops->mailbox(src, key, &mb);
		if (st == SOURCE_OK)
			snprintf(value, size, "quota=%llu maildir=%s", mb.quota, mb.maildir);
		return st;
	}
	if (strcmp(kind, "alias") == 0)
		return src->ops->alias(src, key, value, size);
	if (strcmp(kind, "domain") == 0)
		return src->ops->alias_domain(src, key, value, size);
	return SOURCE_ERROR;
}

static void *
bench_thread(void *arg)
{
	char	value[QUOTA_SOURCE_VALUE_MAX + 64];
	unsigned long n = (unsigned long)(size_t)arg;
	double	end = now_seconds() + bench_seconds;

	while (now_seconds() < end) {
		if (lookup(bench_kind, bench_keys[n++ % (unsigned long)bench_nkeys], value,
			   sizeof(value)) == SOURCE_ERROR)
			atomic_fetch_add(&bench_errors, 1);
		atomic_fetch_add(&bench_done, 1);
	}
	return NULL;
}

static int
bench(int threads)
{
	pthread_t tid[64];
	double	start = now_seconds(), secs;

	if (threads < 1 || threads > 64)
		return 2;
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, bench_thread, (void *)(size_t)i);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	secs = now_seconds() - start;
	printf("lookups %lu seconds %.2f per_second %.0f errors %lu\n",
	       atomic_load(&bench_done), secs, (double)atomic_load(&bench_done) / secs,
	       atomic_load(&bench_errors));
	return 0;
}

static int
interactive(void)
{
	char	line[8192], value[QUOTA_SOURCE_VALUE_MAX + 64];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char   *key;
		double	t0;
		enum source_status st;

		line[strcspn(line, "\n")] = '\0';
		if ((key = strchr(line, ' ')) == NULL) {
			printf("ERROR 0 usage\n");
			fflush(stdout);
			continue;
		}
		*key++ = '\0';
		unescape(key);
		t0 = now_seconds();
		st = lookup(line, key, value, sizeof(value));
		printf("%s %.0f", status_name(st), (now_seconds() - t0) * 1000);
		if (st == SOURCE_OK) {
			putchar(' ');
			print_escaped(value);
		}
		putchar('\n');
		fflush(stdout);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	struct config *cfg;
	int	ch, threads = 1, rc;

	while ((ch = getopt(argc, argv, "c:b:t:")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'b':
			bench_seconds = atof(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: quota_mysql_probe -c CONFIG "
				"[-b SECONDS [-t THREADS] KIND KEY...]\n");
			return 2;
		}
	}
	log_open("quota_mysql_probe", LOG_USER, true);
	log_set_level(LOG_LEVEL_DEBUG);
	if ((cfg = config_load(path, report, NULL)) == NULL)
		return 2;
	if (!quota_source_mysql_library_init() || (src = quota_source_mysql_open(cfg)) == NULL) {
		fprintf(stderr, "cannot open the mysql source\n");
		return 2;
	}
	if (bench_seconds > 0) {
		if (optind + 2 > argc)
			return 2;
		bench_kind = argv[optind];
		bench_keys = argv + optind + 1;
		bench_nkeys = argc - optind - 1;
		rc = bench(threads);
	} else
		rc = interactive();
	src->ops->close(src);
	config_release(cfg);
	return rc;
}
