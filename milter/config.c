/*
 * config.c - load, default and validate mxgate.conf (libconfig syntax).
 *
 * Keys are described by tables, one row per key (name, type, place in
 * struct config, bounds, default), so that parsing, unknown-key
 * detection, defaults and freeing cannot drift apart: the defaults and the
 * freeing are loops over the same rows.  Every error is reported as
 * "FILE:LINE: message" and parsing goes on, so that "mxgate -t" lists them
 * all; a failed allocation is such an error too ("out of memory"), so a
 * reload that meets one keeps the running configuration.  Checks that
 * involve more than one key, or a key's inner syntax, sit beside their
 * group's table and run once the whole file is read.  Rate-limit rules
 * have a shape of their own and are parsed by ratelimit_config.c; both
 * report through config_loader.c.
 *
 * Thread-safety: config_load() touches no global state.  The current
 * snapshot is a pointer guarded by a mutex; each holder owns a reference.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "config_loader.h"
#include "hostname.h"
#include "metrics.h"
#include "milter_socket.h"
#include "ratelimit_config.h"
#include "reply.h"
#include "server_addr.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

enum key_type {
	KT_BOOL, KT_UINT, KT_ULONG, KT_DOUBLE, KT_STRING, KT_ENUM, KT_FACILITY,
	KT_STRLIST, KT_CIDRLIST, KT_GROUP, KT_RULES,
};

/* Cross-key checks of a group, once the whole file is read. */
typedef void group_check_fn(struct loader *ld, const config_t *cf, const struct config *cfg);

struct key_spec {
	const char *name;
	enum key_type type;
	size_t	offset;			/* into struct config */
	double	min, max;		/* numbers */
	const char *const *words;	/* KT_ENUM, indexed by value */
	const struct key_spec *group;	/* KT_GROUP: its keys */
	group_check_fn *check;		/* KT_GROUP: its cross-key checks, or NULL */
	double	num;			/* default of a number, bool, enum or facility */
	const char *str;		/* default of a KT_STRING */
	const char *const *list;	/* default of a list, NULL-terminated; NULL: empty */
};

#define OFF(field) offsetof(struct config, field)
#define KEY_BOOL(n, f, d)	{.name = n, .type = KT_BOOL, .offset = OFF(f), .num = (d)}
#define KEY_NUM(n, t, f, lo, hi, d) \
	{.name = n, .type = t, .offset = OFF(f), .min = lo, .max = hi, .num = (d)}
#define KEY_STRING(n, f, d)	{.name = n, .type = KT_STRING, .offset = OFF(f), .str = d}
#define KEY_ENUM(n, f, w, d)	{.name = n, .type = KT_ENUM, .offset = OFF(f), .words = w, .num = (d)}
#define KEY_LIST(n, t, f, d)	{.name = n, .type = t, .offset = OFF(f), .list = d}
#define KEY_GROUP(n, g, c)	{.name = n, .type = KT_GROUP, .group = g, .check = c}
#define KEY_END			{.name = NULL}

static const char *const log_level_words[] = {"error", "warning", "info", "debug", NULL};
static const char *const engine_words[] = {"libmilter", "builtin", NULL};
static const char *const on_error_words[] = {"accept", "tempfail", "local", NULL};
static const char *const on_error_quota_words[] = {"accept", "tempfail", NULL};
static const char *const enforce_words[] = {"rcpt", "mail", NULL};
static const char *const multi_target_words[] = {"all", "any", NULL};
static const char *const queue_format_words[] = {"postfix", "sendmail", NULL};

static const struct {
	const char *name;
	int	value;
} facilities[] = {
	{"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
	{"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
	{"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

/* Empty a list of strings. */
static void
string_list_free(struct string_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/* Append a copy of value; false when out of memory (the list is unchanged). */
static bool
string_list_add(struct string_list *list, const char *value)
{
	char  **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
	char   *copy;

	if (grown == NULL)
		return false;
	list->items = grown;
	if ((copy = strdup(value)) == NULL)
		return false;
	list->items[list->count++] = copy;
	return true;
}

/* ---- the keys, group by group, each with its cross-key checks -------- */

/* "host:port" with a non-empty host and a port in range. */
static bool
valid_server(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	size_t	digits;

	if (colon == NULL || colon == spec)
		return false;
	digits = strlen(colon + 1);
	return digits > 0 && digits <= 5 && strspn(colon + 1, "0123456789") == digits &&
	    atol(colon + 1) > 0 && atol(colon + 1) < 65536 &&
	    strpbrk(spec, " \t\r\n") == NULL;
}

static const struct key_spec memcached_keys[] = {
	KEY_LIST("servers", KT_STRLIST, memcached.servers, NULL),
	KEY_STRING("key_prefix", memcached.key_prefix, "mxgate:"),
	KEY_NUM("timeout_ms", KT_UINT, memcached.timeout_ms, 1, 60000, 200),
	KEY_ENUM("on_error", memcached.on_error, on_error_words, ON_ERROR_ACCEPT),
	KEY_END,
};

/* Each server is host:port; the prefix fits in a memcached key. */
static void
memcached_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	const char *prefix = cfg->memcached.key_prefix;

	for (size_t i = 0; i < cfg->memcached.servers.count; i++)
		if (!valid_server(cfg->memcached.servers.items[i]))
			loader_error(ld, config_lookup(cf, "memcached.servers"),
				     "servers: \"%s\" is not host:port", cfg->memcached.servers.items[i]);
	if (strlen(prefix) > 32 ||
	    strspn(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
	    != strlen(prefix))
		loader_error(ld, config_lookup(cf, "memcached.key_prefix"),
			     "key_prefix: at most 32 letters, digits, '_', '.', ':' or '-'");
}

static const struct key_spec mysql_keys[] = {
	KEY_STRING("host", mysql.host, ""),
	KEY_NUM("port", KT_UINT, mysql.port, 1, 65535, 3306),
	KEY_STRING("socket", mysql.socket, ""),
	KEY_LIST("servers", KT_STRLIST, mysql.servers, NULL),
	KEY_STRING("user", mysql.user, ""),
	KEY_STRING("password", mysql.password, ""),
	KEY_STRING("database", mysql.database, ""),
	KEY_NUM("timeout_ms", KT_UINT, mysql.timeout_ms, 1, 60000, 1000),
	KEY_STRING("quota_query", mysql.quota_query,
		   "SELECT quota, maildir FROM mailbox WHERE username = ? AND active = 1"),
	KEY_STRING("alias_query", mysql.alias_query,
		   "SELECT goto FROM alias WHERE address = ? AND active = 1"),
	KEY_STRING("alias_domain_query", mysql.alias_domain_query,
		   "SELECT target_domain FROM alias_domain WHERE alias_domain = ? AND active = 1"),
	KEY_END,
};

/* Each entry of servers is one server_addr.h form; servers replaces host and socket. */
static void
mysql_servers_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	const config_setting_t *where = config_lookup(cf, "mysql.servers");
	struct server_addr addr;

	for (size_t i = 0; i < cfg->mysql.servers.count; i++)
		if (!server_addr_parse(cfg->mysql.servers.items[i], &addr))
			loader_error(ld, where, "servers: \"%s\" is not host:port (port 1-65535), "
				     "[IPv6]:port or unix:/absolute/path", cfg->mysql.servers.items[i]);
	if (cfg->mysql.servers.count > 0 && (cfg->mysql.host[0] || cfg->mysql.socket[0]))
		loader_error(ld, where, "servers: set either servers or host/socket, not both");
}

/* Each query takes the one address it is asked about; a server needs a user. */
static void
mysql_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	const char *queries[] = {cfg->mysql.quota_query, cfg->mysql.alias_query, cfg->mysql.alias_domain_query};
	const char *qnames[] = {"mysql.quota_query", "mysql.alias_query", "mysql.alias_domain_query"};

	for (size_t i = 0; i < 3; i++) {
		const char *q = strchr(queries[i], '?');

		if (q == NULL || strchr(q + 1, '?') != NULL)
			loader_error(ld, config_lookup(cf, qnames[i]),
				     "%s: needs exactly one '?' placeholder", qnames[i] + 6);
	}
	mysql_servers_check(ld, cf, cfg);
	if (cfg->mysql.user[0] == '\0' &&
	    (cfg->mysql.host[0] || cfg->mysql.socket[0] || cfg->mysql.servers.count > 0))
		loader_error(ld, config_lookup(cf, "mysql"),
			     "mysql: host, socket or servers is set but user is empty");
}

static const struct key_spec helo_keys[] = {
	KEY_BOOL("enabled", helo.enabled, true),
	KEY_BOOL("reject_non_fqdn", helo.reject_non_fqdn, true),
	KEY_BOOL("reject_invalid", helo.reject_invalid, true),
	KEY_ENUM("enforce_at", helo.enforce_at, enforce_words, ENFORCE_RCPT),
	KEY_BOOL("exempt_authenticated", helo.exempt_authenticated, true),
	KEY_LIST("exempt_daemons", KT_STRLIST, helo.exempt_daemons, NULL),
	KEY_BOOL("required", helo.required, false),
	KEY_LIST("reject_own_names", KT_STRLIST, helo.reject_own_names, NULL),
	KEY_END,
};

/* Each own name is a host name or an address literal, as a client would greet with it. */
static void
helo_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	const struct string_list *names = &cfg->helo.reject_own_names;
	const config_setting_t *list = config_lookup(cf, "helo.reject_own_names");

	for (size_t i = 0; i < names->count; i++) {
		const char *name = names->items[i];
		size_t	len = strlen(name);
		struct ipaddr addr;
		const config_setting_t *elem = list ? config_setting_get_elem(list, (unsigned)i) : NULL;

		if (name[0] == '[' ? ipaddr_parse_literal(name, len, &addr)
		    : hostname_valid(name, hostname_strip_dot(name, len)))
			continue;
		loader_error(ld, elem ? elem : list,
			     "reject_own_names: \"%s\" is neither a host name nor an address "
			     "literal such as [192.0.2.1] or [IPv6:2001:db8::1]", name);
	}
}

static const struct key_spec quota_keys[] = {
	KEY_BOOL("enabled", quota.enabled, true),
	KEY_STRING("maildir_root", quota.maildir_root, "/var/vmail"),
	KEY_STRING("maildir_template", quota.maildir_template, "%d/%l/"),
	KEY_STRING("recipient_delimiter", quota.recipient_delimiter, "+"),
	KEY_BOOL("use_message_size", quota.use_message_size, true),
	KEY_BOOL("check_real_size", quota.check_real_size, false),
	KEY_NUM("grace_percent", KT_UINT, quota.grace_percent, 0, 1000, 0),
	KEY_NUM("cache_ttl", KT_UINT, quota.cache_ttl, 0, 86400, 30),
	KEY_ENUM("multi_target", quota.multi_target, multi_target_words, MULTI_TARGET_ALL),
	KEY_ENUM("on_error", quota.on_error, on_error_quota_words, ON_ERROR_TEMPFAIL),
	KEY_NUM("reply_code", KT_UINT, quota.reply_code, 400, 599, 552),
	KEY_STRING("reply_dsn", quota.reply_dsn, "5.2.2"),
	KEY_END,
};

/* The over-quota reply is a valid SMTP reply; the maildir path is safe to build. */
static void
quota_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	const char *dsn = cfg->quota.reply_dsn, *tmpl = cfg->quota.maildir_template;
	unsigned code = cfg->quota.reply_code;

	/* The rule the reply is built with: a DSN it would refuse would never refuse a mailbox. */
	if (!reply_code_valid(code, dsn))
		loader_error(ld, config_lookup(cf, "quota.reply_dsn") ? config_lookup(cf, "quota.reply_dsn")
			     : config_lookup(cf, "quota.reply_code"),
			     "reply_code %u with reply_dsn \"%s\": need a 4xx or 5xx code and "
			     "a DSN of the same class (e.g. 552 and 5.2.2)", code, dsn);
	if (strstr(tmpl, "..") ||
	    strspn(tmpl, "%dlu/._-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	    != strlen(tmpl))
		loader_error(ld, config_lookup(cf, "quota.maildir_template"),
			     "maildir_template: only %%d, %%l, %%u, '/', letters and digits are allowed");
	for (const char *p = tmpl; (p = strchr(p, '%')) != NULL; p += 2)
		if (p[1] != 'd' && p[1] != 'l' && p[1] != 'u') {
			loader_error(ld, config_lookup(cf, "quota.maildir_template"),
				     "maildir_template: unknown escape %%%c (expected %%d, %%l or %%u)",
				     p[1] ? p[1] : ' ');
			break;
		}
	if (cfg->quota.maildir_root[0] != '/')
		loader_error(ld, config_lookup(cf, "quota.maildir_root"),
			     "maildir_root: must be an absolute path");
	/* The real size stands in for SIZE=: it counts only where SIZE= would. */
	if (cfg->quota.check_real_size && !cfg->quota.use_message_size)
		loader_error(ld, config_lookup(cf, "quota.check_real_size"),
			     "check_real_size: needs use_message_size = true (the real size "
			     "counts where SIZE= would)");
	if (strpbrk(cfg->quota.recipient_delimiter, "@ \t\r\n") != NULL)
		loader_error(ld, config_lookup(cf, "quota.recipient_delimiter"),
			     "recipient_delimiter: must not contain '@' or white space");
}

/* The rules check themselves as they are parsed (ratelimit_config.c). */
static const struct key_spec ratelimit_keys[] = {
	KEY_BOOL("enabled", ratelimit.enabled, true),
	{.name = "rules", .type = KT_RULES},
	KEY_END,
};

static const struct key_spec overload_keys[] = {
	KEY_BOOL("enabled", overload.enabled, true),
	KEY_STRING("flag_file", overload.flag_file, ""),
	KEY_STRING("queue_directory", overload.queue_directory, ""),
	KEY_ENUM("queue_format", overload.queue_format, queue_format_words, QUEUE_FORMAT_POSTFIX),
	KEY_NUM("queue_high", KT_ULONG, overload.queue_high, 0, 1e9, 0),
	KEY_NUM("queue_low", KT_ULONG, overload.queue_low, 0, 1e9, 0),
	KEY_NUM("load_high", KT_DOUBLE, overload.load_high, 0, 1e6, 0),
	KEY_NUM("load_low", KT_DOUBLE, overload.load_low, 0, 1e6, 0),
	KEY_STRING("loadavg_file", overload.loadavg_file, "/proc/loadavg"),
	KEY_NUM("sample_interval", KT_UINT, overload.sample_interval, 1, 3600, 5),
	KEY_END,
};

/* Each _low mark is at most its _high mark; a queue mark needs a queue. */
static void
overload_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	const struct overload_settings *o = &cfg->overload;

	if (o->queue_high > 0 && o->queue_low > o->queue_high)
		loader_error(ld, config_lookup(cf, "overload.queue_low"),
			     "queue_low (%lu) is above queue_high (%lu)", o->queue_low, o->queue_high);
	if (o->load_high > 0 && o->load_low > o->load_high)
		loader_error(ld, config_lookup(cf, "overload.load_low"),
			     "load_low (%g) is above load_high (%g)", o->load_low, o->load_high);
	if (o->queue_high > 0 && o->queue_directory[0] == '\0')
		loader_error(ld, config_lookup(cf, "overload.queue_high"),
			     "queue_high is set but queue_directory is empty");
}

static const char *const trusted_default[] = {"127.0.0.0/8", "::1/128", NULL};

static const struct key_spec top_keys[] = {
	KEY_STRING("socket", socket, "inet:8891@127.0.0.1"),
	KEY_ENUM("engine", engine, engine_words, ENGINE_LIBMILTER),
	KEY_STRING("user", user, ""),
	KEY_STRING("pidfile", pidfile, ""),
	KEY_STRING("control_socket", control_socket, ""),
	KEY_STRING("metrics", metrics, ""),
	{.name = "syslog_facility", .type = KT_FACILITY, .offset = OFF(syslog_facility), .num = LOG_MAIL},
	KEY_ENUM("log_level", log_level, log_level_words, LOG_LEVEL_INFO),
	KEY_BOOL("dry_run", dry_run, false),
	KEY_LIST("trusted_networks", KT_CIDRLIST, trusted_networks, trusted_default),
	KEY_GROUP("memcached", memcached_keys, memcached_check),
	KEY_GROUP("mysql", mysql_keys, mysql_check),
	KEY_GROUP("helo", helo_keys, helo_check),
	KEY_GROUP("quota", quota_keys, quota_check),
	KEY_GROUP("ratelimit", ratelimit_keys, NULL),
	KEY_GROUP("overload", overload_keys, overload_check),
	KEY_END,
};

/* The socket is one the engines can listen on; the control socket, if any, is unix:/PATH. */
static void
top_check(struct loader *ld, const config_t *cf, const struct config *cfg)
{
	struct milter_socket sock;
	char	why[300];

	if (!milter_socket_parse(cfg->socket, &sock, why, sizeof(why)))
		loader_error(ld, config_lookup(cf, "socket"), "socket: %s", why);
	if (cfg->control_socket[0] != '\0' &&
	    (strncasecmp(cfg->control_socket, "unix:", 5) != 0 ||
	     !milter_socket_parse(cfg->control_socket, &sock, why, sizeof(why))))
		loader_error(ld, config_lookup(cf, "control_socket"),
			     "control_socket: \"%s\" is not unix:/PATH (an absolute path of at most %zu bytes)",
			     cfg->control_socket, MILTER_SOCKET_PATH_MAX - 1);
	if (cfg->metrics[0] != '\0') {
		struct sockaddr_storage addr;
		socklen_t len;

		if (!metrics_parse(cfg->metrics, &addr, &len, why, sizeof(why)))
			loader_error(ld, config_lookup(cf, "metrics"), "metrics: %s", why);
	}
}

/* ---- parsing, defaults and freeing, driven by the tables ------------- */

static void parse_group(struct loader *ld, struct config *cfg, const config_setting_t *group,
			const struct key_spec *keys);

/* Append one element to a list key: a string, or a network for KT_CIDRLIST. */
static void
list_add(struct loader *ld, const config_setting_t *e, const struct key_spec *k, void *slot,
	 const char *v)
{
	struct cidr net;

	if (k->type == KT_STRLIST) {
		if (!string_list_add(slot, v))
			loader_out_of_memory(ld, e);
	} else if (!cidr_parse(v, &net)) {
		assert(e != NULL);	/* a default network that does not parse is a table bug */
		loader_error(ld, e, "%s: bad network \"%s\" (expected ADDRESS or ADDRESS/PREFIX)",
			     k->name, v);
	} else if (!cidr_list_add(slot, &net))
		loader_out_of_memory(ld, e);
}

/* A list key: [ "...", ... ] replaces the default. */
static void
parse_list(struct loader *ld, const config_setting_t *s, const struct key_spec *k, void *slot)
{
	int	t = config_setting_type(s);

	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		loader_error(ld, s, "%s: expected a list of strings [ \"...\" ]", loader_label(s));
		return;
	}
	if (k->type == KT_STRLIST)
		string_list_free(slot);
	else
		cidr_list_free(slot);
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL)
			loader_error(ld, e, "%s: element %d is not a string", loader_label(s), i + 1);
		else
			list_add(ld, e, k, slot, v);
	}
}

/* A real number in the key's range. */
static void
parse_double(struct loader *ld, const config_setting_t *s, const struct key_spec *k, double *slot)
{
	int	t = config_setting_type(s);
	double	v;

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64 && t != CONFIG_TYPE_FLOAT) {
		loader_error(ld, s, "%s: expected a number", loader_label(s));
		return;
	}
	v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) : (double)config_setting_get_int64(s);
	if (v < k->min || v > k->max)
		loader_error(ld, s, "%s: %g is out of range (%g to %g)", loader_label(s), v, k->min, k->max);
	else
		*slot = v;
}

/* A syslog facility by name. */
static void
parse_facility(struct loader *ld, const config_setting_t *s, int *slot)
{
	const char *v = config_setting_get_string(s);

	for (size_t i = 0; v && i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcmp(v, facilities[i].name) == 0) {
			*slot = facilities[i].value;
			return;
		}
	loader_error(ld, s, "%s: unknown syslog facility \"%s\"", loader_label(s), v ? v : "");
}

/* Whether s has the libconfig type a key needs; reports "expected what" otherwise. */
static bool
expect_type(struct loader *ld, const config_setting_t *s, int type, const char *what)
{
	if (config_setting_type(s) == type)
		return true;
	loader_error(ld, s, "%s: expected %s", loader_label(s), what);
	return false;
}

/* Store one setting as its spec says. */
static void
parse_key(struct loader *ld, struct config *cfg, const config_setting_t *s,
	  const struct key_spec *k)
{
	void   *slot = (char *)cfg + k->offset;
	unsigned long whole;

	switch (k->type) {
	case KT_BOOL:
		if (expect_type(ld, s, CONFIG_TYPE_BOOL, "true or false"))
			*(bool *)slot = config_setting_get_bool(s);
		break;
	case KT_UINT:
	case KT_ULONG:
		if (!loader_get_whole(ld, s, k->min, k->max, &whole))
			break;
		if (k->type == KT_UINT)
			*(unsigned *)slot = (unsigned)whole;
		else
			*(unsigned long *)slot = whole;
		break;
	case KT_DOUBLE:
		parse_double(ld, s, k, slot);
		break;
	case KT_STRING:
		if (expect_type(ld, s, CONFIG_TYPE_STRING, "a string"))
			loader_set_string(ld, s, slot, config_setting_get_string(s));
		break;
	case KT_ENUM:
		loader_get_enum(ld, s, k->words, slot);
		break;
	case KT_FACILITY:
		parse_facility(ld, s, slot);
		break;
	case KT_STRLIST:
	case KT_CIDRLIST:
		parse_list(ld, s, k, slot);
		break;
	case KT_GROUP:
		if (expect_type(ld, s, CONFIG_TYPE_GROUP, "a group { ... }"))
			parse_group(ld, cfg, s, k->group);
		break;
	case KT_RULES:
		if (expect_type(ld, s, CONFIG_TYPE_LIST, "a list of rules ( { ... }, ... )"))
			ratelimit_config_parse(ld, cfg, s);
		break;
	}
}

/* Every setting of a group, each by the row of its name in keys. */
static void
parse_group(struct loader *ld, struct config *cfg, const config_setting_t *group,
	    const struct key_spec *keys)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const struct key_spec *k = keys;

		while (k->name && strcmp(k->name, config_setting_name(s)) != 0)
			k++;
		if (k->name == NULL)
			loader_error(ld, s, "unknown setting \"%s\"", config_setting_name(s));
		else
			parse_key(ld, cfg, s, k);
	}
}

/* Run the cross-key checks of each group in keys, outer before inner, in table order. */
static void
check_group(struct loader *ld, const config_t *cf, const struct config *cfg,
	    const struct key_spec *keys)
{
	for (const struct key_spec *k = keys; k->name; k++)
		if (k->type == KT_GROUP) {
			if (k->check)
				k->check(ld, cf, cfg);
			check_group(ld, cf, cfg, k->group);
		}
}

/* How many words an enum has. */
static size_t
word_count(const char *const *words)
{
	size_t	n = 0;

	while (words[n])
		n++;
	return n;
}

/* Fill every default of keys from its rows (contrib/mxgate.conf.example lists them). */
static void
default_group(struct loader *ld, struct config *cfg, const struct key_spec *keys)
{
	for (const struct key_spec *k = keys; k->name; k++) {
		void   *slot = (char *)cfg + k->offset;

		/* A default outside its own bounds is a bug in the table. */
		assert((k->type != KT_UINT && k->type != KT_ULONG && k->type != KT_DOUBLE) ||
		       (k->num >= k->min && k->num <= k->max));
		switch (k->type) {
		case KT_BOOL:
			*(bool *)slot = k->num != 0;
			break;
		case KT_UINT:
			*(unsigned *)slot = (unsigned)k->num;
			break;
		case KT_ULONG:
			*(unsigned long *)slot = (unsigned long)k->num;
			break;
		case KT_DOUBLE:
			*(double *)slot = k->num;
			break;
		case KT_ENUM:
			assert(k->num >= 0 && (size_t)k->num < word_count(k->words));
			/* FALLTHROUGH */
		case KT_FACILITY:
			*(int *)slot = (int)k->num;
			break;
		case KT_STRING:
			assert(k->str != NULL);
			loader_set_string(ld, NULL, slot, k->str);
			break;
		case KT_STRLIST:
		case KT_CIDRLIST:
			for (const char *const *v = k->list; v && *v; v++)
				list_add(ld, NULL, k, slot, *v);
			break;
		case KT_GROUP:
			default_group(ld, cfg, k->group);
			break;
		case KT_RULES:		/* none: rules are only what the file lists */
			break;
		}
	}
}

/* Free what the rows of keys own. */
static void
free_group(struct config *cfg, const struct key_spec *keys)
{
	for (const struct key_spec *k = keys; k->name; k++) {
		void   *slot = (char *)cfg + k->offset;

		if (k->type == KT_STRING)
			free(*(char **)slot);
		else if (k->type == KT_STRLIST)
			string_list_free(slot);
		else if (k->type == KT_CIDRLIST)
			cidr_list_free(slot);
		else if (k->type == KT_GROUP)
			free_group(cfg, k->group);
		else if (k->type == KT_RULES)
			ratelimit_config_free(cfg);
	}
}

/* ---- loading --------------------------------------------------------- */

/* Free a configuration, whatever a failed load left in it. */
static void
config_free(struct config *cfg)
{
	free(cfg->path);
	free_group(cfg, top_keys);
	free(cfg);
}

/* The last reference is gone. */
static void
config_snapshot_free(struct snapshot *snap)
{
	config_free(snapshot_owner(snap, struct config, snap));
}

/* Read path over cfg's defaults; errors go to ld. */
static void
load_file(struct loader *ld, struct config *cfg, const char *path)
{
	config_t cf;
	FILE   *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		loader_error(ld, NULL, "cannot open: %s", strerror(errno));
		return;
	}
	fclose(fp);
	config_init(&cf);
	config_set_include_dir(&cf, SYSCONFDIR);
	if (!config_read_file(&cf, path)) {
		char	msg[600];

		snprintf(msg, sizeof(msg), "%s:%d: %s", config_error_file(&cf) ? config_error_file(&cf) : path,
			 config_error_line(&cf), config_error_text(&cf));
		ld->errors++;
		if (ld->report)
			ld->report(ld->arg, msg);
	} else {
		parse_group(ld, cfg, config_root_setting(&cf), top_keys);
		/* A value that could not be stored kept its default: not worth judging. */
		if (!ld->out_of_memory) {
			top_check(ld, &cf, cfg);
			check_group(ld, &cf, cfg, top_keys);
		}
	}
	config_destroy(&cf);
}

struct config *
config_load(const char *path, config_report_fn *report, void *arg)
{
	struct loader ld = {.path = path ? path : "(defaults)", .report = report, .arg = arg};
	static atomic_ulong loads;
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL) {
		loader_out_of_memory(&ld, NULL);
		return NULL;
	}
	snapshot_init(&cfg->snap, config_snapshot_free);
	if (loader_set_string(&ld, NULL, &cfg->path, path ? path : ""))
		default_group(&ld, cfg, top_keys);
	cfg->generation = atomic_fetch_add(&loads, 1) + 1;
	cfg->loaded = time(NULL);
	if (ld.errors == 0 && path != NULL)
		load_file(&ld, cfg, path);
	if (ld.errors) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

static struct snapshot_slot current = SNAPSHOT_SLOT_INITIALIZER;

void
config_hold(struct config *cfg)
{
	snapshot_hold(&cfg->snap);
}

void
config_release(struct config *cfg)
{
	if (cfg != NULL)
		snapshot_release(&cfg->snap);
}

void
config_install(struct config *cfg)
{
	snapshot_install(&current, cfg ? &cfg->snap : NULL);
}

struct config *
config_current(void)
{
	struct snapshot *snap = snapshot_acquire(&current);

	return snap ? snapshot_owner(snap, struct config, snap) : NULL;
}

void
config_shutdown(void)
{
	config_install(NULL);
}

const char *
config_on_error_name(enum on_error value)
{
	return on_error_words[value];
}

const char *
config_engine_name(enum engine_kind value)
{
	return engine_words[value];
}
