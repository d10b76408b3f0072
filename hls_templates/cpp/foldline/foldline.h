// Foldline HLS kernels: everything a generated project includes.
#ifndef FOLDLINE_H_
#define FOLDLINE_H_

#include "foldline_types.h"
#include "foldline_requant.h"
#include "foldline_mac.h"
#include "foldline_window.h"
#include "foldline_conv2d.h"
#include "foldline_linear.h"
#include "foldline_pool.h"
#include "foldline_add.h"
#include "foldline_concat.h"
#include "foldline_upsample.h"
#include "foldline_lookup.h"

#endif
