/*
 * maildirsize.h - read a Maildir++ mailbox's quota and usage, never write.
 *
 * The Maildir++ "maildirsize" file holds the limits on its first line
 * ("NS,MC": bytes and messages) and one "bytes count" line per change
 * after it; usage is their sum, negative lines included.  When the file
 * is missing, malformed, 5120 bytes or more, or says over quota and is
 * older than 15 minutes (over its byte limit, or at or over its message
 * limit), usage is recalculated by walking cur/ and new/
 * of the maildir and of its .Folder subdirectories, taking sizes from
 * ",S=" in file names where present and from stat otherwise.  No symlink
 * is ever followed below the configured maildir_root, and the walk is
 * bounded in files and time (a cut walk says so).
 *
 * Contract: "missing" (no such maildir: no local mailbox) is kept apart
 * from "could not look" (permissions, a symlink, I/O).  The parser is pure
 * and takes any bytes.  Thread-safety: no shared state; every function
 * may run on any thread at once.
 */
#ifndef MXGATE_MAILDIRSIZE_H
#define MXGATE_MAILDIRSIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAILDIRSIZE_MAX		5120	/* Maildir++: this big or bigger, recalculate */
#define MAILDIRSIZE_STALE	(15 * 60)	/* seconds before an over-quota file is distrusted */

/* What a maildirsize file says. */
struct maildirsize {
	bool	quota_valid;		/* the first line parsed */
	unsigned long long quota_bytes;	/* "NS"; 0 = no byte limit */
	unsigned long long quota_count;	/* "NC"; 0 = no message limit */
	bool	usage_valid;		/* every further line parsed, sums in range */
	long long bytes, count;		/* summed usage when usage_valid */
	unsigned lines;			/* usage lines */
};

enum maildir_status {
	MAILDIR_OK,
	MAILDIR_MISSING,		/* no such maildir (or not a directory) */
	MAILDIR_ERROR,			/* could not look: errno says why */
};

/* Bounds of a recalculation walk. */
struct maildir_walk_limits {
	unsigned long max_files;	/* directory entries examined; 0 = default */
	uint64_t deadline_ms;		/* clock_ms() value (clock.h); 0 = default from now */
};

#define MAILDIR_WALK_MAX_FILES	1000000UL
#define MAILDIR_WALK_MAX_MS	2000U
#define MAILDIR_WALK_MAX_FOLDERS 10000U

/* What the walk found. */
struct maildir_count {
	unsigned long long bytes, files;
	unsigned long folders;		/* .Folder subdirectories walked */
	bool	incomplete;		/* a bound cut it short: bytes is a lower bound */
};

/* Usage of one maildir, from maildirsize or a walk. */
struct maildir_usage {
	struct maildirsize file;	/* what maildirsize said (quota_valid false if absent) */
	unsigned long long bytes, count;	/* usage, never negative */
	bool	recalculated;		/* bytes/count come from a walk */
	bool	incomplete;		/* the walk was cut: bytes is a lower bound */
};

/* Parse len bytes of maildirsize contents (any bytes; NUL and CR are malformed). */
void	maildirsize_parse(const char *data, size_t len, struct maildirsize *out);

/* Parse the first (quota) line only: "NS,MC"; false (and both 0) when malformed. */
bool	maildirsize_parse_quota(const char *line, size_t len, unsigned long long *bytes,
				unsigned long long *count);

/* The ",S=NNN" size in a message file name (before any ':'); false if absent. */
bool	maildir_name_size(const char *name, unsigned long long *size);

/*
 * Open the maildir directory path, which must lie under root: root itself
 * is the administrator's and opened as it is; every component below it is
 * opened with O_NOFOLLOW, and "." or ".." components are refused.  On
 * MAILDIR_OK *fd is an O_DIRECTORY descriptor for the caller to close; on
 * MAILDIR_ERROR errno says why (ELOOP: a symlink; EINVAL: a path that
 * leaves root).
 */
enum maildir_status maildir_open(const char *root, const char *path, int *fd);

/*
 * Read the limits on maildirsize's first line in the open maildir dirfd:
 * *bytes ("NS") and *count ("NC"), 0 where the line sets none.  A missing,
 * unreadable-as-file or malformed file gives MAILDIR_OK with *has_quota
 * false (and both 0); MAILDIR_ERROR only when it could not be read
 * (EACCES, EIO).
 */
enum maildir_status maildir_read_quota(int dirfd, bool *has_quota, unsigned long long *bytes,
				       unsigned long long *count);

/* Recalculate usage by walking dirfd's cur/, new/ and .Folder/{cur,new}/. */
enum maildir_status maildir_walk(int dirfd, const struct maildir_walk_limits *limits,
				 struct maildir_count *out);

/*
 * Usage of the open maildir dirfd: from maildirsize when it can be
 * trusted, else from a walk.  quota is the effective byte limit (0 = none;
 * used for Maildir++'s "over quota and older than 15 minutes" rule, which
 * a file at or over its own "NC" message limit meets too), now the wall
 * clock.
 */
enum maildir_status maildir_usage(int dirfd, unsigned long long quota, time_t now,
				  const struct maildir_walk_limits *limits,
				  struct maildir_usage *out);

#endif
