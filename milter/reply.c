/*
 * reply.c - build and validate every SMTP reply mxgate gives.
 *
 * The length budget is computed on the escaped form, because that is what
 * libmilter measures: strlen(code) + strlen(dsn) + strlen(text) + 3 bytes
 * of separators and NUL must stay within REPLY_MAX.  Bytes >= 0x80 are kept
 * (Postfix passes a valid UTF-8 HELO through and echoes it in its own
 * replies); bytes below 0x20 and DEL become '?', as Postfix's printable().
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

/* A byte that may stand in a reply as it is. */
static bool
reply_byte_ok(unsigned char ch)
{
	return ch >= 0x20 && ch != 0x7f;
}

bool
reply_code_valid(unsigned code, const char *dsn)
{
	size_t	len;
	int	dots = 0;

	if (code < 400 || code > 599 || dsn == NULL)
		return false;
	len = strlen(dsn);
	if (len < 5 || len > 11 || dsn[0] != (char)('0' + code / 100) || dsn[1] != '.')
		return false;
	for (size_t i = 1; i < len; i++) {
		if (dsn[i] == '.') {
			if (dsn[i - 1] == '.' || i + 1 == len)
				return false;
			dots++;
		} else if (dsn[i] < '0' || dsn[i] > '9')
			return false;
	}
	return dots == 2;
}

/*
 * Append up to len bytes of src to buf at *used, sanitised, while the
 * escaped size stays within *budget.  Returns false if it had to stop.
 */
static bool
append(char *buf, size_t *used, size_t *budget, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];
		size_t	cost = ch == '%' ? 2 : 1;

		if (cost > *budget)
			return false;
		buf[(*used)++] = reply_byte_ok(ch) ? (char)ch : '?';
		*budget -= cost;
	}
	return true;
}

/* What len bytes of src cost once '%' is doubled. */
static size_t
escaped_cost(const char *src, size_t len)
{
	size_t	cost = len;

	for (size_t i = 0; i < len; i++)
		cost += src[i] == '%';
	return cost;
}

bool
reply_set(struct reply *r, unsigned code, const char *dsn,
	  const char *item, size_t item_len, const char *message)
{
	size_t	used = 0, budget, mlen = strlen(message), msg_cost;

	memset(r, 0, sizeof(*r));
	if (!reply_code_valid(code, dsn))
		return false;
	snprintf(r->code, sizeof(r->code), "%u", code);
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	/* "CODE DSN TEXT\0" */
	budget = REPLY_MAX - strlen(r->code) - strlen(r->dsn) - 3;
	msg_cost = escaped_cost(message, mlen);
	/* Room for "<", ">: " and "..." besides the message. */
	if (msg_cost + (item ? 7 : 0) > budget) {
		memset(r, 0, sizeof(*r));
		return false;
	}
	if (item != NULL) {
		size_t	item_budget = budget - msg_cost - 4;

		r->text[used++] = '<';
		if (escaped_cost(item, item_len) <= item_budget)
			append(r->text, &used, &item_budget, item, item_len);
		else {
			item_budget -= 3;
			append(r->text, &used, &item_budget, item, item_len);
			memcpy(r->text + used, "...", 3);
			used += 3;
		}
		memcpy(r->text + used, ">: ", 3);
		used += 3;
	}
	append(r->text, &used, &msg_cost, message, mlen);
	r->text[used] = '\0';
	return true;
}

void
reply_escaped(const struct reply *r, char *buf, size_t size)
{
	size_t	o = 0;

	if (size == 0)
		return;
	for (const char *p = r->text; *p && o + 2 < size; p++) {
		buf[o++] = *p;
		if (*p == '%')
			buf[o++] = '%';
	}
	buf[o] = '\0';
}

void
reply_printable(char *buf, size_t size, const char *src, size_t len)
{
	size_t	o = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < len && o + 1 < size; i++)
		buf[o++] = reply_byte_ok((unsigned char)src[i]) ? src[i] : '?';
	buf[o] = '\0';
}
