/*
 * control_out.c - building a control command's answer (control.h).
 */
#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and a NUL; false (and overflow) when the answer is full. */
static bool
out_reserve(struct control_out *out, size_t n)
{
	size_t	cap;
	char   *p;

	if (out->overflow)
		return false;
	if (out->len + n + 1 > CONTROL_OUT_MAX) {
		out->overflow = true;
		return false;
	}
	if (out->len + n + 1 <= out->cap)
		return true;
	cap = out->cap ? out->cap : 1024;
	while (cap < out->len + n + 1)
		cap *= 2;
	if ((p = realloc(out->buf, cap)) == NULL) {
		out->overflow = true;
		return false;
	}
	out->buf = p;
	out->cap = cap;
	return true;
}

void
control_printf(struct control_out *out, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !out_reserve(out, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(out->buf + out->len, out->cap - out->len, fmt, ap);
	va_end(ap);
	out->len += (size_t)n;
}

/* Bytes of the well-formed UTF-8 sequence at p (2 to 4), or 0 when it is not one. */
static size_t
utf8_length(const unsigned char *p)
{
	size_t	n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

	if (n == 0 || p[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

void
control_json_string(struct control_out *out, const char *s)
{
	control_printf(out, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		size_t	n;

		if (*p == '"' || *p == '\\')
			control_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			control_printf(out, "\\u%04x", *p);
		else if (*p < 0x80)
			control_printf(out, "%c", *p);
		else if ((n = utf8_length(p)) == 0)
			control_printf(out, "\\ufffd");	/* not UTF-8: the replacement character */
		else {
			control_printf(out, "%.*s", (int)n, (const char *)p);
			p += n - 1;
		}
	}
	control_printf(out, "\"");
}

void
control_fail(struct control_out *out, int status, const char *fmt, ...)
{
	va_list	ap;

	out->status = status;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
}

void
control_out_free(struct control_out *out)
{
	free(out->buf);
	out->buf = NULL;
	out->len = out->cap = 0;
}

int
control_split(char *line, char **argv, int max)
{
	char   *save = NULL;
	int	n = 0;

	for (char *p = strtok_r(line, " \t\r\n", &save); p != NULL && n < max;
	     p = strtok_r(NULL, " \t\r\n", &save))
		argv[n++] = p;
	return n;
}
