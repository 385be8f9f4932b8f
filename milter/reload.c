/*
 * reload.c - one reload of the configuration (reload.h).
 */
#include "reload.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "services.h"
#include "stats.h"

/* SIGUSR1 and the control socket may ask at once: services_reload() is not reentrant. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

/* The configuration the daemon started with, held from the first reload on. */
static struct config *started;

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

/* The string settings read at start only (engine has its own warning). */
static const struct {
	const char *key;
	size_t	offset;
} start_only[] = {
	{"socket", offsetof(struct config, socket)},
	{"user", offsetof(struct config, user)},
	{"pidfile", offsetof(struct config, pidfile)},
	{"control_socket", offsetof(struct config, control_socket)},
	{"metrics", offsetof(struct config, metrics)},
};

static const char *
setting(const struct config *cfg, size_t offset)
{
	const char *value = *(char *const *)((const char *)cfg + offset);

	return value != NULL ? value : "";
}

/*
 * Says which settings of cfg a reload cannot apply: they differ from those
 * the daemon started with (run), which stay in force until a restart.
 */
static void
warn_start_only(const char *name, const struct config *run, const struct config *cfg)
{
	for (size_t i = 0; i < sizeof start_only / sizeof start_only[0]; i++)
		if (strcmp(setting(run, start_only[i].offset), setting(cfg, start_only[i].offset)) != 0)
			log_warning("%s: %s takes a restart; the running value \"%s\" stays", name,
				    start_only[i].key, setting(run, start_only[i].offset));
	if (run->syslog_facility != cfg->syslog_facility)
		log_warning("%s: syslog_facility takes a restart; the running one stays", name);
	if (strcmp(config_engine_name(cfg->engine), milter_current()->name) != 0)
		log_warning("%s: engine \"%s\" takes a restart; the %s engine keeps running", name,
			    config_engine_name(cfg->engine), milter_current()->name);
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
	if (started == NULL)
		started = config_current();	/* the first reload's is the one started with */
	if (started != NULL)
		warn_start_only(name, started, cfg);
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
