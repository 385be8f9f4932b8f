/*
 * fuzz_server_addr.c - libFuzzer target for the server-list entry parser
 * (milter/server_addr.h, mysql.servers).
 *
 * Feeds the input (up to its first NUL) to server_addr_parse() and checks
 * what an accepted entry must be: a unix socket with an absolute path and
 * no host or port, or a host and a port 1..65535 and no socket; an IPv6
 * host only from the bracketed form; and the entry written back in its
 * canonical form parses to the same parts.  Built with clang
 * -fsanitize=fuzzer, or with standalone_main.c to replay a corpus.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server_addr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	spec[1024], again[1024];
	struct server_addr a, b;

	if (size >= sizeof(spec))
		size = sizeof(spec) - 1;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (!server_addr_parse(spec, &a))
		return 0;
	if (a.socket[0] != '\0') {
		assert(a.socket[0] == '/' && a.host[0] == '\0' && a.port == 0);
		assert(strncmp(spec, "unix:", 5) == 0);
		snprintf(again, sizeof(again), "unix:%s", a.socket);
	} else {
		assert(a.host[0] != '\0' && a.port >= 1 && a.port <= 65535);
		assert(strchr(a.host, ':') == NULL || spec[0] == '[');
		snprintf(again, sizeof(again), strchr(a.host, ':') ? "[%s]:%u" : "%s:%u", a.host,
			 a.port);
	}
	assert(server_addr_parse(again, &b));
	assert(strcmp(a.host, b.host) == 0 && strcmp(a.socket, b.socket) == 0 && a.port == b.port);
	return 0;
}
