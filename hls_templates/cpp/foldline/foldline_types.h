// Foldline HLS kernels: shared types.
//
// Integer types follow the integer contract (docs/hls.md): hidden activations ap_uint<b>,
// network input/output ap_int<b>, weights ap_int<wb>, accumulators ap_int<P> at the proven
// folded-form width, requantization multipliers ap_uint<16> and shifts ap_uint<6> (0..60).
#ifndef FOLDLINE_TYPES_H_
#define FOLDLINE_TYPES_H_

#include "ap_int.h"
#include "hls_stream.h"
#ifndef __SYNTHESIS__
#include <stdint.h>
#endif

namespace foldline {

typedef ap_uint<16> multiplier_t;  // M: unsigned 16-bit (exporters/requant.py)
typedef ap_uint<6> shift_t;        // n: 0..60

// table_element<T>::type: the element type of a constant table (weights, taps, biases, M, n)
// holding T values. In synthesis it is T itself. In C simulation (g++, or the vendor tool's csim) an ap_int<W> /
// ap_uint<W> with W <= 64 is stored as the narrowest built-in integer of the same sign: a table
// of those is constant-initialized data, whereas a table of ap types is built by a static
// initializer, one constructor call per element, which g++ compiles in superlinear time (a
// 1568 x 64 weight table crashed g++ -O2; docs/hls.md, "C simulation here"). Every value of T
// fits the built-in type (a literal that does not is a compile error, braces forbid narrowing),
// and the kernels convert each element back to T where they read it, so the arithmetic is the
// same code in both.
template <class T>
struct table_element {
    typedef T type;
};
#ifndef __SYNTHESIS__
template <int BYTES, bool SIGNED>
struct builtin_int;
template <> struct builtin_int<1, true> { typedef int8_t type; };
template <> struct builtin_int<2, true> { typedef int16_t type; };
template <> struct builtin_int<4, true> { typedef int32_t type; };
template <> struct builtin_int<8, true> { typedef int64_t type; };
template <> struct builtin_int<1, false> { typedef uint8_t type; };
template <> struct builtin_int<2, false> { typedef uint16_t type; };
template <> struct builtin_int<4, false> { typedef uint32_t type; };
template <> struct builtin_int<8, false> { typedef uint64_t type; };

template <class T, int W, bool SIGNED, bool FITS = (W <= 64)>
struct builtin_storage {
    typedef T type;  // wider than 64 bits: keep the ap type
};
template <class T, int W, bool SIGNED>
struct builtin_storage<T, W, SIGNED, true> {
    typedef typename builtin_int<(W <= 8 ? 1 : W <= 16 ? 2 : W <= 32 ? 4 : 8), SIGNED>::type type;
};

template <int W>
struct table_element<ap_int<W> > : builtin_storage<ap_int<W>, W, true> {};
template <int W>
struct table_element<ap_uint<W> > : builtin_storage<ap_uint<W>, W, false> {};
#endif
// (a trait, not a C++11 alias template: Vivado HLS compiles its csim with g++ 4.6, which has none)
typedef table_element<multiplier_t>::type multiplier_table_t;
typedef table_element<shift_t>::type shift_table_t;

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
// Zero weights are never listed, so they cost nothing (docs/hls.md, "Zero weights"). The members
// are table elements: the ap types in synthesis, built-in integers in C simulation.
template <class weight_T, class tap_T, class out_T>
struct nonzero {
    typename table_element<out_T>::type out;
    typename table_element<tap_T>::type tap;
    typename table_element<weight_T>::type weight;
};

// Geometry of a sliding window over a padded (C, H, W) map (a 1-D map is one row, H = 1), derived
// from a layer config with in_height, in_width, n_chan, filt_height, filt_width, stride_height,
// stride_width, dil_height, dil_width, pad_top, pad_left, pad_bottom, pad_right, out_height,
// out_width. pad_bottom / pad_right are pad_top / pad_left plus ceil mode's end padding; the taps of
// a window are dil_height (dil_width) apart, so a window spans dil * (filt - 1) + 1 rows (columns).
template <class CONFIG_T>
struct window_geometry {
    static constexpr unsigned span_height = CONFIG_T::dil_height * (CONFIG_T::filt_height - 1) + 1;
    static constexpr unsigned span_width = CONFIG_T::dil_width * (CONFIG_T::filt_width - 1) + 1;
    static constexpr unsigned padded_height = CONFIG_T::in_height + CONFIG_T::pad_top + CONFIG_T::pad_bottom;
    static constexpr unsigned padded_width = CONFIG_T::in_width + CONFIG_T::pad_left + CONFIG_T::pad_right;
    static constexpr unsigned line_rows = span_height > 1 ? span_height - 1 : 1;
    static constexpr unsigned n_window = CONFIG_T::filt_height * CONFIG_T::filt_width;
    static constexpr unsigned n_taps = n_window * CONFIG_T::n_chan;
    static_assert(CONFIG_T::out_height == (padded_height - span_height) / CONFIG_T::stride_height + 1,
                  "out_height does not match the padded input, kernel, dilation and stride");
    static_assert(CONFIG_T::out_width == (padded_width - span_width) / CONFIG_T::stride_width + 1,
                  "out_width does not match the padded input, kernel, dilation and stride");
};

}  // namespace foldline

#endif
