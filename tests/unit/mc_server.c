/*
 * mc_server.c - a real memcached for the unit tests (mc_server.h).
 */
#include "mc_server.h"

#include "ratelimit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* 127.0.0.1:port. */
static struct sockaddr_in
loopback(unsigned port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* A TCP port on 127.0.0.1 that nothing listens on just now; 0 on failure. */
static unsigned
free_port(void)
{
	struct sockaddr_in sin = loopback(0);
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* True when a memcached answers "version" on 127.0.0.1:port within a second. */
static bool
answers(unsigned port)
{
	struct sockaddr_in sin = loopback(port);
	struct timeval tv = {1, 0};
	char buf[64] = "";
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    write(fd, "version\r\n", 9) == 9 && read(fd, buf, sizeof(buf) - 1) > 0)
		ok = strncmp(buf, "VERSION", 7) == 0;
	close(fd);
	return ok;
}

/* Spawn memcached on port with its standard streams on /dev/null; -1 on failure. */
static pid_t
spawn(unsigned port)
{
	char portstr[16];
	char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", portstr, "-U", "0", "-m", "16",
			"-t", "1", NULL, NULL, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	snprintf(portstr, sizeof(portstr), "%u", port);
	if (geteuid() == 0) {
		argv[11] = "-u";
		argv[12] = "nobody";
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, "memcached", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc == 0 ? pid : -1;
}

pid_t
mc_server_start(unsigned *port)
{
	pid_t	pid;

	if ((*port = free_port()) == 0 || (pid = spawn(*port)) < 0) {
		fprintf(stderr, "# cannot start memcached (is it installed?)\n");
		return -1;
	}
	for (int i = 0; i < 100 && !answers(*port); i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;	/* it exited */
		nanosleep(&ts, NULL);
	}
	if (answers(*port))
		return pid;
	fprintf(stderr, "# memcached did not answer on port %u within 10 s\n", *port);
	mc_server_stop(pid);
	return -1;
}

void
mc_server_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (waitpid(pid, NULL, WNOHANG) != 0)
			return;	/* reaped, or not ours any more */
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int
mc_fixture_setup(void **state)
{
	static struct mc_fixture mc;

	mc.pid = mc_server_start(&mc.port);
	*state = &mc;
	return mc.pid > 0 ? 0 : -1;
}

int
mc_fixture_teardown(void **state)
{
	struct mc_fixture *mc = *state;

	ratelimit_stop();
	mc_server_stop(mc->pid);
	return 0;
}
