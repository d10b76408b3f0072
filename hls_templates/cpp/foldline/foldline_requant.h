// Foldline HLS kernels: the contract's requantization rule, the one place C++ states it.
//
//     y = clamp(z + ((acc * M + 2^(n-1)) >> n), lo, hi)      >> arithmetic (floor); n = 0: no rounding term
//
// acc is ap_int<P>, M ap_uint<16>, so acc * M fits ap_int<P + 16> exactly; adding the
// rounding term needs one more bit. A fused ReLU is lo = z (set by the config).
#ifndef FOLDLINE_REQUANT_H_
#define FOLDLINE_REQUANT_H_

#include "foldline_types.h"

namespace foldline {

// floor((v + 2^(n-1)) / 2^n) for n > 0, v for n = 0; exact for every v in ap_int<W>.
template <int W>
ap_int<W> round_shift(ap_int<W> v, shift_t n) {
    #pragma HLS INLINE
    if (n == 0) return v;
    // |v| <= 2^(W-1) <= 2^(n-1): v + 2^(n-1) lies in [0, 2^n), the quotient is 0.
    if (n >= W) return 0;
    ap_int<W + 1> t = v;
    t += ap_int<W + 1>(1) << (n - 1);
    return ap_int<W>(t >> n);
}

// clamp(z + r, lo, hi), compared before adding z so that nothing can wrap.
template <class CONFIG_T, class res_T, int W>
res_T clamp_to_grid(ap_int<W> r) {
    #pragma HLS INLINE
    static_assert(CONFIG_T::out_lo <= CONFIG_T::out_zero && CONFIG_T::out_zero <= CONFIG_T::out_hi,
                  "the output zero point must lie in [out_lo, out_hi]");
    if (r < CONFIG_T::out_lo - CONFIG_T::out_zero) return res_T(CONFIG_T::out_lo);
    if (r > CONFIG_T::out_hi - CONFIG_T::out_zero) return res_T(CONFIG_T::out_hi);
    return res_T(r + CONFIG_T::out_zero);
}

// The shared requantizer of every accumulating layer (Conv, Linear, AvgPool, GlobalAvgPool).
template <class CONFIG_T, class res_T>
res_T requantize(typename CONFIG_T::accum_t acc, multiplier_t m, shift_t n) {
    #pragma HLS INLINE
    static constexpr int P = CONFIG_T::accum_bits;
    static_assert(CONFIG_T::accum_t::width == P, "accum_t must be ap_int<accum_bits>");
    ap_int<P + 16> product = acc * m;
    return clamp_to_grid<CONFIG_T, res_T, P + 16>(round_shift<P + 16>(product, n));
}

}  // namespace foldline

#endif
