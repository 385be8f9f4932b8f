/*
 * reload.c - one reload of the configuration (reload.h).
 */
#include "reload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "services.h"
#include "stats.h"

/* SIGUSR1 and the control socket may ask at once: services_reload() is not reentrant. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

/* Where a load's errors go: the log, and the caller's report. */
struct reload_report {
	config_report_fn *report;
	void   *arg;
};

static void
report_both(void *arg, const char *message)
{
	const struct reload_report *r = arg;

	log_error("%s", message);
	if (r->report != NULL)
		r->report(r->arg, message);
}

/* The file the running configuration came from (NULL: the defaults), copied. */
static char *
running_path(bool *oom)
{
	struct config *cur = config_current();
	char   *path = NULL;

	*oom = false;
	if (cur != NULL && cur->path[0] != '\0' && (path = strdup(cur->path)) == NULL)
		*oom = true;
	config_release(cur);
	return path;
}

bool
mxgate_reload(config_report_fn *report, void *arg)
{
	struct reload_report r = {.report = report, .arg = arg};
	struct config *cfg = NULL;
	bool	oom;
	char   *path;
	const char *name;

	pthread_mutex_lock(&reload_lock);
	path = running_path(&oom);
	name = path ? path : "(defaults)";
	if (oom)
		report_both(&r, "(reload): out of memory");
	else
		cfg = config_load(path, report_both, &r);
	if (cfg == NULL) {
		log_error("reload of %s failed: keeping the running configuration", name);
		stats_reload(false);
		free(path);
		pthread_mutex_unlock(&reload_lock);
		return false;
	}
	if (strcmp(config_engine_name(cfg->engine), milter_current()->name) != 0)
		log_warning("%s: engine \"%s\" takes a restart; the %s engine keeps running", name,
			    config_engine_name(cfg->engine), milter_current()->name);
	log_set_level(cfg->log_level);
	config_install(cfg);
	cfg = config_current();
	services_reload(cfg);
	config_release(cfg);
	log_info("configuration reloaded from %s", name);
	stats_reload(true);
	free(path);
	pthread_mutex_unlock(&reload_lock);
	return true;
}
