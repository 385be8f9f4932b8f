/*
 * bench_overload.c - what one overload sample costs with a deep queue.
 *
 * usage: bench_overload QUEUE_DIR postfix|sendmail QUEUE_HIGH [ROUNDS]
 *
 * Times, over ROUNDS rounds (default 20), three things on the queue
 * directory as it is: the bounded scan the sampler does (its own limits
 * for QUEUE_HIGH: queue_high + 1 messages, 4x entries, 500 ms budget at
 * sample_interval = 1), a full scan that counts every message with no
 * bound, and a whole sample (flag file, bounded queue, /proc/loadavg).
 * Prints the median and minimum wall time and the median CPU time of
 * each, with what was counted.  The page cache is warm after the first
 * round (the first round is reported apart).  Not a test: run by
 * tests/bench/overload_sample.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "overload.h"

#define MAX_ROUNDS	1000

static double
now_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of n values (sorts them). */
static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct job {
	const char *name;
	const struct overload_settings *set;
	const struct overload_scan_limits *limits;	/* NULL: a whole sample */
};

/* Run one job once; fills what was counted. */
static void
run(const struct job *job, unsigned long *messages, unsigned long *entries, int *status)
{
	if (job->limits != NULL) {
		struct overload_count c;

		overload_count_queue(job->set->queue_directory, job->set->queue_format,
				     job->limits, &c);
		*messages = c.messages;
		*entries = c.entries;
		*status = (int)c.status;
	} else {
		struct overload_reading r[OVERLOAD_NSIGNALS];

		overload_sample(job->set, r);
		*messages = (unsigned long)r[1].value;
		*entries = 0;
		*status = r[1].status == OVERLOAD_READING_OK ? (r[1].at_least ? 1 : 0) : 2;
	}
}

static void
bench(const struct job *job, int rounds)
{
	static const char *const status_names[] = {"exact", "at least", "error"};
	double	wall[MAX_ROUNDS] = {0}, cpu[MAX_ROUNDS] = {0}, first = 0, min;
	unsigned long messages = 0, entries = 0;
	int	status = 0;

	for (int i = 0; i <= rounds; i++) {
		double	w0 = now_us(CLOCK_MONOTONIC), c0 = now_us(CLOCK_PROCESS_CPUTIME_ID);

		run(job, &messages, &entries, &status);
		if (i == 0) {
			first = now_us(CLOCK_MONOTONIC) - w0;
			continue;
		}
		wall[i - 1] = now_us(CLOCK_MONOTONIC) - w0;
		cpu[i - 1] = now_us(CLOCK_PROCESS_CPUTIME_ID) - c0;
	}
	min = wall[0];
	for (int i = 1; i < rounds; i++)
		if (wall[i] < min)
			min = wall[i];
	printf("%-22s messages %s %lu, entries read %lu: median %.0f us (min %.0f, cpu %.0f), first round %.0f us\n",
	       job->name, status_names[status], messages, entries, median(wall, rounds), min,
	       median(cpu, rounds), first);
}

int
main(int argc, char **argv)
{
	struct overload_settings set = {0};
	struct overload_scan_limits bounded, full = {(unsigned long)-1, (unsigned long)-1, 0};
	char	flag[] = "/nonexistent/mxgate-bench.flag", load[] = "/proc/loadavg";
	int	rounds = argc > 4 ? atoi(argv[4]) : 20;

	if (argc < 4 || rounds < 1 || rounds > MAX_ROUNDS ||
	    (strcmp(argv[2], "postfix") != 0 && strcmp(argv[2], "sendmail") != 0)) {
		fprintf(stderr, "usage: bench_overload QUEUE_DIR postfix|sendmail QUEUE_HIGH [ROUNDS]\n");
		return 2;
	}
	set.enabled = true;
	set.queue_directory = argv[1];
	set.queue_format = strcmp(argv[2], "postfix") == 0 ? QUEUE_FORMAT_POSTFIX : QUEUE_FORMAT_SENDMAIL;
	set.queue_high = strtoul(argv[3], NULL, 10);
	set.queue_low = set.queue_high / 2;
	set.flag_file = flag;
	set.loadavg_file = load;
	set.load_high = 1e6;
	set.sample_interval = 1;
	overload_scan_limits_for(&set, &bounded);

	const struct job jobs[] = {
		{"bounded scan", &set, &bounded},
		{"full scan (no bound)", &set, &full},
		{"whole sample", &set, NULL},
	};
	printf("queue %s (%s), queue_high %lu, %d rounds\n", argv[1], argv[2], set.queue_high, rounds);
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++)
		bench(&jobs[i], rounds);
	return 0;
}
