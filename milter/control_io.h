/*
 * control_io.h - bounded reads and writes on the control socket, for the
 * server (control.c) and mxgatectl: every wait has a deadline, so a peer
 * that stops reading or writing costs at most that much time.
 *
 * Contract: the descriptors are non-blocking; a deadline is a clock_ms()
 * value (clock.h).  Thread-safety: no state.
 */
#ifndef MXGATE_CONTROL_IO_H
#define MXGATE_CONTROL_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONTROL_IO_TIMEOUT	(-2)	/* control_io_read(): the deadline passed */

/* Read up to len bytes once some are there: their count, 0 at end of file, -1 on error, or CONTROL_IO_TIMEOUT. */
ssize_t	control_io_read(int fd, void *buf, size_t len, uint64_t deadline_ms);

/* Write all of buf before the deadline; false on error or timeout. */
bool	control_io_write(int fd, const void *buf, size_t len, uint64_t deadline_ms);

#endif
