/*
 * overload.h - is the server overloaded?  A background sampler watches the
 * flag file, the MTA's queue depth and the load average (mxgate.conf(5),
 * "THE OVERLOAD CHECK") and publishes its verdict in one atomic word.
 *
 * Contract: overload_start() takes a first sample before it returns, so the
 * verdict is right from the first connection; overload_active() is a single
 * atomic load (no lock, no file system access) and is all the SMTP path
 * ever calls.  A signal that reaches its _high mark makes the server
 * overloaded until it falls to its _low mark (hysteresis); the flag file
 * counts while it exists.  A signal that cannot be read (missing or
 * unreadable path, garbage, a flag path that is a directory) is logged once
 * and counts as not overloaded.  The queue scan is bounded in messages,
 * directory entries and time, so a huge queue reads as "at least the bound".
 *
 * Log lines (stderr with -f, and syslog):
 *   warning: overload: entering overload state: SIGNAL VALUE ...
 *   overload: leaving overload state: SIGNAL VALUE ...
 *   warning: overload: PROBLEM; SIGNAL treated as not overloaded   (once)
 *   overload: SIGNAL readable again
 *
 * Thread-safety: start and stop from the main thread, reload from the
 * reload thread; overload_active() from anywhere.  The pure functions
 * below (parsing, hysteresis, the state machine) and the queue count
 * (overload_queue.h) keep no state of their own.
 */
#ifndef MXGATE_OVERLOAD_H
#define MXGATE_OVERLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"
#include "overload_queue.h"

/* The signals, as bits of the published word; readings[i] below is bit 1 << i. */
enum overload_signal {
	OVERLOAD_FLAG = 1 << 0,
	OVERLOAD_QUEUE = 1 << 1,
	OVERLOAD_LOAD = 1 << 2,
};

#define OVERLOAD_NSIGNALS	3

/* Start the sampler for cfg (one sample first); false if the thread cannot start. */
bool	overload_start(const struct config *cfg);

/* Hand new marks and paths to the running sampler, which samples at once. */
void	overload_reload(const struct config *cfg);

/* Stop and join the sampler; the server reads as not overloaded afterwards. */
void	overload_stop(void);

/* True while the server is overloaded: one atomic load. */
bool	overload_active(void);

/* The enum overload_signal bits now set (for logs and tests). */
unsigned overload_signals(void);

/*
 * Parse the first field of a loadavg file ("0.52 0.58 0.59 1/467 12345"):
 * decimal digits with an optional fraction, then white space or the end.
 * Anything else (empty, sign, exponent, "nan", a huge number) is false.
 */
bool	overload_parse_loadavg(const char *text, size_t len, double *out);

/*
 * One hysteresis step: with high <= 0 the signal is off (false); otherwise
 * a signal not yet over goes over at value >= high, and one that is over
 * stays over while value > low.
 */
bool	overload_hysteresis(bool was_over, double value, double high, double low);

/* What one sample saw of one signal. */
enum overload_reading_status {
	OVERLOAD_READING_OFF,		/* not configured */
	OVERLOAD_READING_OK,
	OVERLOAD_READING_ERROR,		/* error says why */
};

struct overload_reading {
	enum overload_reading_status status;
	double	value;			/* flag 1/0, queue messages, load average */
	bool	at_least;		/* queue: the scan stopped at a bound */
	char	error[OVERLOAD_TEXT_MAX];
};

/*
 * The paths and marks a sample is taken with are a struct
 * overload_settings (config.h): a copy of cfg->overload.
 */

/* A heap copy of cfg's overload settings; NULL when out of memory. */
struct overload_settings *overload_settings_new(const struct config *cfg);

void	overload_settings_free(struct overload_settings *set);

/* The scan limits the sampler uses for set (see overload.c). */
void	overload_scan_limits_for(const struct overload_settings *set,
				 struct overload_scan_limits *limits);

/* Read every signal that set enables (touches the file system). */
void	overload_sample(const struct overload_settings *set,
			struct overload_reading readings[OVERLOAD_NSIGNALS]);

/* The readings of the last sample (all OFF before the first; not for the SMTP path: a lock). */
void	overload_last_readings(struct overload_reading out[OVERLOAD_NSIGNALS]);

/*
 * The debug line of sample number n (log_level = "debug"): "overload:
 * sample N: flag file absent, queue depth 19, load average 0.10; not
 * overloaded", each signal set watches as read (or "unreadable"), then
 * the state word gives: "not overloaded" or "overloaded (queue depth)".
 */
void	overload_sample_line(char *line, size_t size, unsigned long n,
			     const struct overload_settings *set,
			     const struct overload_reading readings[OVERLOAD_NSIGNALS],
			     unsigned word);

/* Where the state machine's log lines go. */
typedef void overload_emit_fn(void *arg, enum log_level level, const char *line);

/* The state carried from one sample to the next. */
struct overload_machine {
	unsigned word;			/* enum overload_signal bits now set */
	char	problem[OVERLOAD_NSIGNALS][OVERLOAD_TEXT_MAX];	/* last logged, "" if none */
};

/*
 * Advance m by one sample: apply hysteresis with set's marks, emit the
 * entering/leaving line when the overall state changes and each new
 * problem once (and its end), and return the new word.
 */
unsigned overload_machine_step(struct overload_machine *m, const struct overload_settings *set,
			       const struct overload_reading readings[OVERLOAD_NSIGNALS],
			       overload_emit_fn *emit, void *arg);

#endif
