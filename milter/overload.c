/*
 * overload.c - the overload sampler: flag file, queue depth and load
 * average, hysteresis, and the verdict published in one atomic word.
 *
 * The sampler thread owns the settings it samples with and the state
 * machine; a reload hands it a new settings copy through `pending` (under
 * the lock, which is never held while sampling) and wakes it.  Sessions
 * read only `overload_word`.  The queue depth comes from
 * overload_count_queue() (overload_queue.c), bounded at queue_high + 1
 * messages (enough to apply both marks, since low <= high), at four times
 * as many directory entries, and by a time budget.
 *
 * Thread-safety: see overload.h.
 */
#include "overload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* The sampler's scan budget: at most this, and at most half the interval. */
#define SCAN_BUDGET_MS		1000
#define LOADAVG_READ_MAX	256

static const char *const signal_names[OVERLOAD_NSIGNALS] = {
	"flag file", "queue depth", "load average",
};

/* ---- parsing and hysteresis ----------------------------------------- */

/* An ASCII digit, whatever the locale. */
static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool
overload_parse_loadavg(const char *text, size_t len, double *out)
{
	size_t	i = 0, int_digits = 0, frac_digits = 0;
	unsigned long whole = 0, frac = 0, scale = 1;

	while (i < len && (text[i] == ' ' || text[i] == '\t'))
		i++;
	/* 9 digits each side: no real load average comes close, and nothing overflows. */
	for (; i < len && is_digit(text[i]); i++, int_digits++) {
		if (int_digits == 9)
			return false;
		whole = whole * 10 + (unsigned long)(text[i] - '0');
	}
	if (int_digits == 0)
		return false;
	if (i < len && text[i] == '.') {
		for (i++; i < len && is_digit(text[i]); i++, frac_digits++) {
			if (frac_digits == 9)
				return false;
			frac = frac * 10 + (unsigned long)(text[i] - '0');
			scale *= 10;
		}
		if (frac_digits == 0)
			return false;
	}
	if (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\n')
		return false;
	*out = (double)whole + (double)frac / (double)scale;
	return true;
}

bool
overload_hysteresis(bool was_over, double value, double high, double low)
{
	if (!(high > 0))
		return false;
	return was_over ? value > low : value >= high;
}

/* Format into a fixed buffer; a long path is cut, which is fine for a log line. */
static void __attribute__((format(printf, 3, 4)))
text_set(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* The text of errno value err. */
static const char *
error_text(int err, char *buf, size_t size)
{
	return strerror_r(err, buf, size);
}

/* ---- settings and one sample ---------------------------------------- */

struct overload_settings *
overload_settings_new(const struct config *cfg)
{
	struct overload_settings *set = calloc(1, sizeof(*set));

	if (set == NULL)
		return NULL;
	set->enabled = cfg->overload.enabled;
	set->flag_file = strdup(cfg->overload.flag_file);
	set->queue_directory = strdup(cfg->overload.queue_directory);
	set->loadavg_file = strdup(cfg->overload.loadavg_file);
	set->queue_format = cfg->overload.queue_format;
	set->queue_high = cfg->overload.queue_high;
	set->queue_low = cfg->overload.queue_low;
	set->load_high = cfg->overload.load_high;
	set->load_low = cfg->overload.load_low;
	set->sample_interval = cfg->overload.sample_interval ? cfg->overload.sample_interval : 1;
	if (set->flag_file == NULL || set->queue_directory == NULL || set->loadavg_file == NULL) {
		overload_settings_free(set);
		return NULL;
	}
	return set;
}

/* The three paths are the only allocations besides set itself. */
void
overload_settings_free(struct overload_settings *set)
{
	if (set != NULL) {
		free(set->flag_file);
		free(set->queue_directory);
		free(set->loadavg_file);
	}
	free(set);
}

void
overload_scan_limits_for(const struct overload_settings *set, struct overload_scan_limits *limits)
{
	unsigned budget = set->sample_interval * 500;

	limits->max_messages = set->queue_high + 1;
	limits->max_entries = 4 * limits->max_messages + 4096;
	limits->budget_ms = budget < SCAN_BUDGET_MS ? budget : SCAN_BUDGET_MS;
}

/* Mark r as an error: "WHAT PATH: REASON". */
static void
reading_fail(struct overload_reading *r, const char *what, const char *path, const char *reason)
{
	r->status = OVERLOAD_READING_ERROR;
	snprintf(r->error, sizeof(r->error), "%s %s: %s", what, path, reason);
}

/* The flag file: present is 1, absent 0; a directory is a problem. */
static void
sample_flag(const char *path, struct overload_reading *r)
{
	struct stat st;
	char	buf[128];

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			reading_fail(r, "flag file", path, "is a directory");
			return;
		}
		r->status = OVERLOAD_READING_OK;
		r->value = 1;
	} else if (errno == ENOENT || errno == ENOTDIR) {
		r->status = OVERLOAD_READING_OK;
		r->value = 0;
	} else {
		reading_fail(r, "flag file", path, error_text(errno, buf, sizeof(buf)));
	}
}

/* The queue depth, bounded by overload_scan_limits_for(). */
static void
sample_queue(const struct overload_settings *set, struct overload_reading *r)
{
	struct overload_scan_limits limits;
	struct overload_count count;

	overload_scan_limits_for(set, &limits);
	overload_count_queue(set->queue_directory, set->queue_format, &limits, &count);
	if (count.status == OVERLOAD_COUNT_ERROR) {
		r->status = OVERLOAD_READING_ERROR;
		text_set(r->error, sizeof(r->error), "queue directory %s", count.error);
		return;
	}
	r->status = OVERLOAD_READING_OK;
	r->value = (double)count.messages;
	r->at_least = count.status == OVERLOAD_COUNT_BOUND;
}

/* The 1-minute load average: the first field of a regular file. */
static void
sample_load(const char *path, struct overload_reading *r)
{
	char	text[LOADAVG_READ_MAX], buf[128];
	size_t	len = 0;
	struct stat st;
	ssize_t n;
	int	fd;

	/* O_NONBLOCK: a FIFO at that path must not hang the sampler. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0) {
		reading_fail(r, "loadavg file", path, error_text(errno, buf, sizeof(buf)));
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		reading_fail(r, "loadavg file", path, "not a regular file");
		return;
	}
	while (len < sizeof(text)) {
		n = read(fd, text + len, sizeof(text) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			reading_fail(r, "loadavg file", path, error_text(errno, buf, sizeof(buf)));
			return;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!overload_parse_loadavg(text, len, &r->value)) {
		reading_fail(r, "loadavg file", path, "no load average at its start");
		return;
	}
	r->status = OVERLOAD_READING_OK;
}

void
overload_sample(const struct overload_settings *set,
		struct overload_reading readings[OVERLOAD_NSIGNALS])
{
	memset(readings, 0, sizeof(*readings) * OVERLOAD_NSIGNALS);
	if (!set->enabled)
		return;
	if (set->flag_file[0] != '\0')
		sample_flag(set->flag_file, &readings[0]);
	if (set->queue_high > 0 && set->queue_directory[0] != '\0')
		sample_queue(set, &readings[1]);
	if (set->load_high > 0 && set->loadavg_file[0] != '\0')
		sample_load(set->loadavg_file, &readings[2]);
}

/* ---- the state machine ---------------------------------------------- */

void
overload_sample_line(char *line, size_t size, unsigned long n, const struct overload_settings *set,
		     const struct overload_reading readings[OVERLOAD_NSIGNALS], unsigned word)
{
	size_t	used;
	const char *sep = "";

	snprintf(line, size, "overload: sample %lu: ", n);
	if (!set->enabled) {
		used = strlen(line);
		snprintf(line + used, size - used, "overload check disabled");
		return;
	}
	for (int i = 0; i < OVERLOAD_NSIGNALS; i++) {
		const struct overload_reading *r = &readings[i];

		used = strlen(line);
		if (r->status == OVERLOAD_READING_OFF)
			continue;
		if (r->status == OVERLOAD_READING_ERROR)
			snprintf(line + used, size - used, "%s%s unreadable", sep, signal_names[i]);
		else if (i == 0)
			snprintf(line + used, size - used, "%sflag file %s", sep,
				 r->value != 0 ? "present" : "absent");
		else if (i == 1)
			snprintf(line + used, size - used, "%squeue depth %.0f%s", sep, r->value,
				 r->at_least ? " or more" : "");
		else
			snprintf(line + used, size - used, "%sload average %.2f", sep, r->value);
		sep = ", ";
	}
	used = strlen(line);
	snprintf(line + used, size - used, "%s%s", sep[0] != '\0' ? "; " : "nothing watched; ",
		 word == 0 ? "not overloaded" : "overloaded (");
	for (int i = 0, first = 1; word != 0 && i < OVERLOAD_NSIGNALS; i++) {
		if ((word & (1u << i)) == 0)
			continue;
		used = strlen(line);
		snprintf(line + used, size - used, "%s%s", first ? "" : ", ", signal_names[i]);
		first = 0;
	}
	if (word != 0) {
		used = strlen(line);
		snprintf(line + used, size - used, ")");
	}
}

/* Append "SIGNAL VALUE, why" for signal i to line, as it stands at entering or leaving. */
static void
describe(char *line, size_t size, const struct overload_settings *set, int i,
	 const struct overload_reading *r, bool entering)
{
	size_t	used = strlen(line);
	char   *p = line + used;
	size_t	left = size - used;
	const char *sep = used > 0 && line[used - 1] != ' ' ? ", " : "";

	if (!set->enabled) {
		snprintf(p, left, "%soverload check disabled", sep);
		return;
	}
	if (r->status == OVERLOAD_READING_OFF) {
		snprintf(p, left, "%s%s no longer watched", sep, signal_names[i]);
		return;
	}
	if (r->status == OVERLOAD_READING_ERROR) {
		snprintf(p, left, "%s%s cannot be read", sep, signal_names[i]);
		return;
	}
	switch (i) {
	case 0:
		snprintf(p, left, "%sflag file %s %s", sep, set->flag_file,
			 r->value != 0 ? "exists" : "is gone");
		break;
	case 1:
		if (entering)
			snprintf(p, left, "%squeue depth %.0f%s reached queue_high %lu", sep, r->value,
				 r->at_least ? " or more" : "", set->queue_high);
		else
			snprintf(p, left, "%squeue depth %.0f fell to queue_low %lu", sep, r->value,
				 set->queue_low);
		break;
	default:
		if (entering)
			snprintf(p, left, "%sload average %.2f reached load_high %g", sep, r->value,
				 set->load_high);
		else
			snprintf(p, left, "%sload average %.2f fell to load_low %g", sep, r->value,
				 set->load_low);
		break;
	}
}

/* Log a problem of signal i once, and its end once. */
static void
track_problem(struct overload_machine *m, int i, const struct overload_reading *r,
	      overload_emit_fn *emit, void *arg)
{
	char	line[OVERLOAD_TEXT_MAX * 2];

	if (r->status == OVERLOAD_READING_ERROR) {
		if (strcmp(m->problem[i], r->error) == 0)
			return;
		snprintf(line, sizeof(line), "overload: %s; %s treated as not overloaded",
			 r->error, signal_names[i]);
		emit(arg, LOG_LEVEL_WARNING, line);
		snprintf(m->problem[i], sizeof(m->problem[i]), "%s", r->error);
	} else if (m->problem[i][0] != '\0') {
		snprintf(line, sizeof(line), "overload: %s %s", signal_names[i],
			 r->status == OVERLOAD_READING_OK ? "readable again" : "no longer watched");
		emit(arg, LOG_LEVEL_INFO, line);
		m->problem[i][0] = '\0';
	}
}

unsigned
overload_machine_step(struct overload_machine *m, const struct overload_settings *set,
		      const struct overload_reading readings[OVERLOAD_NSIGNALS],
		      overload_emit_fn *emit, void *arg)
{
	unsigned word = 0, changed;
	char	line[OVERLOAD_TEXT_MAX * 2];

	for (int i = 0; i < OVERLOAD_NSIGNALS; i++) {
		const struct overload_reading *r = &readings[i];
		bool	was = (m->word & (1u << i)) != 0, now;

		track_problem(m, i, r, emit, arg);
		if (!set->enabled || r->status != OVERLOAD_READING_OK)
			now = false;
		else if (i == 0)
			now = r->value != 0;
		else if (i == 1)
			now = overload_hysteresis(was, r->value, (double)set->queue_high,
						  (double)set->queue_low);
		else
			now = overload_hysteresis(was, r->value, set->load_high, set->load_low);
		if (now)
			word |= 1u << i;
	}
	changed = word ^ m->word;
	if (changed != 0) {
		bool	entering = m->word == 0, leaving = word == 0;

		/* Entering names what went over; leaving, what cleared last. */
		snprintf(line, sizeof(line), "overload: %s: ",
			 entering ? "entering overload state" :
			 leaving ? "leaving overload state" : "still overloaded");
		for (int i = 0; i < OVERLOAD_NSIGNALS; i++)
			if (changed & (1u << i))
				describe(line, sizeof(line), set, i, &readings[i],
					 (word & (1u << i)) != 0);
		emit(arg, entering || leaving ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG, line);
	}
	m->word = word;
	return word;
}

/* ---- the sampler thread --------------------------------------------- */

static atomic_uint overload_word;

/* The last sample's readings, for status and metrics (published by the sampler). */
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static struct overload_reading last[OVERLOAD_NSIGNALS];

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* CLOCK_MONOTONIC */
	pthread_t thread;
	bool	running, stopping;
	struct overload_settings *pending;	/* from reload; under lock */
	/* The sampler's own (before the thread starts: overload_start's). */
	struct overload_settings *current;
	struct overload_machine machine;
	unsigned long samples;		/* taken since start, for the debug line */
} sampler = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool
overload_active(void)
{
	return atomic_load_explicit(&overload_word, memory_order_relaxed) != 0;
}

unsigned
overload_signals(void)
{
	return atomic_load_explicit(&overload_word, memory_order_relaxed);
}

void
overload_last_readings(struct overload_reading out[OVERLOAD_NSIGNALS])
{
	pthread_mutex_lock(&last_lock);
	memcpy(out, last, sizeof(last));
	pthread_mutex_unlock(&last_lock);
}

/* The state machine's lines go to the log. */
static void
emit_log(void *arg, enum log_level level, const char *line)
{
	(void)arg;
	log_msg(level, "%s", line);
}

/* Sample every signal and publish the verdict. */
static void
sample_and_publish(void)
{
	struct overload_reading readings[OVERLOAD_NSIGNALS];
	unsigned word;

	overload_sample(sampler.current, readings);
	word = overload_machine_step(&sampler.machine, sampler.current, readings, emit_log, NULL);
	atomic_store_explicit(&overload_word, word, memory_order_relaxed);
	pthread_mutex_lock(&last_lock);
	memcpy(last, readings, sizeof(last));
	pthread_mutex_unlock(&last_lock);
	sampler.samples++;
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char	line[OVERLOAD_TEXT_MAX * 2];

		overload_sample_line(line, sizeof(line), sampler.samples, sampler.current,
				     readings, word);
		log_debug("%s", line);
	}
}

/* Sleep sample_interval seconds (or until reload or stop), then sample. */
static void *
sampler_main(void *arg)
{
	struct timespec until;

	(void)arg;
	pthread_mutex_lock(&sampler.lock);
	for (;;) {
		until = clock_after_ms((uint64_t)sampler.current->sample_interval * 1000);
		while (!sampler.stopping && sampler.pending == NULL)
			if (pthread_cond_timedwait(&sampler.wake, &sampler.lock, &until) == ETIMEDOUT)
				break;
		if (sampler.stopping)
			break;
		if (sampler.pending != NULL) {
			overload_settings_free(sampler.current);
			sampler.current = sampler.pending;
			sampler.pending = NULL;
			/* New paths: say again what is wrong with them. */
			memset(sampler.machine.problem, 0, sizeof(sampler.machine.problem));
		}
		pthread_mutex_unlock(&sampler.lock);
		sample_and_publish();
		pthread_mutex_lock(&sampler.lock);
	}
	pthread_mutex_unlock(&sampler.lock);
	return NULL;
}

bool
overload_start(const struct config *cfg)
{
	pthread_condattr_t attr;
	sigset_t all, old;
	int	rc;

	if (sampler.running)
		return true;
	if ((sampler.current = overload_settings_new(cfg)) == NULL) {
		log_error("overload: out of memory");
		return false;
	}
	memset(&sampler.machine, 0, sizeof(sampler.machine));
	sampler.stopping = false;
	sample_and_publish();

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sampler.wake, &attr);
	pthread_condattr_destroy(&attr);
	/* No signal is ever delivered to the sampler (SIGTERM is for the stop thread). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&sampler.thread, NULL, sampler_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("overload: cannot start the sampler thread: %s", strerror(rc));
		pthread_cond_destroy(&sampler.wake);
		overload_settings_free(sampler.current);
		sampler.current = NULL;
		atomic_store(&overload_word, 0);
		return false;
	}
	sampler.running = true;
	return true;
}

void
overload_reload(const struct config *cfg)
{
	struct overload_settings *set;

	if (!sampler.running)
		return;
	if ((set = overload_settings_new(cfg)) == NULL) {
		log_error("overload: out of memory: keeping the running marks");
		return;
	}
	pthread_mutex_lock(&sampler.lock);
	overload_settings_free(sampler.pending);
	sampler.pending = set;
	pthread_cond_signal(&sampler.wake);
	pthread_mutex_unlock(&sampler.lock);
}

void
overload_stop(void)
{
	if (!sampler.running)
		return;
	pthread_mutex_lock(&sampler.lock);
	sampler.stopping = true;
	pthread_cond_signal(&sampler.wake);
	pthread_mutex_unlock(&sampler.lock);
	pthread_join(sampler.thread, NULL);
	pthread_cond_destroy(&sampler.wake);
	overload_settings_free(sampler.pending);
	overload_settings_free(sampler.current);
	sampler.pending = sampler.current = NULL;
	sampler.running = false;
	atomic_store(&overload_word, 0);
}
