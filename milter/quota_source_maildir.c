/*
 * quota_source_maildir.c - the embedded quota source: no server, no
 * aliases; a mailbox is a maildir at maildir_root + maildir_template, and
 * its quota is the first line of its maildirsize (bytes and messages).
 *
 * Contract: an address whose values would make the path leave
 * maildir_root ('/', ".", "..", control bytes) has no mailbox here
 * (SOURCE_NOT_FOUND), and so has an address whose maildir does not exist;
 * a maildir that cannot be read (permissions, a symlink below
 * maildir_root) is SOURCE_ERROR.  A maildir without a usable maildirsize
 * quota line is a mailbox without limit (quota 0).  Thread-safety: the
 * state is immutable after open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "maildirsize.h"
#include "quota_source.h"

struct maildir_state {
	char   *root;			/* maildir_root, trailing '/' removed */
	char   *tmpl;			/* maildir_template */
};

/* True when value may stand in a path component: no '/', no control byte. */
static bool
value_safe(const char *value)
{
	if (*value == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* True when no component of the relative path rel is empty-dangerous: ".", "..". */
static bool
components_safe(const char *rel)
{
	while (*rel != '\0') {
		size_t	n = strcspn(rel, "/");

		if ((n == 1 && rel[0] == '.') || (n == 2 && rel[0] == '.' && rel[1] == '.'))
			return false;
		rel += n;
		rel += strspn(rel, "/");
	}
	return true;
}

/* Append s to buf at *used; false when it does not fit. */
static bool
append(char *buf, size_t size, size_t *used, const char *s, size_t n)
{
	if (n >= size - *used)
		return false;
	memcpy(buf + *used, s, n);
	*used += n;
	buf[*used] = '\0';
	return true;
}

bool
quota_source_maildir_path(const char *root, const char *tmpl, const char *address, char *buf,
			  size_t size)
{
	const char *at = strrchr(address, '@');
	char	local[512];
	const char *domain;
	size_t	used = 0, rlen = strlen(root), start;

	if (size == 0 || rlen == 0 || at == NULL || at == address ||
	    (size_t)(at - address) >= sizeof(local))
		return false;
	memcpy(local, address, (size_t)(at - address));
	local[at - address] = '\0';
	domain = at + 1;
	if (!value_safe(local) || !value_safe(domain) || !value_safe(address))
		return false;
	while (rlen > 1 && root[rlen - 1] == '/')
		rlen--;
	buf[0] = '\0';
	if (!append(buf, size, &used, root, rlen) ||
	    (root[rlen - 1] != '/' && !append(buf, size, &used, "/", 1)))
		return false;
	start = used;
	for (const char *p = tmpl; *p; p++) {
		const char *v;

		if (*p != '%') {
			if (!append(buf, size, &used, p, 1))
				return false;
			continue;
		}
		switch (p[1]) {
		case 'd':
			v = domain;
			break;
		case 'l':
			v = local;
			break;
		case 'u':
			v = address;
			break;
		case '%':
			v = "%";
			break;
		default:
			return false;	/* config.c refuses these; be safe anyway */
		}
		if (!append(buf, size, &used, v, strlen(v)))
			return false;
		p++;
	}
	return components_safe(buf + start);
}

/* The maildir of address, and its quota from maildirsize. */
static enum source_status
maildir_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	const struct maildir_state *st = src->state;
	enum maildir_status status;
	bool	has_quota;
	int	fd;

	memset(out, 0, sizeof(*out));
	if (address[0] == '@' ||
	    !quota_source_maildir_path(st->root, st->tmpl, address, out->maildir,
				       sizeof(out->maildir)))
		return SOURCE_NOT_FOUND;
	status = maildir_open(st->root, out->maildir, &fd);
	if (status == MAILDIR_MISSING)
		return SOURCE_NOT_FOUND;
	if (status == MAILDIR_ERROR) {
		log_warning("quota: cannot open maildir %s: %s", out->maildir,
			    errno == ELOOP ? "a symlink, not followed" : strerror(errno));
		return SOURCE_ERROR;
	}
	status = maildir_read_quota(fd, &has_quota, &out->quota, &out->quota_count);
	close(fd);
	if (status != MAILDIR_OK) {
		log_warning("quota: cannot read %s/maildirsize: %s", out->maildir,
			    strerror(errno));
		return SOURCE_ERROR;
	}
	if (!has_quota)
		out->quota = out->quota_count = 0;
	return SOURCE_OK;
}

static void
maildir_close(struct quota_source *src)
{
	struct maildir_state *st;

	if (src == NULL)
		return;
	st = src->state;
	if (st != NULL) {
		free(st->root);
		free(st->tmpl);
		free(st);
	}
	free(src);
}

static const struct quota_source_ops maildir_ops = {
	.name = "maildir",
	.alias_domain = NULL,		/* no aliases without SQL */
	.alias = NULL,
	.mailbox = maildir_mailbox,
	.close = maildir_close,
};

struct quota_source *
quota_source_maildir_open(const struct config *cfg)
{
	struct quota_source *src = calloc(1, sizeof(*src));
	struct maildir_state *st = calloc(1, sizeof(*st));

	if (src == NULL || st == NULL) {
		free(src);
		free(st);
		return NULL;
	}
	src->ops = &maildir_ops;
	src->state = st;
	st->root = strdup(cfg->quota.maildir_root);
	st->tmpl = strdup(cfg->quota.maildir_template);
	if (st->root == NULL || st->tmpl == NULL) {
		maildir_close(src);
		return NULL;
	}
	return src;
}
