/*
 * milter_pool.c - the connections of mxgate's own engine: a small pool of
 * threads blocks in accept(); a thread serves the connection it accepted
 * until it ends, then accepts again (a spare thread is started whenever the
 * last idle one takes a connection).  A connection's callbacks always run
 * on its own thread, one at a time.  pool_listen, pool_run and pool_stop
 * are the builtin engine's listen, run and stop (milter_builtin.h).
 *
 * Thread-safety: the pool counters and the list of open connections (for
 * milter_stop) are under one mutex, never held across I/O.
 */
#include "milter_builtin.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define ENGINE_START_THREADS	4		/* waiting in accept() from the start */
#define ENGINE_MAX_IDLE		32		/* more idle threads than this exit */
#define ENGINE_MAX_THREADS	4096		/* connections served at once */
#define ENGINE_STOP_WAIT_S	5		/* then a warning names the threads stop waits for */

/* Write the queued replies; false when the MTA is gone. */
static bool
conn_flush(struct milter_conn *c)
{
	size_t	off = 0;

	while (off < c->out_len) {
		ssize_t	n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	c->out_len = 0;
	return true;
}

/* Serve one accepted connection until it ends. */
static void
conn_serve(struct milter_conn *c)
{
	for (;;) {
		ssize_t	n;
		bool	open;

		if (!proto_in_reserve(c))
			break;
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* the MTA closed, or idle_timeout (SO_RCVTIMEO) passed */
		c->in_len += (size_t)n;
		open = proto_process(c);
		if (c->out_len > 0 && !conn_flush(c))
			break;
		if (!open)
			break;
	}
}


/* ---- the pool ---------------------------------------------------------- */

static struct {
	int	fd;
	char	unix_path[MILTER_SOCKET_PATH_MAX];
	const struct milter_callbacks *cb;
	unsigned timeout;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned threads, idle;
	bool	stopping;
	struct milter_conn *open;
} eng = {
	.fd = -1,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};


int
pool_listen(const struct milter_socket *sock)
{
	int	fd = listener_open(sock);

	if (fd < 0)
		return -1;
	eng.fd = fd;
	if (sock->family == MILTER_SOCKET_UNIX)
		strcpy(eng.unix_path, sock->path);
	return 0;
}

static void *worker_main(void *arg);

/* One more thread waiting in accept(); with eng.lock held. */
static void
spawn_locked(void)
{
	pthread_t t;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, worker_main, NULL) == 0) {
		eng.threads++;
		eng.idle++;
	} else
		log_warning("cannot start a milter thread: %s", strerror(errno));
	pthread_attr_destroy(&attr);
}

/*
 * How long a connection may wait on the MTA (SO_RCVTIMEO, SO_SNDTIMEO), and
 * no Nagle delay for TCP (the replies of a batch go out in one write
 * anyway).  Linux copies a TCP listener's options to each accepted socket,
 * so they are set once on the listener; a unix socket's connections
 * inherit nothing and are set one by one.
 */
static void
socket_options(int fd, bool tcp)
{
	struct timeval tv = {.tv_sec = (time_t)eng.timeout};
	int	one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * accept() failed with err, eng.lock held (and held again on return): out
 * of descriptors or memory, pause and log once in a while; an interrupted
 * or aborted accept is simply retried.
 */
static void
accept_failed(int err)
{
	static time_t logged;	/* under eng.lock */
	time_t	now;
	bool	say;

	if (err == EINTR || err == ECONNABORTED || err == EAGAIN)
		return;
	now = time(NULL);
	if ((say = now - logged >= 10))
		logged = now;
	pthread_mutex_unlock(&eng.lock);
	if (say)
		log_warning("milter accept: %s", strerror(err));
	usleep(100000);
	pthread_mutex_lock(&eng.lock);
}

/* A pool thread: accept, serve, accept again, until stop or too many are idle. */
static void *
worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&eng.lock);
	for (;;) {
		struct milter_conn *c;
		int	fd, err;

		/* idle: waiting in accept() */
		pthread_mutex_unlock(&eng.lock);
		fd = accept4(eng.fd, NULL, NULL, SOCK_CLOEXEC);
		err = errno;
		pthread_mutex_lock(&eng.lock);
		if (eng.stopping) {
			if (fd >= 0)
				close(fd);
			eng.idle--;
			break;
		}
		if (fd < 0) {
			accept_failed(err);
			continue;
		}
		if ((c = proto_conn_new(eng.cb, fd)) == NULL) {
			close(fd);
			continue;
		}
		/* busy: the last idle thread starts a spare before it serves */
		if (--eng.idle == 0 && eng.threads < ENGINE_MAX_THREADS)
			spawn_locked();
		c->next = eng.open;
		if (eng.open != NULL)
			eng.open->prev = c;
		eng.open = c;
		pthread_mutex_unlock(&eng.lock);

		if (eng.unix_path[0] != '\0')
			socket_options(fd, false);
		conn_serve(c);

		pthread_mutex_lock(&eng.lock);
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			eng.open = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		pthread_mutex_unlock(&eng.lock);
		proto_conn_free(c);	/* the filter's close runs outside the lock */
		pthread_mutex_lock(&eng.lock);
		if (eng.stopping || eng.idle >= ENGINE_MAX_IDLE)
			break;
		eng.idle++;
	}
	eng.threads--;
	pthread_cond_broadcast(&eng.changed);
	pthread_mutex_unlock(&eng.lock);
	return NULL;
}

int
pool_run(const struct milter_callbacks *cb, unsigned idle_timeout)
{
	struct timespec until;

	if (eng.fd < 0)
		return -1;
	pthread_mutex_lock(&eng.lock);
	eng.cb = cb;
	eng.timeout = idle_timeout;
	if (eng.unix_path[0] == '\0')
		socket_options(eng.fd, true);
	for (int i = 0; i < ENGINE_START_THREADS; i++)
		spawn_locked();
	if (eng.threads == 0) {
		pthread_mutex_unlock(&eng.lock);
		return -1;
	}
	while (!eng.stopping)
		pthread_cond_wait(&eng.changed, &eng.lock);
	/*
	 * Wake the threads in accept() and end the open connections: an MTA in
	 * mid-conversation sees the filter go away and applies its default
	 * action, as it would when a libmilter filter exits.
	 */
	shutdown(eng.fd, SHUT_RDWR);
	for (struct milter_conn *c = eng.open; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	/*
	 * Every thread must be gone before main() tears down what callbacks
	 * use; a thread still in a callback is bounded by its back end's
	 * timeout, so this ends.
	 */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ENGINE_STOP_WAIT_S;
	while (eng.threads > 0) {
		if (pthread_cond_timedwait(&eng.changed, &eng.lock, &until) == ETIMEDOUT) {
			log_warning("stopping: waiting for %u milter threads still in a callback", eng.threads);
			until.tv_sec += 3600;
		}
	}
	pthread_mutex_unlock(&eng.lock);
	close(eng.fd);
	eng.fd = -1;
	if (eng.unix_path[0] != '\0')
		unlink(eng.unix_path);
	return 0;
}

void
pool_stop(void)
{
	pthread_mutex_lock(&eng.lock);
	eng.stopping = true;
	pthread_cond_broadcast(&eng.changed);
	pthread_mutex_unlock(&eng.lock);
}
