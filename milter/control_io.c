/*
 * control_io.c - bounded reads and writes on the control socket
 * (control_io.h).
 */
#include "control_io.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"

/* Wait for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int
io_wait(int fd, short events, uint64_t deadline_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	uint64_t now;
	int	n;

	for (;;) {
		if ((now = clock_ms()) >= deadline_ms)
			return 0;
		n = poll(&pfd, 1, (int)(deadline_ms - now));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

ssize_t
control_io_read(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
	ssize_t	n;

	for (;;) {
		if ((n = read(fd, buf, len)) >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		switch (io_wait(fd, POLLIN, deadline_ms)) {
		case 0:
			return CONTROL_IO_TIMEOUT;
		case -1:
			return -1;
		}
	}
}

bool
control_io_write(int fd, const void *buf, size_t len, uint64_t deadline_ms)
{
	const char *p = buf;
	ssize_t	n;

	while (len > 0) {
		/* MSG_NOSIGNAL: a peer gone is an error here, never a SIGPIPE. */
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (io_wait(fd, POLLOUT, deadline_ms) != 1)
				return false;
		} else
			return false;
	}
	return true;
}
