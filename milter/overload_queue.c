/*
 * overload_queue.c - how many messages wait in the MTA's queue directory,
 * counted within bounds (overload_queue.h).
 *
 * The scan reads directories with openat/readdir and never follows a
 * symbolic link; it stops at limits->max_messages, at limits->max_entries
 * directory entries (Sendmail keeps a df file beside each qf), or after
 * limits->budget_ms, and a scan cut short by entries or time reads as
 * reaching the bound: a queue too big to count in time is a deep queue.
 *
 * Thread-safety: keeps no state; each call owns its struct scan.
 */
#include "overload_queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

/* Postfix's hash_queue_depth is 1 by default; deeper trees are unusual. */
#define SCAN_MAX_DEPTH		8
/* The clock is read once per this many directory entries. */
#define SCAN_CLOCK_EVERY	64

enum scan_layout {
	LAYOUT_POSTFIX,			/* every file, hashed subdirectories */
	LAYOUT_SENDMAIL_ROOT,		/* qf* files, qf/ and q* group directories */
	LAYOUT_SENDMAIL_GROUP,		/* qf* files and qf/ */
	LAYOUT_SENDMAIL_QF,		/* qf* files only */
};

struct scan {
	const struct overload_scan_limits *limits;
	struct overload_count *out;
	uint64_t deadline_ms;		/* clock_ms(); with limits->budget_ms only */
	bool	stop;			/* a bound was hit, or an error */
};

/* Record the first error of the scan: "PATH: REASON". */
static void
scan_fail(struct scan *sc, const char *path, int err)
{
	char	buf[128];

	if (sc->stop)
		return;
	/*
	 * A long path is cut, which is fine for a log line; using the result
	 * tells -Wformat-truncation that the cut is expected.
	 */
	if (snprintf(sc->out->error, sizeof(sc->out->error), "%s: %s", path,
		     strerror_r(err, buf, sizeof(buf))) < 0)
		sc->out->error[0] = '\0';
	sc->out->status = OVERLOAD_COUNT_ERROR;
	sc->stop = true;
}

/* A limit other than the message count was hit: the queue reads as the bound. */
static void
scan_saturate(struct scan *sc)
{
	sc->out->status = OVERLOAD_COUNT_BOUND;
	if (sc->out->messages < sc->limits->max_messages)
		sc->out->messages = sc->limits->max_messages;
	sc->stop = true;
}

/* True once the deadline has passed. */
static bool
scan_late(const struct scan *sc)
{
	return sc->limits->budget_ms != 0 && clock_ms() >= sc->deadline_ms;
}

/* Count one more directory entry; false when the scan must stop. */
static bool
scan_entry(struct scan *sc)
{
	sc->out->entries++;
	if (sc->out->entries > sc->limits->max_entries ||
	    (sc->out->entries % SCAN_CLOCK_EVERY == 0 && scan_late(sc))) {
		scan_saturate(sc);
		return false;
	}
	return true;
}

/* Count one message; false when the bound is reached. */
static bool
scan_message(struct scan *sc)
{
	if (++sc->out->messages >= sc->limits->max_messages) {
		sc->out->status = OVERLOAD_COUNT_BOUND;
		sc->stop = true;
		return false;
	}
	return true;
}

/* 1 for a directory, 0 for anything else, -1 when the entry vanished. */
static int
entry_kind(DIR *dir, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	return S_ISDIR(st.st_mode) ? 1 : 0;
}

static void scan_fd(struct scan *sc, int fd, const char *path, enum scan_layout layout, int depth);

/* Scan subdirectory name of dir (never through a symbolic link). */
static void
scan_subdir(struct scan *sc, DIR *dir, const char *path, const char *name,
	    enum scan_layout layout, int depth)
{
	char	sub[PATH_MAX];
	int	fd;

	if (depth >= SCAN_MAX_DEPTH)
		return;
	snprintf(sub, sizeof(sub), "%s/%s", path, name);
	fd = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* Gone since readdir (a race with the MTA) is not an error. */
		if (errno != ENOENT)
			scan_fail(sc, sub, errno);
		return;
	}
	scan_fd(sc, fd, sub, layout, depth + 1);
}

/* What a directory entry is to the layout being scanned. */
static void
scan_one(struct scan *sc, DIR *dir, const char *path, const struct dirent *de,
	 enum scan_layout layout, int depth)
{
	const char *name = de->d_name;
	int	kind = entry_kind(dir, de);
	bool	qf = name[0] == 'q' && name[1] == 'f';

	if (kind < 0)
		return;
	switch (layout) {
	case LAYOUT_POSTFIX:
		if (kind == 1)
			scan_subdir(sc, dir, path, name, LAYOUT_POSTFIX, depth);
		else
			scan_message(sc);
		break;
	case LAYOUT_SENDMAIL_ROOT:
	case LAYOUT_SENDMAIL_GROUP:
		if (kind == 0) {
			if (qf)
				scan_message(sc);
		} else if (strcmp(name, "qf") == 0) {
			scan_subdir(sc, dir, path, name, LAYOUT_SENDMAIL_QF, depth);
		} else if (layout == LAYOUT_SENDMAIL_ROOT && name[0] == 'q') {
			scan_subdir(sc, dir, path, name, LAYOUT_SENDMAIL_GROUP, depth);
		}
		break;
	case LAYOUT_SENDMAIL_QF:
		if (kind == 0 && qf)
			scan_message(sc);
		break;
	}
}

/* Scan the open directory fd (closed here). */
static void
scan_fd(struct scan *sc, int fd, const char *path, enum scan_layout layout, int depth)
{
	DIR    *dir = fdopendir(fd);
	struct dirent *de;

	if (dir == NULL) {
		scan_fail(sc, path, errno);
		close(fd);
		return;
	}
	while (!sc->stop) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0)
				scan_fail(sc, path, errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!scan_entry(sc))
			break;
		scan_one(sc, dir, path, de, layout, depth);
	}
	closedir(dir);
}

/* Postfix: incoming, active and maildrop; a missing one is empty. */
static void
scan_postfix(struct scan *sc, int root, const char *dir)
{
	static const char *const queues[] = {"incoming", "active", "maildrop"};
	char	path[PATH_MAX];
	int	found = 0;

	for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]) && !sc->stop; i++) {
		int	fd = openat(root, queues[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		snprintf(path, sizeof(path), "%s/%s", dir, queues[i]);
		if (fd < 0) {
			if (errno != ENOENT)
				scan_fail(sc, path, errno);
			continue;
		}
		found++;
		scan_fd(sc, fd, path, LAYOUT_POSTFIX, 1);
	}
	if (found == 0 && !sc->stop) {
		snprintf(sc->out->error, sizeof(sc->out->error),
			 "%s: not a Postfix queue directory (no incoming, active or maildrop)", dir);
		sc->out->status = OVERLOAD_COUNT_ERROR;
	}
}

void
overload_count_queue(const char *dir, enum queue_format format,
		     const struct overload_scan_limits *limits, struct overload_count *out)
{
	struct scan sc = {.limits = limits, .out = out};
	int	root;

	memset(out, 0, sizeof(*out));
	if (limits->max_messages == 0) {
		out->status = OVERLOAD_COUNT_BOUND;
		return;
	}
	if (limits->budget_ms > 0)
		sc.deadline_ms = clock_ms() + limits->budget_ms;
	/* The queue directory itself may be a symbolic link (/var/spool/...). */
	if ((root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		scan_fail(&sc, dir, errno);
		return;
	}
	if (format == QUEUE_FORMAT_POSTFIX) {
		scan_postfix(&sc, root, dir);
		close(root);
	} else {
		scan_fd(&sc, root, dir, LAYOUT_SENDMAIL_ROOT, 0);
	}
}
