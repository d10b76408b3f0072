// Foldline HLS kernels: shared types.
//
// Integer types follow the integer contract (docs/hls.md): hidden activations ap_uint<b>,
// network input/output ap_int<b>, weights ap_int<wb>, accumulators ap_int<P> at the proven
// folded-form width, requantization multipliers ap_uint<16> and shifts ap_uint<6> (0..60).
#ifndef FOLDLINE_TYPES_H_
#define FOLDLINE_TYPES_H_

#include "ap_int.h"
#include "hls_stream.h"

namespace foldline {

typedef ap_uint<16> multiplier_t;  // M: unsigned 16-bit (exporters/requant.py)
typedef ap_uint<6> shift_t;        // n: 0..60

// One pixel of a feature map (all channels), or a whole vector: the element of a stream.
template <class T, unsigned N>
struct array {
    typedef T value_type;
    static constexpr unsigned size = N;
    T data[N];
    T &operator[](unsigned i) { return data[i]; }
    const T &operator[](unsigned i) const { return data[i]; }
};

// One nonzero weight of a multiply-accumulate layer: acc[out] += weight * x[tap].
// Zero weights are never listed, so they cost nothing (docs/hls.md, "Zero weights").
template <class weight_T, class tap_T, class out_T>
struct nonzero {
    out_T out;
    tap_T tap;
    weight_T weight;
};

// Geometry of a sliding window over a padded (C, H, W) map, derived from a layer config with
// in_height, in_width, n_chan, filt_height, filt_width, stride_height, stride_width, pad_top,
// pad_left, out_height, out_width. Padding is symmetric (pad_bottom = pad_top).
template <class CONFIG_T>
struct window_geometry {
    static constexpr unsigned padded_height = CONFIG_T::in_height + 2 * CONFIG_T::pad_top;
    static constexpr unsigned padded_width = CONFIG_T::in_width + 2 * CONFIG_T::pad_left;
    static constexpr unsigned line_rows = CONFIG_T::filt_height > 1 ? CONFIG_T::filt_height - 1 : 1;
    static constexpr unsigned n_window = CONFIG_T::filt_height * CONFIG_T::filt_width;
    static constexpr unsigned n_taps = n_window * CONFIG_T::n_chan;
    static_assert(CONFIG_T::out_height == (padded_height - CONFIG_T::filt_height) / CONFIG_T::stride_height + 1,
                  "out_height does not match the padded input, kernel and stride");
    static_assert(CONFIG_T::out_width == (padded_width - CONFIG_T::filt_width) / CONFIG_T::stride_width + 1,
                  "out_width does not match the padded input, kernel and stride");
};

}  // namespace foldline

#endif
