/*
 * overload_queue.h - count the messages waiting in an MTA's queue
 * directory, for the overload sampler (overload.h), within bounds in
 * messages, directory entries and time, so that a huge queue reads as "at
 * least the bound" instead of holding the sampler.
 *
 * Thread-safety: overload_count_queue() keeps no state of its own and may
 * run on any thread; it only reads the file system.
 */
#ifndef MXGATE_OVERLOAD_QUEUE_H
#define MXGATE_OVERLOAD_QUEUE_H

#include "config.h"

#define OVERLOAD_TEXT_MAX	512

/* How far a queue scan may go. */
struct overload_scan_limits {
	unsigned long max_messages;	/* stop once this many are counted */
	unsigned long max_entries;	/* directory entries read, all kinds */
	unsigned budget_ms;		/* wall-clock time; 0 = none */
};

enum overload_count_status {
	OVERLOAD_COUNT_OK,		/* messages is exact */
	OVERLOAD_COUNT_BOUND,		/* a limit was hit: at least messages */
	OVERLOAD_COUNT_ERROR,		/* error says why; messages is meaningless */
};

struct overload_count {
	enum overload_count_status status;
	unsigned long messages;
	unsigned long entries;		/* directory entries read */
	char	error[OVERLOAD_TEXT_MAX];
};

/*
 * Count the messages waiting in the queue directory dir: for Postfix the
 * files under incoming/, active/ and maildrop/ (hashed subdirectories
 * included; a missing one is empty, all three missing is an error); for
 * Sendmail the qf* files of dir, of dir/qf/ and of q* queue group
 * directories (and their qf/).  Symbolic links are never followed.  With
 * the BOUND status, messages is at least limits->max_messages or what was
 * counted when entries or time ran out, whichever is more.
 */
void	overload_count_queue(const char *dir, enum queue_format format,
			     const struct overload_scan_limits *limits,
			     struct overload_count *out);

#endif
