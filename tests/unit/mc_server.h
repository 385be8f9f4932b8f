/*
 * mc_server.h - a real memcached for the unit tests, started as
 * tests/e2e/lib/memcached.sh starts one: on 127.0.0.1 only, no UDP, as
 * "nobody" when run as root, on a port that was free a moment before.
 *
 * Contract: every wait is bounded (10 s to answer, 5 s to stop); the
 * server's output goes to /dev/null, so that it never holds a test's
 * TAP pipe open.  Thread-safety: call from the test's main thread.
 */
#ifndef MXGATE_TEST_MC_SERVER_H
#define MXGATE_TEST_MC_SERVER_H

#include <sys/types.h>

/* Start memcached; its pid and *port, or -1 when it cannot start or does not answer. */
pid_t	mc_server_start(unsigned *port);

/* SIGTERM, SIGKILL after 5 s, and reap it. */
void	mc_server_stop(pid_t pid);

/* The memcached of one cmocka test: *state is a struct mc_fixture. */
struct mc_fixture {
	unsigned port;
	pid_t pid;
};

/* cmocka setup: start the test's memcached (a failure fails the test). */
int	mc_fixture_setup(void **state);

/* cmocka teardown: stop the rate-limit stores and the server, whatever the test did. */
int	mc_fixture_teardown(void **state);

#endif
