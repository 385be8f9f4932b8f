/*
 * reply.h - build and validate every SMTP reply mxgate gives.
 *
 * Contract: a struct reply always holds something libmilter accepts: a
 * 4xx/5xx code, a DSN of the same class, and text with no control byte,
 * short enough that "CODE DSN TEXT" with every '%' doubled stays within
 * libmilter's 980 bytes, however long the client's input was.  The text
 * is kept as shown to the client; reply_escaped() doubles '%' for
 * milter_setreply() (libmilter's smfi_setreply() wants the same).  Pure, thread-safe.
 */
#ifndef MXGATE_REPLY_H
#define MXGATE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define REPLY_MAX	980		/* libmilter's MAXREPLYLEN */

struct reply {
	char	code[4];		/* "504" */
	char	dsn[12];		/* "5.5.2" */
	char	text[REPLY_MAX];	/* "<name>: Helo command rejected: ..." */
};

/*
 * Set "<ITEM>: MESSAGE" (or MESSAGE alone when item is NULL).  The item is
 * client data of item_len bytes: control bytes become '?', and it is cut
 * (ending in "...") when the whole would not fit.  message is ours (a
 * literal or a checked configuration value) and is sanitised the same way.
 * Returns false, leaving r empty, for a code/DSN pair that is not valid.
 */
bool	reply_set(struct reply *r, unsigned code, const char *dsn,
		  const char *item, size_t item_len, const char *message);

/* True for a 4xx/5xx code with a DSN "C.S.D" of the same class. */
bool	reply_code_valid(unsigned code, const char *dsn);

/* The text with '%' doubled, as Sendmail and smfi_setreply() want it. */
void	reply_escaped(const struct reply *r, char *buf, size_t size);

/* Copy len bytes of client data into buf as printable text ('?' for control bytes). */
void	reply_printable(char *buf, size_t size, const char *src, size_t len);

#endif
