/*
 * config_loader.c - the error path and the typed getters of the
 * configuration loader (config_loader.h), shared by config.c's key tables
 * and ratelimit_config.c's rules so that every setting words its errors
 * alike: "FILE:LINE: NAME: what was wrong".
 *
 * Thread-safety: a loader belongs to one config_load() call; nothing here
 * keeps state of its own.
 */
#include "config_loader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
loader_error(struct loader *ld, const config_setting_t *where, const char *fmt, ...)
{
	char	msg[512], line[700];
	va_list ap;
	const char *file = where ? config_setting_source_file(where) : NULL;
	unsigned lineno = where ? config_setting_source_line(where) : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s:%u: %s", file ? file : ld->path, lineno, msg);
	ld->errors++;
	if (ld->report)
		ld->report(ld->arg, line);
}

void
loader_out_of_memory(struct loader *ld, const config_setting_t *where)
{
	ld->out_of_memory = true;
	loader_error(ld, where, "out of memory");
}

bool
loader_set_string(struct loader *ld, const config_setting_t *where, char **slot, const char *value)
{
	char   *copy = strdup(value);

	if (copy == NULL) {
		loader_out_of_memory(ld, where);
		return false;
	}
	free(*slot);
	*slot = copy;
	return true;
}

const char *
loader_label(const config_setting_t *s)
{
	const char *name = config_setting_name(s);

	if (name == NULL && config_setting_parent(s) != NULL)
		name = config_setting_name(config_setting_parent(s));
	return name ? name : "value";
}

bool
loader_get_whole(struct loader *ld, const config_setting_t *s, double min, double max,
		 unsigned long *out)
{
	int	t = config_setting_type(s);
	long long v;

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		loader_error(ld, s, "%s: expected a whole number", loader_label(s));
		return false;
	}
	v = config_setting_get_int64(s);
	if ((double)v < min || (double)v > max) {
		loader_error(ld, s, "%s: %lld is out of range (%.0f to %.0f)",
			     loader_label(s), v, min, max);
		return false;
	}
	*out = (unsigned long)v;
	return true;
}

/* The index of value in words, or -1. */
static int
word_index(const char *const *words, const char *value)
{
	for (int i = 0; words[i]; i++)
		if (strcmp(words[i], value) == 0)
			return i;
	return -1;
}

/* "a | b | c" for error messages. */
static void
words_join(const char *const *words, char *buf, size_t size)
{
	buf[0] = '\0';
	for (int i = 0; words[i]; i++) {
		if (i)
			strncat(buf, " | ", size - strlen(buf) - 1);
		strncat(buf, words[i], size - strlen(buf) - 1);
	}
}

bool
loader_get_enum(struct loader *ld, const config_setting_t *s, const char *const *words, int *out)
{
	char	choices[200];
	const char *value = config_setting_get_string(s);
	int	i;

	if (value == NULL) {
		loader_error(ld, s, "%s: expected a string", loader_label(s));
		return false;
	}
	if ((i = word_index(words, value)) < 0) {
		words_join(words, choices, sizeof(choices));
		loader_error(ld, s, "%s: unknown value \"%s\" (expected %s)",
			     loader_label(s), value, choices);
		return false;
	}
	*out = i;
	return true;
}
