/*
 * config.c - load, default and validate mxgate.conf (libconfig syntax).
 *
 * Keys are described by tables (name, type, place in struct config,
 * bounds), so that parsing, unknown-key detection and defaults cannot drift
 * apart.  Every error is reported as "FILE:LINE: message" and parsing goes
 * on, so that "mxgate -t" lists them all.  Rate-limit rules have a shape of
 * their own and are parsed by parse_rules().
 *
 * Thread-safety: config_load() touches no global state.  The current
 * snapshot is a pointer guarded by a mutex; each holder owns a reference.
 */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "milter_socket.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

enum key_type {
	KT_BOOL, KT_UINT, KT_ULONG, KT_DOUBLE, KT_STRING, KT_ENUM, KT_FACILITY,
	KT_STRLIST, KT_CIDRLIST, KT_GROUP, KT_RULES,
};

struct key_spec {
	const char *name;
	enum key_type type;
	size_t	offset;			/* into struct config */
	double	min, max;		/* numbers */
	const char *const *words;	/* KT_ENUM, indexed by value */
	const struct key_spec *group;	/* KT_GROUP */
};

/* What one config_load() call is doing. */
struct loader {
	const char *path;
	config_report_fn *report;
	void   *arg;
	int	errors;
};

#define OFF(field) offsetof(struct config, field)
#define END { NULL, KT_BOOL, 0, 0, 0, NULL, NULL }

static const char *const log_level_words[] = {"error", "warning", "info", "debug", NULL};
static const char *const engine_words[] = {"libmilter", "builtin", NULL};
static const char *const on_error_words[] = {"accept", "tempfail", "local", NULL};
static const char *const on_error_quota_words[] = {"accept", "tempfail", NULL};
static const char *const enforce_words[] = {"rcpt", "mail", NULL};
static const char *const multi_target_words[] = {"all", "any", NULL};
static const char *const queue_format_words[] = {"postfix", "sendmail", NULL};
static const char *const count_words[] = {"connections", "messages", "recipients", NULL};
static const char *const when_words[] = {"any", "authenticated", "unauthenticated", NULL};
static const char *const action_words[] = {"tempfail", "reject", "hold", "warn", NULL};
static const char *const key_words[] = {
	"client_ip", "sender", "sender_domain", "sasl_user", "recipient",
	"recipient_domain", "helo", NULL,
};

static const struct key_spec memcached_keys[] = {
	{"servers", KT_STRLIST, OFF(memcached.servers), 0, 0, NULL, NULL},
	{"key_prefix", KT_STRING, OFF(memcached.key_prefix), 0, 0, NULL, NULL},
	{"timeout_ms", KT_UINT, OFF(memcached.timeout_ms), 1, 60000, NULL, NULL},
	{"on_error", KT_ENUM, OFF(memcached.on_error), 0, 0, on_error_words, NULL},
	END,
};

static const struct key_spec mysql_keys[] = {
	{"host", KT_STRING, OFF(mysql.host), 0, 0, NULL, NULL},
	{"port", KT_UINT, OFF(mysql.port), 1, 65535, NULL, NULL},
	{"socket", KT_STRING, OFF(mysql.socket), 0, 0, NULL, NULL},
	{"user", KT_STRING, OFF(mysql.user), 0, 0, NULL, NULL},
	{"password", KT_STRING, OFF(mysql.password), 0, 0, NULL, NULL},
	{"database", KT_STRING, OFF(mysql.database), 0, 0, NULL, NULL},
	{"timeout_ms", KT_UINT, OFF(mysql.timeout_ms), 1, 60000, NULL, NULL},
	{"quota_query", KT_STRING, OFF(mysql.quota_query), 0, 0, NULL, NULL},
	{"alias_query", KT_STRING, OFF(mysql.alias_query), 0, 0, NULL, NULL},
	{"alias_domain_query", KT_STRING, OFF(mysql.alias_domain_query), 0, 0, NULL, NULL},
	END,
};

static const struct key_spec helo_keys[] = {
	{"enabled", KT_BOOL, OFF(helo.enabled), 0, 0, NULL, NULL},
	{"reject_non_fqdn", KT_BOOL, OFF(helo.reject_non_fqdn), 0, 0, NULL, NULL},
	{"reject_invalid", KT_BOOL, OFF(helo.reject_invalid), 0, 0, NULL, NULL},
	{"enforce_at", KT_ENUM, OFF(helo.enforce_at), 0, 0, enforce_words, NULL},
	{"exempt_authenticated", KT_BOOL, OFF(helo.exempt_authenticated), 0, 0, NULL, NULL},
	{"exempt_daemons", KT_STRLIST, OFF(helo.exempt_daemons), 0, 0, NULL, NULL},
	{"required", KT_BOOL, OFF(helo.required), 0, 0, NULL, NULL},
	END,
};

static const struct key_spec quota_keys[] = {
	{"enabled", KT_BOOL, OFF(quota.enabled), 0, 0, NULL, NULL},
	{"maildir_root", KT_STRING, OFF(quota.maildir_root), 0, 0, NULL, NULL},
	{"maildir_template", KT_STRING, OFF(quota.maildir_template), 0, 0, NULL, NULL},
	{"recipient_delimiter", KT_STRING, OFF(quota.recipient_delimiter), 0, 0, NULL, NULL},
	{"use_message_size", KT_BOOL, OFF(quota.use_message_size), 0, 0, NULL, NULL},
	{"grace_percent", KT_UINT, OFF(quota.grace_percent), 0, 1000, NULL, NULL},
	{"cache_ttl", KT_UINT, OFF(quota.cache_ttl), 0, 86400, NULL, NULL},
	{"multi_target", KT_ENUM, OFF(quota.multi_target), 0, 0, multi_target_words, NULL},
	{"on_error", KT_ENUM, OFF(quota.on_error), 0, 0, on_error_quota_words, NULL},
	{"reply_code", KT_UINT, OFF(quota.reply_code), 400, 599, NULL, NULL},
	{"reply_dsn", KT_STRING, OFF(quota.reply_dsn), 0, 0, NULL, NULL},
	END,
};

static const struct key_spec ratelimit_keys[] = {
	{"enabled", KT_BOOL, OFF(ratelimit.enabled), 0, 0, NULL, NULL},
	{"rules", KT_RULES, 0, 0, 0, NULL, NULL},
	END,
};

static const struct key_spec overload_keys[] = {
	{"enabled", KT_BOOL, OFF(overload.enabled), 0, 0, NULL, NULL},
	{"flag_file", KT_STRING, OFF(overload.flag_file), 0, 0, NULL, NULL},
	{"queue_directory", KT_STRING, OFF(overload.queue_directory), 0, 0, NULL, NULL},
	{"queue_format", KT_ENUM, OFF(overload.queue_format), 0, 0, queue_format_words, NULL},
	{"queue_high", KT_ULONG, OFF(overload.queue_high), 0, 1e9, NULL, NULL},
	{"queue_low", KT_ULONG, OFF(overload.queue_low), 0, 1e9, NULL, NULL},
	{"load_high", KT_DOUBLE, OFF(overload.load_high), 0, 1e6, NULL, NULL},
	{"load_low", KT_DOUBLE, OFF(overload.load_low), 0, 1e6, NULL, NULL},
	{"loadavg_file", KT_STRING, OFF(overload.loadavg_file), 0, 0, NULL, NULL},
	{"sample_interval", KT_UINT, OFF(overload.sample_interval), 1, 3600, NULL, NULL},
	END,
};

static const struct key_spec top_keys[] = {
	{"socket", KT_STRING, OFF(socket), 0, 0, NULL, NULL},
	{"engine", KT_ENUM, OFF(engine), 0, 0, engine_words, NULL},
	{"user", KT_STRING, OFF(user), 0, 0, NULL, NULL},
	{"pidfile", KT_STRING, OFF(pidfile), 0, 0, NULL, NULL},
	{"syslog_facility", KT_FACILITY, OFF(syslog_facility), 0, 0, NULL, NULL},
	{"log_level", KT_ENUM, OFF(log_level), 0, 0, log_level_words, NULL},
	{"dry_run", KT_BOOL, OFF(dry_run), 0, 0, NULL, NULL},
	{"trusted_networks", KT_CIDRLIST, OFF(trusted_networks), 0, 0, NULL, NULL},
	{"memcached", KT_GROUP, 0, 0, 0, NULL, memcached_keys},
	{"mysql", KT_GROUP, 0, 0, 0, NULL, mysql_keys},
	{"helo", KT_GROUP, 0, 0, 0, NULL, helo_keys},
	{"quota", KT_GROUP, 0, 0, 0, NULL, quota_keys},
	{"ratelimit", KT_GROUP, 0, 0, 0, NULL, ratelimit_keys},
	{"overload", KT_GROUP, 0, 0, 0, NULL, overload_keys},
	END,
};

static const struct {
	const char *name;
	int	value;
} facilities[] = {
	{"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
	{"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
	{"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

/* Report "FILE:LINE: message" for a setting (NULL: the file itself). */
static void __attribute__((format(printf, 3, 4)))
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

static char *
xstrdup(const char *s)
{
	char   *copy = strdup(s);

	if (copy == NULL) {
		fprintf(stderr, "mxgate: out of memory\n");
		abort();
	}
	return copy;
}

/* Replace an owned string. */
static void
set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

static void
string_list_free(struct string_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static void
string_list_add(struct string_list *list, const char *value)
{
	char  **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));

	if (grown == NULL)
		abort();
	list->items = grown;
	list->items[list->count++] = xstrdup(value);
}

/* A setting's name for messages; a list element goes by its list's name. */
static const char *
label(const config_setting_t *s)
{
	const char *name = config_setting_name(s);

	if (name == NULL && config_setting_parent(s) != NULL)
		name = config_setting_name(config_setting_parent(s));
	return name ? name : "value";
}

static bool
is_number(const config_setting_t *s)
{
	int	t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
}

/* A whole number in [min, max]; reports and returns false otherwise. */
static bool
get_whole(struct loader *ld, const config_setting_t *s, double min, double max,
	  unsigned long *out)
{
	int	t = config_setting_type(s);
	long long v;

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		loader_error(ld, s, "%s: expected a whole number", label(s));
		return false;
	}
	v = config_setting_get_int64(s);
	if ((double)v < min || (double)v > max) {
		loader_error(ld, s, "%s: %lld is out of range (%.0f to %.0f)",
			     label(s), v, min, max);
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

static bool
get_enum(struct loader *ld, const config_setting_t *s, const char *const *words, int *out)
{
	char	choices[200];
	const char *value = config_setting_get_string(s);
	int	i;

	if (value == NULL) {
		loader_error(ld, s, "%s: expected a string", label(s));
		return false;
	}
	if ((i = word_index(words, value)) < 0) {
		words_join(words, choices, sizeof(choices));
		loader_error(ld, s, "%s: unknown value \"%s\" (expected %s)",
			     label(s), value, choices);
		return false;
	}
	*out = i;
	return true;
}

static void parse_group(struct loader *ld, struct config *cfg,
			const config_setting_t *group, const struct key_spec *keys);
static void parse_rules(struct loader *ld, struct config *cfg, const config_setting_t *list);

/* Store one setting as its spec says. */
static void
parse_key(struct loader *ld, struct config *cfg, const config_setting_t *s,
	  const struct key_spec *k)
{
	void   *slot = (char *)cfg + k->offset;
	const char *name = label(s);
	unsigned long whole;
	int	t = config_setting_type(s);

	switch (k->type) {
	case KT_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			loader_error(ld, s, "%s: expected true or false", name);
		else
			*(bool *)slot = config_setting_get_bool(s);
		break;
	case KT_UINT:
		if (get_whole(ld, s, k->min, k->max, &whole))
			*(unsigned *)slot = (unsigned)whole;
		break;
	case KT_ULONG:
		if (get_whole(ld, s, k->min, k->max, &whole))
			*(unsigned long *)slot = whole;
		break;
	case KT_DOUBLE:
		if (!is_number(s))
			loader_error(ld, s, "%s: expected a number", name);
		else {
			double	v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
			    : (double)config_setting_get_int64(s);

			if (v < k->min || v > k->max)
				loader_error(ld, s, "%s: %g is out of range (%g to %g)",
					     name, v, k->min, k->max);
			else
				*(double *)slot = v;
		}
		break;
	case KT_STRING:
		if (t != CONFIG_TYPE_STRING)
			loader_error(ld, s, "%s: expected a string", name);
		else
			set_string((char **)slot, config_setting_get_string(s));
		break;
	case KT_ENUM:
		get_enum(ld, s, k->words, (int *)slot);
		break;
	case KT_FACILITY:{
			const char *v = config_setting_get_string(s);
			size_t	i;

			for (i = 0; v && i < sizeof(facilities) / sizeof(facilities[0]); i++)
				if (strcmp(v, facilities[i].name) == 0)
					break;
			if (v == NULL || i == sizeof(facilities) / sizeof(facilities[0]))
				loader_error(ld, s, "%s: unknown syslog facility \"%s\"",
					     name, v ? v : "");
			else
				*(int *)slot = facilities[i].value;
			break;
		}
	case KT_STRLIST:
	case KT_CIDRLIST:
		if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
			loader_error(ld, s, "%s: expected a list of strings [ \"...\" ]", name);
			break;
		}
		if (k->type == KT_STRLIST)
			string_list_free(slot);
		else
			cidr_list_free(slot);
		for (int i = 0; i < config_setting_length(s); i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *v = config_setting_get_string(e);
			struct cidr net;

			if (v == NULL)
				loader_error(ld, e, "%s: element %d is not a string", name, i + 1);
			else if (k->type == KT_STRLIST)
				string_list_add(slot, v);
			else if (!cidr_parse(v, &net))
				loader_error(ld, e, "%s: bad network \"%s\" (expected ADDRESS or ADDRESS/PREFIX)", name, v);
			else if (!cidr_list_add(slot, &net))
				abort();
		}
		break;
	case KT_GROUP:
		if (t != CONFIG_TYPE_GROUP)
			loader_error(ld, s, "%s: expected a group { ... }", name);
		else
			parse_group(ld, cfg, s, k->group);
		break;
	case KT_RULES:
		if (t != CONFIG_TYPE_LIST)
			loader_error(ld, s, "%s: expected a list of rules ( { ... }, ... )", name);
		else
			parse_rules(ld, cfg, s);
		break;
	}
}

static const struct key_spec *
find_key(const struct key_spec *keys, const char *name)
{
	for (; keys->name; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

static void
parse_group(struct loader *ld, struct config *cfg, const config_setting_t *group,
	    const struct key_spec *keys)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const struct key_spec *k = find_key(keys, config_setting_name(s));

		if (k == NULL)
			loader_error(ld, s, "unknown setting \"%s\"", config_setting_name(s));
		else
			parse_key(ld, cfg, s, k);
	}
}

bool
config_parse_limit(const char *text, struct rate_limit *out)
{
	unsigned long n = 0, k = 0, unit;
	const char *p = text;
	int	digits = 0;

	for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
		n = n * 10 + (unsigned long)(*p - '0');
	if (digits == 0 || n == 0 || *p++ != '/')
		return false;
	for (digits = 0; *p >= '0' && *p <= '9' && digits < 7; p++, digits++)
		k = k * 10 + (unsigned long)(*p - '0');
	if (digits == 0)
		k = 1;
	switch (*p++) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return false;
	}
	/* memcached reads a TTL over 30 days as a point in time. */
	if (*p != '\0' || k == 0 || k * unit > 30UL * 86400)
		return false;
	out->count = n;
	out->period = k * unit;
	return true;
}

static void
limits_free(struct rate_limits *limits)
{
	free(limits->items);
	limits->items = NULL;
	limits->count = 0;
}

static void
parse_limits(struct loader *ld, const config_setting_t *s, struct rate_limits *out)
{
	int	t = config_setting_type(s);

	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		loader_error(ld, s, "limits: expected a list such as [ \"100/1m\", \"2000/1h\" ]");
		return;
	}
	limits_free(out);
	out->items = calloc((size_t)config_setting_length(s) + 1, sizeof(*out->items));
	if (out->items == NULL)
		abort();
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || !config_parse_limit(v, &out->items[out->count]))
			loader_error(ld, e, "limits: bad limit \"%s\" (expected N/PERIOD, "
				     "e.g. 100/1m; PERIOD in s, m, h or d, at most 30d)",
				     v ? v : "(not a string)");
		else
			out->count++;
	}
}

static bool
valid_rule_name(const char *name)
{
	size_t	len = strlen(name);

	if (len == 0 || len >= CONFIG_MAX_RULE_NAME)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

static void
parse_classes(struct loader *ld, struct rate_rule *rule, const config_setting_t *s)
{
	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		loader_error(ld, s, "classes: expected a list ( { match = \"...\"; limits = [ ... ]; }, ... )");
		return;
	}
	rule->classes = calloc((size_t)config_setting_length(s) + 1, sizeof(*rule->classes));
	if (rule->classes == NULL)
		abort();
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		struct rate_class *c = &rule->classes[rule->nclasses++];
		bool	have_match = false, have_limits = false;

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			loader_error(ld, g, "classes: element %d is not a group { ... }", i + 1);
			continue;
		}
		for (int j = 0; j < config_setting_length(g); j++) {
			const config_setting_t *f = config_setting_get_elem(g, (unsigned)j);
			const char *fname = config_setting_name(f);

			if (strcmp(fname, "match") == 0) {
				const char *v = config_setting_get_string(f);

				if (v == NULL) {
					loader_error(ld, f, "match: expected a string");
					continue;
				}
				set_string(&c->match, v);
				have_match = true;
				/* A client_ip class may be a network. */
				if (rule->keys == RATE_KEY_CLIENT_IP && strpbrk(v, "*?[") == NULL) {
					if (!cidr_parse(v, &c->cidr))
						loader_error(ld, f, "match: bad network \"%s\"", v);
					c->is_cidr = true;
				}
			} else if (strcmp(fname, "limits") == 0) {
				parse_limits(ld, f, &c->limits);
				have_limits = true;
			} else
				loader_error(ld, f, "unknown setting \"%s\" in a class", fname);
		}
		if (!have_match || !have_limits)
			loader_error(ld, g, "class %d: needs both match and limits", i + 1);
	}
}

static void
parse_rule(struct loader *ld, struct rate_rule *rule, const config_setting_t *g)
{
	const config_setting_t *f, *classes = NULL;
	bool	have_limits = false;
	int	v;

	rule->ipv4_prefix = 32;
	rule->ipv6_prefix = 64;
	/* key first: how classes are matched depends on it. */
	for (int j = 0; j < config_setting_length(g); j++) {
		unsigned long whole;
		const char *fname;

		f = config_setting_get_elem(g, (unsigned)j);
		fname = config_setting_name(f);
		if (strcmp(fname, "name") == 0) {
			const char *name = config_setting_get_string(f);

			if (name == NULL || !valid_rule_name(name))
				loader_error(ld, f, "name: expected 1 to %d letters, digits, '_', '.' or '-'",
					     CONFIG_MAX_RULE_NAME - 1);
			else
				snprintf(rule->name, sizeof(rule->name), "%s", name);
		} else if (strcmp(fname, "key") == 0) {
			int	t = config_setting_type(f);

			if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
				loader_error(ld, f, "key: expected a list such as [ \"client_ip\" ]");
				continue;
			}
			for (int i = 0; i < config_setting_length(f); i++) {
				const config_setting_t *e = config_setting_get_elem(f, (unsigned)i);

				if (get_enum(ld, e, key_words, &v))
					rule->keys |= 1u << v;
			}
		} else if (strcmp(fname, "count") == 0) {
			if (get_enum(ld, f, count_words, &v))
				rule->count = (enum rate_count)v;
		} else if (strcmp(fname, "limits") == 0) {
			parse_limits(ld, f, &rule->limits);
			have_limits = true;
		} else if (strcmp(fname, "classes") == 0) {
			classes = f;
		} else if (strcmp(fname, "when") == 0) {
			if (get_enum(ld, f, when_words, &v))
				rule->when = (enum rate_when)v;
		} else if (strcmp(fname, "action") == 0) {
			if (get_enum(ld, f, action_words, &v))
				rule->action = (enum rate_action)v;
		} else if (strcmp(fname, "ipv4_prefix") == 0) {
			if (get_whole(ld, f, 1, 32, &whole))
				rule->ipv4_prefix = (unsigned)whole;
		} else if (strcmp(fname, "ipv6_prefix") == 0) {
			if (get_whole(ld, f, 1, 128, &whole))
				rule->ipv6_prefix = (unsigned)whole;
		} else
			loader_error(ld, f, "unknown setting \"%s\" in a rule", fname);
	}
	if (classes)
		parse_classes(ld, rule, classes);
	if (rule->name[0] == '\0')
		loader_error(ld, g, "rule: needs a name");
	if (rule->keys == 0)
		loader_error(ld, g, "rule \"%s\": needs a key", rule->name);
	if (!have_limits && classes == NULL)
		loader_error(ld, g, "rule \"%s\": needs limits or classes", rule->name);
	if (rule->count == RATE_COUNT_CONNECTIONS &&
	    (rule->keys & ~(unsigned)(RATE_KEY_CLIENT_IP | RATE_KEY_HELO)) != 0)
		loader_error(ld, g, "rule \"%s\": count = \"connections\" can only be keyed "
			     "by client_ip and helo", rule->name);
	if (rule->count != RATE_COUNT_RECIPIENTS &&
	    (rule->keys & (RATE_KEY_RECIPIENT | RATE_KEY_RECIPIENT_DOMAIN)) != 0)
		loader_error(ld, g, "rule \"%s\": a recipient key needs count = \"recipients\"",
			     rule->name);
}

static void
parse_rules(struct loader *ld, struct config *cfg, const config_setting_t *list)
{
	size_t	n = (size_t)config_setting_length(list);

	cfg->ratelimit.rules = calloc(n + 1, sizeof(*cfg->ratelimit.rules));
	if (cfg->ratelimit.rules == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		struct rate_rule *rule = &cfg->ratelimit.rules[cfg->ratelimit.nrules];

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			loader_error(ld, g, "rules: element %zu is not a group { ... }", i + 1);
			continue;
		}
		cfg->ratelimit.nrules++;
		parse_rule(ld, rule, g);
		for (size_t j = 0; j + 1 < cfg->ratelimit.nrules; j++)
			if (rule->name[0] && strcmp(cfg->ratelimit.rules[j].name, rule->name) == 0)
				loader_error(ld, g, "rule \"%s\": name used twice", rule->name);
	}
}

static void config_free(struct config *cfg);
static void config_snapshot_free(struct snapshot *snap);

/* Fill every default (contrib/mxgate.conf.example lists them). */
static void
config_defaults(struct config *cfg)
{
	static const char *const trusted[] = {"127.0.0.0/8", "::1/128"};
	struct cidr net;

	snapshot_init(&cfg->snap, config_snapshot_free);
	cfg->path = xstrdup("");
	cfg->socket = xstrdup("inet:8891@127.0.0.1");
	cfg->engine = ENGINE_LIBMILTER;
	cfg->user = xstrdup("");
	cfg->pidfile = xstrdup("");
	cfg->syslog_facility = LOG_MAIL;
	cfg->log_level = LOG_LEVEL_INFO;
	for (size_t i = 0; i < 2; i++)
		if (cidr_parse(trusted[i], &net))
			cidr_list_add(&cfg->trusted_networks, &net);

	cfg->memcached.key_prefix = xstrdup("mxgate:");
	cfg->memcached.timeout_ms = 200;
	cfg->memcached.on_error = ON_ERROR_ACCEPT;

	cfg->mysql.host = xstrdup("");
	cfg->mysql.socket = xstrdup("");
	cfg->mysql.user = xstrdup("");
	cfg->mysql.password = xstrdup("");
	cfg->mysql.database = xstrdup("");
	cfg->mysql.port = 3306;
	cfg->mysql.timeout_ms = 1000;
	cfg->mysql.quota_query = xstrdup("SELECT quota, maildir FROM mailbox WHERE username = ? AND active = 1");
	cfg->mysql.alias_query = xstrdup("SELECT goto FROM alias WHERE address = ? AND active = 1");
	cfg->mysql.alias_domain_query = xstrdup("SELECT target_domain FROM alias_domain WHERE alias_domain = ? AND active = 1");

	cfg->helo.enabled = true;
	cfg->helo.reject_non_fqdn = true;
	cfg->helo.reject_invalid = true;
	cfg->helo.enforce_at = ENFORCE_RCPT;
	cfg->helo.exempt_authenticated = true;

	cfg->quota.enabled = true;
	cfg->quota.maildir_root = xstrdup("/var/vmail");
	cfg->quota.maildir_template = xstrdup("%d/%l/");
	cfg->quota.recipient_delimiter = xstrdup("+");
	cfg->quota.use_message_size = true;
	cfg->quota.cache_ttl = 30;
	cfg->quota.multi_target = MULTI_TARGET_ALL;
	cfg->quota.on_error = ON_ERROR_TEMPFAIL;
	cfg->quota.reply_code = 552;
	cfg->quota.reply_dsn = xstrdup("5.2.2");

	cfg->ratelimit.enabled = true;

	cfg->overload.enabled = true;
	cfg->overload.flag_file = xstrdup("");
	cfg->overload.queue_directory = xstrdup("");
	cfg->overload.loadavg_file = xstrdup("/proc/loadavg");
	cfg->overload.queue_format = QUEUE_FORMAT_POSTFIX;
	cfg->overload.sample_interval = 5;
}

static const config_setting_t *
lookup(const config_t *cf, const char *path)
{
	return cf ? config_lookup(cf, path) : NULL;
}

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

/* Checks that involve more than one key, or a key's inner syntax. */
static void
config_validate(struct loader *ld, const config_t *cf, struct config *cfg)
{
	const config_setting_t *s;
	size_t	marks;
	struct milter_socket sock;
	char	why[300];

	if (!milter_socket_parse(cfg->socket, &sock, why, sizeof(why)))
		loader_error(ld, lookup(cf, "socket"), "socket: %s", why);
	for (size_t i = 0; i < cfg->memcached.servers.count; i++)
		if (!valid_server(cfg->memcached.servers.items[i]))
			loader_error(ld, lookup(cf, "memcached.servers"),
				     "servers: \"%s\" is not host:port", cfg->memcached.servers.items[i]);
	s = lookup(cf, "memcached.key_prefix");
	if (strlen(cfg->memcached.key_prefix) > 32 ||
	    strspn(cfg->memcached.key_prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
	    != strlen(cfg->memcached.key_prefix))
		loader_error(ld, s, "key_prefix: at most 32 letters, digits, '_', '.', ':' or '-'");

	const char *queries[] = {cfg->mysql.quota_query, cfg->mysql.alias_query, cfg->mysql.alias_domain_query};
	const char *qnames[] = {"mysql.quota_query", "mysql.alias_query", "mysql.alias_domain_query"};

	for (size_t i = 0; i < 3; i++) {
		const char *q = strchr(queries[i], '?');

		if (q == NULL || strchr(q + 1, '?') != NULL)
			loader_error(ld, lookup(cf, qnames[i]),
				     "%s: needs exactly one '?' placeholder", qnames[i] + 6);
	}
	if (cfg->mysql.user[0] == '\0' && (cfg->mysql.host[0] || cfg->mysql.socket[0]))
		loader_error(ld, lookup(cf, "mysql"), "mysql: host or socket is set but user is empty");

	if ((cfg->quota.reply_code / 100 != 4 && cfg->quota.reply_code / 100 != 5) ||
	    cfg->quota.reply_dsn[0] != (char)('0' + cfg->quota.reply_code / 100) ||
	    strlen(cfg->quota.reply_dsn) > 11 ||
	    strspn(cfg->quota.reply_dsn, "0123456789.") != strlen(cfg->quota.reply_dsn) ||
	    strstr(cfg->quota.reply_dsn, "..") || cfg->quota.reply_dsn[1] != '.')
		loader_error(ld, lookup(cf, "quota.reply_dsn") ? lookup(cf, "quota.reply_dsn")
			     : lookup(cf, "quota.reply_code"),
			     "reply_code %u with reply_dsn \"%s\": need a 4xx or 5xx code and "
			     "a DSN of the same class (e.g. 552 and 5.2.2)",
			     cfg->quota.reply_code, cfg->quota.reply_dsn);
	if (strstr(cfg->quota.maildir_template, "..") ||
	    strspn(cfg->quota.maildir_template, "%dlu/._-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	    != strlen(cfg->quota.maildir_template))
		loader_error(ld, lookup(cf, "quota.maildir_template"),
			     "maildir_template: only %%d, %%l, %%u, '/', letters and digits are allowed");
	for (const char *p = cfg->quota.maildir_template; (p = strchr(p, '%')) != NULL; p += 2)
		if (p[1] != 'd' && p[1] != 'l' && p[1] != 'u') {
			loader_error(ld, lookup(cf, "quota.maildir_template"),
				     "maildir_template: unknown escape %%%c (expected %%d, %%l or %%u)",
				     p[1] ? p[1] : ' ');
			break;
		}
	if (cfg->quota.maildir_root[0] != '/')
		loader_error(ld, lookup(cf, "quota.maildir_root"),
			     "maildir_root: must be an absolute path");
	if (strpbrk(cfg->quota.recipient_delimiter, "@ \t\r\n") != NULL)
		loader_error(ld, lookup(cf, "quota.recipient_delimiter"),
			     "recipient_delimiter: must not contain '@' or white space");

	marks = cfg->overload.queue_high > 0;
	if (marks && cfg->overload.queue_low > cfg->overload.queue_high)
		loader_error(ld, lookup(cf, "overload.queue_low"),
			     "queue_low (%lu) is above queue_high (%lu)",
			     cfg->overload.queue_low, cfg->overload.queue_high);
	if (cfg->overload.load_high > 0 && cfg->overload.load_low > cfg->overload.load_high)
		loader_error(ld, lookup(cf, "overload.load_low"),
			     "load_low (%g) is above load_high (%g)",
			     cfg->overload.load_low, cfg->overload.load_high);
	if (cfg->overload.queue_high > 0 && cfg->overload.queue_directory[0] == '\0')
		loader_error(ld, lookup(cf, "overload.queue_high"),
			     "queue_high is set but queue_directory is empty");
}

/* The last reference is gone. */
static void
config_snapshot_free(struct snapshot *snap)
{
	config_free(snapshot_owner(snap, struct config, snap));
}

static void
config_free(struct config *cfg)
{
	char  **strings[] = {
		&cfg->path, &cfg->socket, &cfg->user, &cfg->pidfile,
		&cfg->memcached.key_prefix, &cfg->mysql.host, &cfg->mysql.socket,
		&cfg->mysql.user, &cfg->mysql.password, &cfg->mysql.database,
		&cfg->mysql.quota_query, &cfg->mysql.alias_query,
		&cfg->mysql.alias_domain_query, &cfg->quota.maildir_root,
		&cfg->quota.maildir_template, &cfg->quota.recipient_delimiter,
		&cfg->quota.reply_dsn, &cfg->overload.flag_file,
		&cfg->overload.queue_directory, &cfg->overload.loadavg_file,
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		free(*strings[i]);
	cidr_list_free(&cfg->trusted_networks);
	string_list_free(&cfg->memcached.servers);
	string_list_free(&cfg->helo.exempt_daemons);
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++) {
		struct rate_rule *rule = &cfg->ratelimit.rules[i];

		limits_free(&rule->limits);
		for (size_t j = 0; j < rule->nclasses; j++) {
			free(rule->classes[j].match);
			limits_free(&rule->classes[j].limits);
		}
		free(rule->classes);
	}
	free(cfg->ratelimit.rules);
	free(cfg);
}

struct config *
config_load(const char *path, config_report_fn *report, void *arg)
{
	struct loader ld = {path ? path : "(defaults)", report, arg, 0};
	static atomic_ulong loads;
	struct config *cfg = calloc(1, sizeof(*cfg));
	config_t cf;
	FILE   *fp;

	if (cfg == NULL)
		return NULL;
	config_defaults(cfg);
	cfg->generation = atomic_fetch_add(&loads, 1) + 1;
	if (path == NULL)
		return cfg;
	set_string(&cfg->path, path);
	if ((fp = fopen(path, "r")) == NULL) {
		loader_error(&ld, NULL, "cannot open: %s", strerror(errno));
		config_free(cfg);
		return NULL;
	}
	fclose(fp);
	config_init(&cf);
	config_set_include_dir(&cf, SYSCONFDIR);
	if (!config_read_file(&cf, path)) {
		char	msg[600];

		snprintf(msg, sizeof(msg), "%s:%d: %s", config_error_file(&cf) ? config_error_file(&cf) : path,
			 config_error_line(&cf), config_error_text(&cf));
		ld.errors++;
		if (report)
			report(arg, msg);
	} else {
		parse_group(&ld, cfg, config_root_setting(&cf), top_keys);
		config_validate(&ld, &cf, cfg);
	}
	config_destroy(&cf);
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
