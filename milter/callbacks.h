/*
 * callbacks.h - the libmilter side of mxgate.
 */
#ifndef MXGATE_CALLBACKS_H
#define MXGATE_CALLBACKS_H

/* Register the filter with libmilter (smfi_register); 0 on success. */
int	callbacks_register(void);

#endif
