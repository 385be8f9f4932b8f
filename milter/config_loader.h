/*
 * config_loader.h - what config.c's key tables share with the parsers of
 * settings that have a shape of their own (ratelimit_config.c): the loader
 * that reports "FILE:LINE: message" errors, and the typed getters every
 * setting is read with, so that all of them word their errors alike.
 *
 * Contract: only the configuration loader includes this.  A getter that
 * fails reports why and leaves its output alone; so does a failed
 * allocation ("out of memory"), which makes config_load() return NULL like
 * any other error.
 *
 * Thread-safety: a loader belongs to one config_load() call.
 */
#ifndef MXGATE_CONFIG_LOADER_H
#define MXGATE_CONFIG_LOADER_H

#include <libconfig.h>
#include <stdbool.h>

#include "config.h"

/* What one config_load() call is doing. */
struct loader {
	const char *path;
	config_report_fn *report;
	void   *arg;
	int	errors;
	bool	out_of_memory;		/* some value could not be stored */
};

/* Report "FILE:LINE: message" for a setting (NULL: the file itself). */
void	loader_error(struct loader *ld, const config_setting_t *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Report that an allocation for the setting at where failed. */
void	loader_out_of_memory(struct loader *ld, const config_setting_t *where);

/* Replace the owned string *slot by a copy of value; on failure keep it and report. */
bool	loader_set_string(struct loader *ld, const config_setting_t *where, char **slot,
			  const char *value);

/* A setting's name for messages; a list element goes by its list's name. */
const char *loader_label(const config_setting_t *s);

/* A whole number in [min, max]; reports and returns false otherwise. */
bool	loader_get_whole(struct loader *ld, const config_setting_t *s, double min, double max,
			 unsigned long *out);

/* A string among words (NULL-terminated); *out is its index. */
bool	loader_get_enum(struct loader *ld, const config_setting_t *s, const char *const *words,
			int *out);

#endif
