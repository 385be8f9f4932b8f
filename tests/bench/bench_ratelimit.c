/*
 * bench_ratelimit.c - what rate limiting costs: counter operations per
 * second against one memcached, memcached round trips per counted event,
 * and the latency check_ratelimit adds to an RCPT with no limits, with the
 * in-process store and with memcached.  Not a test: run by
 * tests/bench/ratelimit_bench.sh, which starts the memcached.
 *
 *   bench_ratelimit HOST:PORT [SECONDS] [THREADS]
 *
 * Round trips are memcached's own count (see server_commands()), so they
 * include anything the client library adds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check_ratelimit.h"
#include "checks.h"
#include "policy.h"
#include "config.h"
#include "counter_store.h"
#include "ratelimit.h"
#include "session.h"

/* The rate-limit check's state in session s. */
static struct ratelimit_state *
rl(struct session *s)
{
	return policy_check_state(s, &check_ratelimit);
}

static const char *server;
static double seconds = 3;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Requests memcached served, by its own count: gets, increments and
 * decrements of existing keys, and items stored.  An increment that
 * creates its key counts in none of memcached's incr statistics, only in
 * total_items; so does an increment whose result grows by a digit (9 to
 * 10), which makes this an upper bound (by a few per cent at most).
 * With adds (count = "distinct"), every add, stored or not, is counted
 * (cmd_set) instead of total_items, which an add that stores would count
 * twice: an increment that creates its key (once per key and window) is
 * then missed.
 */
static unsigned long long
server_commands(bool adds)
{
	char host[256], buf[16384];
	const char *colon = strrchr(server, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	unsigned long long total = 0;
	size_t got = 0;
	int fd;

	snprintf(host, sizeof(host), "%.*s", (int)(colon - server), server);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, host, &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, "stats\r\n", 7) != 7) {
		perror("stats");
		exit(1);
	}
	while (got < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "END\r\n"))
			break;
	}
	close(fd);
	buf[got] = '\0';
	const char *const names[] = {
	    "cmd_get", "incr_misses", "incr_hits", "decr_misses", "decr_hits",
	    adds ? "cmd_set" : "total_items",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char pat[64];
		const char *p;

		snprintf(pat, sizeof(pat), "STAT %s ", names[i]);
		if ((p = strstr(buf, pat)) != NULL)
			total += strtoull(p + strlen(pat), NULL, 10);
	}
	return total;
}

/* ---- counter operations per second ------------------------------------------ */

struct worker {
	struct counter_store *cs;
	int id;
	bool hot; /* all threads on one key, or each on its own keys */
	atomic_bool *stop;
	unsigned long ops, errors;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char key[64];
	uint64_t v;
	unsigned long i = 0;

	while (!atomic_load(w->stop)) {
		int n = w->hot ? snprintf(key, sizeof(key), "bench:hot")
			       : snprintf(key, sizeof(key), "bench:%d:%lu", w->id, i % 10000);

		if (counter_store_incr(w->cs, key, (size_t)n, 1, 600, &v) == STORE_OK)
			w->ops++;
		else
			w->errors++;
		i++;
	}
	return NULL;
}

static void
bench_ops(const char *label, struct counter_store *cs, int threads, bool hot)
{
	struct worker w[64];
	pthread_t t[64];
	atomic_bool stop = false;
	unsigned long ops = 0, errors = 0;
	double start = now_s(), took;

	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){cs, i, hot, &stop, 0, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	while (now_s() - start < seconds)
		usleep(10000);
	atomic_store(&stop, true);
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		ops += w[i].ops;
		errors += w[i].errors;
	}
	took = now_s() - start;
	printf("%-44s %2d thread%s %10.0f incr/s  (%lu errors)\n", label, threads,
	       threads == 1 ? " " : "s", (double)ops / took, errors);
}

/* ---- round trips and latency through check_ratelimit ------------------------------- */

static struct config *
load_config(const char *servers_line, const char *rules)
{
	char path[] = "/tmp/bench_ratelimit.XXXXXX", text[2048];
	int fd = mkstemp(path);
	struct config *cfg;

	snprintf(text, sizeof(text), "trusted_networks = [ ];\n%s\nratelimit: { %s };\n",
		 servers_line, rules);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		exit(1);
	close(fd);
	cfg = config_load(path, NULL, NULL);
	unlink(path);
	if (cfg == NULL) {
		fprintf(stderr, "bad benchmark configuration\n");
		exit(1);
	}
	for (int i = 0; i < 1000000; i++)
		config_hold(cfg); /* one per session below, never freed */
	return cfg;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * events RCPTs through check_ratelimit: one transaction per `per_tx`
 * recipients, sender fixed (hot) or new each transaction (cold), the
 * recipient the same or new each time (new_rcpt).  Prints latency per
 * RCPT and, with memcached, round trips per counted event (adds: with
 * count = "distinct", see server_commands()).
 */
static void
bench_rcpt(const char *label, struct config *cfg, int events, int per_tx, bool hot,
	   bool new_rcpt, bool remote, bool adds)
{
	double *lat = calloc((size_t)events, sizeof(double)), sum = 0;
	unsigned long long before = remote ? server_commands(adds) : 0, after;
	char rcpt[128];
	struct session *s = NULL;
	char sender[128];
	int refused = 0;
	static int run;

	run++;
	for (int i = 0; i < events; i++) {
		struct verdict v;
		double t;

		if (i % per_tx == 0) {
			if (s != NULL) {
				check_ratelimit.end(s, rl(s), true);
				session_close(s);
			}
			s = policy_session_open(cfg);
			ipaddr_parse("192.0.2.1", &s->addr);
			snprintf(sender, sizeof(sender), "<bench-%d-%d-%d@example.net>",
				 (int)getpid(), run, hot ? 0 : i / per_tx);
			field_set(&s->tx.sender, sender);
			s->tx.active = true;
		}
		snprintf(rcpt, sizeof(rcpt), "<rcpt-%d-%d-%d@example.org>", (int)getpid(), run,
			 new_rcpt ? i : 0);
		field_set(&s->tx.rcpt, rcpt);
		memset(&v, 0, sizeof(v));
		t = now_s();
		check_ratelimit.run(s, rl(s), STAGE_RCPT, &v);
		lat[i] = (now_s() - t) * 1e6;
		sum += lat[i];
		refused += v.kind == VERDICT_REFUSE || v.kind == VERDICT_ERROR;
	}
	check_ratelimit.end(s, rl(s), true);
	session_close(s);
	after = remote ? server_commands(adds) : 0;
	qsort(lat, (size_t)events, sizeof(double), cmp_double);
	printf("%-44s mean %7.1f us  p50 %7.1f us  p99 %7.1f us", label, sum / events,
	       lat[events / 2], lat[events * 99 / 100]);
	if (remote)
		printf("  round trips/event %.3f", (double)(after - before) / events);
	printf("%s\n", refused ? "  (some refused!)" : "");
	free(lat);
}

int
main(int argc, char **argv)
{
	char err[256], servers_line[512];
	struct string_list list;
	struct counter_store *mc, *mem;
	/*
	 * 0: rate limits off, 1: in-process store, 2 and 3: memcached, 1 and 2
	 * windows; 4 and 5: count = "distinct" recipients in process and in
	 * memcached.
	 */
	struct config *cfgs[6];
	static const struct {
		const char *label;
		int	config;		/* index in cfgs */
		int	per_tx;		/* recipients per transaction */
		bool	hot;		/* one sender for the whole run */
		bool	new_rcpt;	/* a new recipient each RCPT */
	} runs[] = {
		{ "no rate limits", 0, 20, true, false },
		{ "in-process store, 1 window", 1, 20, true, false },
		{ "memcached, 1 window, hot sender", 2, 20, true, false },
		{ "memcached, 1 window, new sender per message", 2, 20, false, false },
		{ "memcached, 1 window, new sender per RCPT", 2, 1, false, false },
		{ "memcached, 2 windows, hot sender", 3, 20, true, false },
		{ "memcached, 2 windows, new sender per message", 3, 20, false, false },
		{ "in-process, distinct, repeated recipient", 4, 20, true, false },
		{ "in-process, distinct, new recipient per RCPT", 4, 20, true, true },
		{ "memcached, distinct, repeated recipient", 5, 20, true, false },
		{ "memcached, distinct, new recipient per RCPT", 5, 20, true, true },
	};
	int	current = 0;	/* configuration 0 needs no start */
	int threads = 4;
	const char *one = "rules = ( { name = \"r\"; key = [ \"sender\" ]; count = \"recipients\"; "
			  "limits = [ \"1000000000/1h\" ]; } );";
	const char *two = "rules = ( { name = \"r\"; key = [ \"sender\" ]; count = \"recipients\"; "
			  "limits = [ \"1000000000/1m\", \"1000000000/1d\" ]; } );";
	const char *distinct = "rules = ( { name = \"d\"; key = [ \"client_ip\" ]; count = \"distinct\"; "
			       "distinct = \"recipient\"; limits = [ \"1000000000/1h\" ]; } );";

	if (argc < 2) {
		fprintf(stderr, "usage: bench_ratelimit HOST:PORT [SECONDS] [THREADS]\n");
		return 2;
	}
	server = argv[1];
	if (argc > 2)
		seconds = atof(argv[2]);
	if (argc > 3)
		threads = atoi(argv[3]);
	if (threads < 1 || threads > 64)
		threads = 4;
	list.items = (char **)&argv[1];
	list.count = 1;

	printf("# counter operations (create-or-increment), %.0f s each\n", seconds);
	if ((mc = counter_store_memcached_create(&list, 200, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	mem = counter_store_memory_create(1000000, NULL);
	bench_ops("memcached, distinct keys", mc, 1, false);
	bench_ops("memcached, distinct keys", mc, threads, false);
	bench_ops("memcached, one hot key", mc, threads, true);
	bench_ops("in-process store, distinct keys", mem, 1, false);
	bench_ops("in-process store, distinct keys", mem, threads, false);
	counter_store_destroy(mc);
	counter_store_destroy(mem);

	printf("# check_ratelimit at RCPT, one thread (latency it adds per RCPT)\n");
	cfgs[0] = load_config("", "enabled = false;");
	cfgs[1] = load_config("", one);
	snprintf(servers_line, sizeof(servers_line), "memcached: { servers = [ \"%s\" ]; };",
		 server);
	cfgs[2] = load_config(servers_line, one);
	cfgs[3] = load_config(servers_line, two);
	cfgs[4] = load_config("", distinct);
	cfgs[5] = load_config(servers_line, distinct);
	/* Runs of one configuration follow each other: each is started once. */
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		if (runs[i].config != current) {
			if (current != 0)
				ratelimit_stop();
			current = runs[i].config;
			if (!ratelimit_start(cfgs[current]))
				return 1;
		}
		bench_rcpt(runs[i].label, cfgs[current], 20000, runs[i].per_tx, runs[i].hot,
			   runs[i].new_rcpt, current == 2 || current == 3 || current == 5,
			   current >= 4);
	}
	if (current != 0)
		ratelimit_stop();
	return 0;
}
