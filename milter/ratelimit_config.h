/*
 * ratelimit_config.h - the ratelimit.rules list of mxgate.conf: rules,
 * their limits and classes, parsed into cfg->ratelimit (config.h).
 *
 * Contract: called by config.c's loader only.  Every error, including a
 * rule's own cross-checks (a key its count cannot use, a name used twice),
 * is reported through the loader as "FILE:LINE: message" and parsing goes
 * on.  What was parsed is owned by cfg and freed by ratelimit_config_free().
 *
 * Thread-safety: touches only the configuration being loaded or freed.
 */
#ifndef MXGATE_RATELIMIT_CONFIG_H
#define MXGATE_RATELIMIT_CONFIG_H

#include "config_loader.h"

/* Parse the list of rules ( { ... }, ... ) into cfg->ratelimit. */
void	ratelimit_config_parse(struct loader *ld, struct config *cfg, const config_setting_t *list);

/* Free cfg's rules, their limits and classes. */
void	ratelimit_config_free(struct config *cfg);

#endif
