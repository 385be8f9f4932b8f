/*
 * metrics.c - the HTTP side of the metrics endpoint (metrics.h): run
 * libmicrohttpd, route GET /metrics to metrics_write().
 *
 * libmicrohttpd, because no hand-written HTTP parser should face the
 * network: it is GNU's small, well-kept HTTP server library, packaged by
 * Debian, and it brings its own thread, a connection limit and an idle
 * timeout, so a slow or hostile scraper costs one bounded connection
 * slot and never a milter thread.  It runs with one internal polling
 * thread (epoll where there is one): a scrape is rendered there, into a
 * memory stream, and handed to the library to send and free.
 *
 * Thread-safety: start and stop from the main thread; the handler runs on
 * the library's thread and reads only thread-safe state.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "engine.h"
#include "log.h"

#define CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define SPELLINGS	"inet:PORT@ADDRESS or inet6:PORT@[ADDRESS], with a numeric address"

static struct MHD_Daemon *daemon_handle;

/* A short text answer (text is static). */
static enum MHD_Result
reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The exposition, rendered now from the current configuration. */
static enum MHD_Result
reply_metrics(struct MHD_Connection *conn)
{
	const struct milter_engine *engine = milter_current();
	struct MHD_Response *resp;
	struct config *cfg;
	enum MHD_Result ret;
	char   *buf = NULL;
	size_t	len = 0;
	FILE   *fp;
	bool	ok;

	if ((fp = open_memstream(&buf, &len)) == NULL)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	cfg = config_current();
	ok = metrics_write(fp, cfg, engine ? engine->name : config_engine_name(cfg->engine));
	config_release(cfg);
	if (fclose(fp) != 0 || !ok) {
		free(buf);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	if ((resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE)) == NULL) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Every request: answered at once, from its method and path (a body is never read). */
static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	(void)cls, (void)version, (void)upload_data, (void)upload_size, (void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/metrics") != 0)
		return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
	return reply_metrics(conn);
}

/* libmicrohttpd's own messages, as warnings. */
static void __attribute__((format(printf, 2, 0)))
library_log(void *cls, const char *fmt, va_list ap)
{
	char	line[512];
	size_t	n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warning("metrics: %s", line);
}

bool
metrics_start(const struct config *cfg)
{
	struct sockaddr_storage addr;
	socklen_t len;
	char	why[128];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	uint16_t port;

	if (cfg->metrics[0] == '\0')
		return true;
	if (!metrics_parse(cfg->metrics, &addr, &len, why, sizeof(why))) {
		log_error("metrics = \"%s\": %s; want " SPELLINGS, cfg->metrics, why);
		return false;
	}
	if (addr.ss_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
		port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	} else
		port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
	/* The logger first: the library logs about the options after it to stderr. */
	daemon_handle = MHD_start_daemon(flags, port, NULL, NULL, answer, NULL,
					 MHD_OPTION_EXTERNAL_LOGGER, library_log, NULL,
					 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
					 MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS_MAX,
					 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_PER_CLIENT_MAX,
					 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S,
					 MHD_OPTION_END);
	if (daemon_handle == NULL) {
		log_error("metrics = \"%s\": cannot serve HTTP there", cfg->metrics);
		return false;
	}
	log_info("metrics on %s (GET /metrics)", cfg->metrics);
	return true;
}

void
metrics_stop(void)
{
	if (daemon_handle == NULL)
		return;
	MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
