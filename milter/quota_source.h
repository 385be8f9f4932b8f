/*
 * quota_source.h - where quotas and aliases come from: a small table of
 * function pointers (OpenSMTPD's table_* shape), two back ends:
 *   maildir  (quota_source_maildir.c): no server; quota from maildirsize;
 *   mysql    (quota_source_mysql.c): postfixadmin tables, prepared statements.
 *
 * Contract: every lookup keeps "not found" (SOURCE_NOT_FOUND) apart from
 * "could not look" (SOURCE_ERROR); a source never chooses an SMTP reply.
 * Keys are exact: the row returned must match the key byte for byte.
 * Every call returns within the configured timeout.  Thread-safe: called
 * from any connection thread at once.
 */
#ifndef MXGATE_QUOTA_SOURCE_H
#define MXGATE_QUOTA_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum source_status {
	SOURCE_OK,
	SOURCE_NOT_FOUND,
	SOURCE_ERROR,
};

#define QUOTA_SOURCE_VALUE_MAX	4096	/* alias goto lists, maildir paths */

struct quota_mailbox {
	unsigned long long quota;	/* bytes; 0 = unlimited */
	unsigned long long quota_count;	/* messages ("NC" of maildirsize; the maildir source only); 0 = unlimited */
	char	maildir[QUOTA_SOURCE_VALUE_MAX];	/* absolute path of the Maildir++ directory */
};

struct quota_source;

/* A server of a source, for mxgatectl status. */
struct source_server {
	char	name[128];		/* "host:port", "[v6]:port" or "unix:PATH" */
	bool	breaker_open;		/* its own breaker (a source with a server list) */
};

/* alias_domain and alias may be NULL: the source has none (maildir). */
struct quota_source_ops {
	const char *name;
	/* alias_domain -> target domain ("" result = none). */
	enum source_status (*alias_domain)(struct quota_source *src, const char *domain,
					   char *target, size_t size);
	/* address (or "@domain" catch-all) -> comma-separated goto list. */
	enum source_status (*alias)(struct quota_source *src, const char *address,
				    char *goto_list, size_t size);
	/* address -> mailbox quota and maildir. */
	enum source_status (*mailbox)(struct quota_source *src, const char *address,
				      struct quota_mailbox *out);
	void	(*close)(struct quota_source *src);
	/* Its servers in order into out (at most max); NULL: no server (maildir). */
	size_t	(*servers)(struct quota_source *src, struct source_server *out, size_t max);
};

struct quota_source {
	const struct quota_source_ops *ops;
	void   *state;			/* the back end's own */
};

/* The maildir source (no server). */
struct quota_source *quota_source_maildir_open(const struct config *cfg);

/*
 * The maildir source's path for address ("local@domain", lookup form):
 * root + "/" + template with %d, %l, %u replaced.  False when a value
 * would leave root (a '/', a "." or ".." component, a control byte) or
 * the path does not fit in size.
 */
bool	quota_source_maildir_path(const char *root, const char *tmpl, const char *address,
				  char *buf, size_t size);

/* The MariaDB/MySQL source; NULL only when out of memory (connections open lazily). */
struct quota_source *quota_source_mysql_open(const struct config *cfg);

/* mysql_library_init(): once, before milter_run starts threads (quota_start calls it). */
bool	quota_source_mysql_library_init(void);

#endif
