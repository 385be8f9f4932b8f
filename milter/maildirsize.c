/*
 * maildirsize.c - read a Maildir++ mailbox's quota and usage (see
 * maildirsize.h for the rules).
 *
 * Files are opened with O_NOFOLLOW and O_NONBLOCK (a FIFO named
 * maildirsize must not hang a worker) and must be regular; directories
 * below maildir_root are opened one component at a time with
 * O_NOFOLLOW|O_DIRECTORY, and entries are examined with fstatat(...,
 * AT_SYMLINK_NOFOLLOW), so a symlink planted in a maildir never leads the
 * walk elsewhere.  mxgate never writes a maildir: a stale maildirsize is
 * the delivery agent's to rewrite.  Thread-safety: no shared state.
 */
#include "maildirsize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

#define DIGITS_MAX	19		/* LLONG_MAX has 19 digits */

/* Parse 1..19 digits at p (bounded by end) into *value; returns the end or NULL. */
static const char *
parse_digits(const char *p, const char *end, unsigned long long *value)
{
	unsigned long long v = 0;
	const char *start = p;

	while (p < end && *p >= '0' && *p <= '9') {
		if (p - start >= DIGITS_MAX)
			return NULL;
		v = v * 10 + (unsigned)(*p - '0');
		p++;
	}
	if (p == start || v > (unsigned long long)LLONG_MAX)
		return NULL;
	*value = v;
	return p;
}

/* maildirsize_parse_quota(), leaving what it parsed before an error. */
static bool
quota_line(const char *line, size_t len, unsigned long long *bytes, unsigned long long *count)
{
	const char *p = line, *end = line + len;
	bool	seen_s = false, seen_c = false;

	*bytes = *count = 0;
	if (len == 0)
		return true;		/* an empty definition: no limits */
	for (;;) {
		unsigned long long v;

		if ((p = parse_digits(p, end, &v)) == NULL || p == end)
			return false;
		if (*p == 'S' && !seen_s) {
			seen_s = true;
			*bytes = v;
		} else if (*p == 'C' && !seen_c) {
			seen_c = true;
			*count = v;
		} else
			return false;
		if (++p == end)
			return true;
		if (*p++ != ',')
			return false;
	}
}

bool
maildirsize_parse_quota(const char *line, size_t len, unsigned long long *bytes,
			unsigned long long *count)
{
	if (quota_line(line, len, bytes, count))
		return true;
	*bytes = *count = 0;	/* a malformed line sets no limit, not half of one */
	return false;
}

/* Skip blanks (space, tab) from p. */
static const char *
skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A signed number ("-" allowed) of at most 19 digits; returns the end or NULL. */
static const char *
parse_signed(const char *p, const char *end, long long *value)
{
	bool	negative = false;
	unsigned long long v;

	if (p < end && *p == '-') {
		negative = true;
		p++;
	}
	if ((p = parse_digits(p, end, &v)) == NULL)
		return NULL;
	*value = negative ? -(long long)v : (long long)v;
	return p;
}

/* One "bytes count" line (without its newline): false when malformed. */
static bool
parse_usage_line(const char *p, const char *end, long long *bytes, long long *count)
{
	p = skip_blanks(p, end);
	if ((p = parse_signed(p, end, bytes)) == NULL)
		return false;
	if (p == end || (*p != ' ' && *p != '\t'))
		return false;
	p = skip_blanks(p, end);
	if ((p = parse_signed(p, end, count)) == NULL)
		return false;
	return skip_blanks(p, end) == end;
}

void
maildirsize_parse(const char *data, size_t len, struct maildirsize *out)
{
	const char *p = data, *end = data + len, *nl;
	long long bytes = 0, count = 0;

	memset(out, 0, sizeof(*out));
	if (memchr(data, '\0', len) != NULL || memchr(data, '\r', len) != NULL)
		return;
	if ((nl = memchr(p, '\n', len)) == NULL) {
		/* A quota line alone and no newline: limits, but no usage. */
		out->quota_valid = maildirsize_parse_quota(p, len, &out->quota_bytes,
							   &out->quota_count);
		return;
	}
	out->quota_valid = maildirsize_parse_quota(p, (size_t)(nl - p), &out->quota_bytes,
						   &out->quota_count);
	p = nl + 1;
	while (p < end) {
		long long b, c;

		/* A last line without its newline may be a write in progress. */
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return;
		if (!parse_usage_line(p, nl, &b, &c) ||
		    __builtin_add_overflow(bytes, b, &bytes) ||
		    __builtin_add_overflow(count, c, &count))
			return;
		out->lines++;
		p = nl + 1;
	}
	/* Maildir++ always has at least one usage line; a negative total is wrong. */
	if (out->lines == 0 || bytes < 0 || count < 0)
		return;
	out->usage_valid = true;
	out->bytes = bytes;
	out->count = count;
}

bool
maildir_name_size(const char *name, unsigned long long *size)
{
	const char *colon = strchr(name, ':');
	const char *end = colon ? colon : name + strlen(name);

	for (const char *p = name; p + 3 <= end; p++) {
		if (p[0] == ',' && p[1] == 'S' && p[2] == '=') {
			const char *q = parse_digits(p + 3, end, size);

			if (q != NULL && (q == end || *q == ','))
				return true;
		}
	}
	return false;
}

/* Open directory name below dirfd without following a symlink. */
static enum maildir_status
open_subdir(int dirfd, const char *name, int *fd)
{
	struct stat st;
	int	saved;

	*fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd >= 0)
		return MAILDIR_OK;
	saved = errno;
	switch (saved) {
	case ENOENT:
	case ENAMETOOLONG:
		return MAILDIR_MISSING;
	case ENOTDIR:
	case ELOOP:
		/* A symlink is refused, anything else that is no directory is absent. */
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			errno = ELOOP;
			return MAILDIR_ERROR;
		}
		return MAILDIR_MISSING;
	default:
		errno = saved;
		return MAILDIR_ERROR;
	}
}

enum maildir_status
maildir_open(const char *root, const char *path, int *fd)
{
	size_t	rlen = strlen(root);
	const char *p;
	int	dirfd;

	*fd = -1;
	while (rlen > 1 && root[rlen - 1] == '/')
		rlen--;
	if (rlen == 0 || strncmp(path, root, rlen) != 0 ||
	    (path[rlen] != '/' && path[rlen] != '\0' && !(rlen == 1 && root[0] == '/'))) {
		errno = EINVAL;
		return MAILDIR_ERROR;
	}
	if (rlen == 1 && root[0] == '/')
		dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else {
		char	rootbuf[PATH_MAX];

		if (rlen >= sizeof(rootbuf)) {
			errno = ENAMETOOLONG;
			return MAILDIR_ERROR;
		}
		memcpy(rootbuf, root, rlen);
		rootbuf[rlen] = '\0';
		dirfd = open(rootbuf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dirfd < 0)
		return errno == ENOENT ? MAILDIR_MISSING : MAILDIR_ERROR;

	for (p = path + rlen; *p != '\0';) {
		char	comp[NAME_MAX + 1];
		size_t	n;
		enum maildir_status st;
		int	next;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, "/");
		if (n > NAME_MAX) {
			close(dirfd);
			return MAILDIR_MISSING;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
			close(dirfd);
			errno = EINVAL;
			return MAILDIR_ERROR;
		}
		st = open_subdir(dirfd, comp, &next);
		if (st != MAILDIR_OK) {
			int	saved = errno;

			close(dirfd);
			errno = saved;
			return st;
		}
		close(dirfd);
		dirfd = next;
	}
	*fd = dirfd;
	return MAILDIR_OK;
}

/*
 * Read up to size bytes of dirfd's maildirsize into buf.  *len gets what
 * was read, *st the file's status.  MAILDIR_MISSING when there is no
 * usable regular file (absent, a symlink, a directory, a FIFO).
 */
static enum maildir_status
read_maildirsize(int dirfd, char *buf, size_t size, size_t *len, struct stat *st)
{
	int	fd = openat(dirfd, "maildirsize", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	size_t	got = 0;

	*len = 0;
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == ENXIO)
			return MAILDIR_MISSING;
		return MAILDIR_ERROR;
	}
	if (fstat(fd, st) != 0) {
		int	saved = errno;

		close(fd);
		errno = saved;
		return MAILDIR_ERROR;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return MAILDIR_MISSING;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int	saved = errno;

			close(fd);
			errno = saved;
			return MAILDIR_ERROR;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return MAILDIR_OK;
}

enum maildir_status
maildir_read_quota(int dirfd, bool *has_quota, unsigned long long *bytes,
		   unsigned long long *count)
{
	char	buf[MAILDIRSIZE_MAX];
	size_t	len;
	struct stat st;
	const char *nl;
	enum maildir_status status;

	*has_quota = false;
	*bytes = *count = 0;
	status = read_maildirsize(dirfd, buf, sizeof(buf), &len, &st);
	if (status != MAILDIR_OK)
		return status == MAILDIR_MISSING ? MAILDIR_OK : status;
	/* Only a complete first line counts (a longer one is malformed anyway). */
	if ((nl = memchr(buf, '\n', len)) == NULL) {
		if (len == sizeof(buf) || (size_t)st.st_size != len)
			return MAILDIR_OK;
		nl = buf + len;
	}
	if (memchr(buf, '\0', (size_t)(nl - buf)) != NULL || memchr(buf, '\r', (size_t)(nl - buf)))
		return MAILDIR_OK;
	*has_quota = maildirsize_parse_quota(buf, (size_t)(nl - buf), bytes, count);
	return MAILDIR_OK;
}

/* State of one walk. */
struct walk {
	unsigned long max_files;
	uint64_t deadline_ms;
	unsigned long seen;		/* entries examined */
	struct maildir_count *out;
};

/* True when the walk must stop (bound reached); marks the result incomplete. */
static bool
walk_exhausted(struct walk *w)
{
	if (w->out->incomplete)
		return true;
	if (w->seen >= w->max_files ||
	    ((w->seen & 255) == 0 && clock_ms() >= w->deadline_ms))
		w->out->incomplete = true;
	return w->out->incomplete;
}

/* Count the messages of one cur/ or new/ directory below folderfd. */
static enum maildir_status
walk_messages(struct walk *w, int folderfd, const char *name)
{
	struct dirent *de;
	enum maildir_status status;
	bool	read_error = false;
	DIR    *dp;
	int	fd;

	status = open_subdir(folderfd, name, &fd);
	if (status == MAILDIR_MISSING || (status == MAILDIR_ERROR && errno == ELOOP))
		return MAILDIR_OK;	/* no new/ (or a symlink, not followed): nothing there */
	if (status != MAILDIR_OK)
		return status;
	if ((dp = fdopendir(fd)) == NULL) {
		int	saved = errno;

		close(fd);
		errno = saved;
		return MAILDIR_ERROR;
	}
	while (!walk_exhausted(w)) {
		unsigned long long size;
		struct stat st;

		errno = 0;
		if ((de = readdir(dp)) == NULL) {
			read_error = errno != 0;
			break;
		}
		w->seen++;
		if (de->d_name[0] == '.')
			continue;	/* ".", "..", and dot files are no messages */
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;	/* symlinks, directories, devices */
		if (!maildir_name_size(de->d_name, &size)) {
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode))
				continue;	/* moved or removed meanwhile, or no file */
			size = (unsigned long long)st.st_size;
		}
		if (__builtin_add_overflow(w->out->bytes, size, &w->out->bytes))
			w->out->bytes = ~0ULL;
		w->out->files++;
	}
	closedir(dp);
	if (read_error)
		errno = EIO;
	return read_error ? MAILDIR_ERROR : MAILDIR_OK;
}

/* Count cur/ and new/ of one folder (the maildir itself or a .Folder). */
static enum maildir_status
walk_folder(struct walk *w, int folderfd)
{
	enum maildir_status status = walk_messages(w, folderfd, "cur");

	if (status == MAILDIR_OK)
		status = walk_messages(w, folderfd, "new");
	return status;
}

/* Walk every ".Folder" directly below the maildir. */
static enum maildir_status
walk_subfolders(struct walk *w, int dirfd)
{
	enum maildir_status status = MAILDIR_OK;
	struct dirent *de;
	DIR    *dp;
	int	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return MAILDIR_ERROR;
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return MAILDIR_ERROR;
	}
	while (status == MAILDIR_OK && !walk_exhausted(w) && (de = readdir(dp)) != NULL) {
		int	sub;

		w->seen++;
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (w->out->folders >= MAILDIR_WALK_MAX_FOLDERS) {
			w->out->incomplete = true;
			break;
		}
		status = open_subdir(dirfd, de->d_name, &sub);
		if (status == MAILDIR_MISSING) {
			status = MAILDIR_OK;
			continue;
		}
		if (status != MAILDIR_OK) {
			/* A symlinked folder is skipped, not followed; other errors count. */
			if (errno == ELOOP)
				status = MAILDIR_OK;
			continue;
		}
		w->out->folders++;
		status = walk_folder(w, sub);
		close(sub);
	}
	closedir(dp);
	return status;
}

enum maildir_status
maildir_walk(int dirfd, const struct maildir_walk_limits *limits, struct maildir_count *out)
{
	struct walk w;
	enum maildir_status status;

	memset(out, 0, sizeof(*out));
	w.out = out;
	w.seen = 0;
	w.max_files = limits && limits->max_files ? limits->max_files : MAILDIR_WALK_MAX_FILES;
	w.deadline_ms = limits && limits->deadline_ms ? limits->deadline_ms
	    : clock_ms() + MAILDIR_WALK_MAX_MS;
	status = walk_folder(&w, dirfd);
	if (status == MAILDIR_OK && !out->incomplete)
		status = walk_subfolders(&w, dirfd);
	return status;
}

enum maildir_status
maildir_usage(int dirfd, unsigned long long quota, time_t now,
	      const struct maildir_walk_limits *limits, struct maildir_usage *out)
{
	char	buf[MAILDIRSIZE_MAX];
	size_t	len = 0;
	struct stat st;
	struct maildir_count walked;
	enum maildir_status status;
	bool	trust = false;

	memset(out, 0, sizeof(*out));
	status = read_maildirsize(dirfd, buf, sizeof(buf), &len, &st);
	if (status == MAILDIR_ERROR)
		return status;
	if (status == MAILDIR_OK) {
		maildirsize_parse(buf, len, &out->file);
		trust = out->file.usage_valid && st.st_size < MAILDIRSIZE_MAX &&
		    len < MAILDIRSIZE_MAX;
		/* Over quota (or full by count) for a while: maybe mail was deleted. */
		if (trust && now - st.st_mtime > MAILDIRSIZE_STALE &&
		    ((quota > 0 && (unsigned long long)out->file.bytes > quota) ||
		     (out->file.quota_count > 0 &&
		      (unsigned long long)out->file.count >= out->file.quota_count)))
			trust = false;
	}
	if (trust) {
		out->bytes = (unsigned long long)out->file.bytes;
		out->count = (unsigned long long)out->file.count;
		return MAILDIR_OK;
	}
	status = maildir_walk(dirfd, limits, &walked);
	if (status != MAILDIR_OK)
		return status;
	out->bytes = walked.bytes;
	out->count = walked.files;
	out->recalculated = true;
	out->incomplete = walked.incomplete;
	return MAILDIR_OK;
}
