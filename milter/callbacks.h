/*
 * callbacks.h - mxgate's steps of the milter protocol, for engine.h.
 */
#ifndef MXGATE_CALLBACKS_H
#define MXGATE_CALLBACKS_H

#include "engine.h"

extern const struct milter_callbacks mxgate_callbacks;

#endif
