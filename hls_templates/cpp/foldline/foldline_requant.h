// Foldline HLS kernels: the contract's requantization rule, the one place C++ states it.
//
//     y = clamp(z + ((acc * M + 2^(n-1)) >> n), lo, hi)      >> arithmetic (floor); n = 0: no rounding term
//
// acc is ap_int<P>, M ap_uint<16>, so acc * M fits ap_int<P + 16> exactly. A fused ReLU is
// lo = z (set by the config). shift_round_clamp computes the rule on the bits that matter
// (docs/hls.md, "Requantization"), so no adder is wider than the output plus one bit.
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

// clamp(z + ((v + 2^(n-1)) >> n), lo, hi) for every n >= SHIFT_MIN (a bound known at compile time),
// on narrow words. With q = v >> (n - 1), floor((v + 2^(n-1)) / 2^n) = floor((q + 1) / 2) = r, and
//     r < lo - z  <=>  q < 2 (lo - z) - 1,        r > hi - z  <=>  q > 2 (hi - z),
// so the clamp compares q with constants; in range, r + z = (q + 1 + 2 z) >> 1 lies in the output
// grid, whose B bits are the low B bits of that sum: a (B + 1)-bit adder, not a W-bit one.
// |q| < 2^(W - n), so q fits ap_int<W - max(SHIFT_MIN, 1) + 1>; n >= W gives r = 0, y = z.
template <class CONFIG_T, class res_T, int W, int SHIFT_MIN>
res_T shift_round_clamp(ap_int<W> v, shift_t n) {
    #pragma HLS INLINE
    static constexpr int B = res_T::width;
    static constexpr int Q = W - (SHIFT_MIN > 1 ? SHIFT_MIN : 1) + 1;
    static constexpr int LO = CONFIG_T::out_lo - CONFIG_T::out_zero, HI = CONFIG_T::out_hi - CONFIG_T::out_zero;
    static_assert(CONFIG_T::out_lo <= CONFIG_T::out_zero && CONFIG_T::out_zero <= CONFIG_T::out_hi,
                  "the output zero point must lie in [out_lo, out_hi]");
    static_assert(SHIFT_MIN >= 0, "a shift is never negative");
    if (n == 0) {  // no rounding term (only when SHIFT_MIN is 0)
        if (v < LO) return res_T(CONFIG_T::out_lo);
        if (v > HI) return res_T(CONFIG_T::out_hi);
        return res_T(ap_uint<B>(ap_uint<B>(v) + ap_uint<B>(CONFIG_T::out_zero)));
    }
    if (n >= W) return res_T(CONFIG_T::out_zero);
    ap_int<Q> q = v >> (n - 1);
    if (q < 2 * LO - 1) return res_T(CONFIG_T::out_lo);
    if (q > 2 * HI) return res_T(CONFIG_T::out_hi);
    ap_uint<B + 1> t = ap_uint<B + 1>(q) + ap_uint<B + 1>(1 + 2 * CONFIG_T::out_zero);
    return res_T(ap_uint<B>(t >> 1));
}

// The shared requantizer of every accumulating layer (Conv, Linear, AvgPool, GlobalAvgPool);
// CONFIG_T::shift_min is the smallest shift n of the layer's channels.
template <class CONFIG_T, class res_T>
res_T requantize(typename CONFIG_T::accum_t acc, multiplier_t m, shift_t n) {
    #pragma HLS INLINE
    static constexpr int P = CONFIG_T::accum_bits;
    static_assert(CONFIG_T::accum_t::width == P, "accum_t must be ap_int<accum_bits>");
    ap_int<P + 16> product = acc * m;
    return shift_round_clamp<CONFIG_T, res_T, P + 16, CONFIG_T::shift_min>(product, n);
}

}  // namespace foldline

#endif
