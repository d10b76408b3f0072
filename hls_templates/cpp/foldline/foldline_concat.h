// Foldline HLS kernels: Concat along channels, two inputs (a longer Concat is a chain of them).
//
//     y = clamp(z + ((M_i (x_i - z_i) + 2^(n_i-1)) >> n_i), lo, hi)      input a's channels first, then b's
//
// An input whose rule is the identity on its grid (copy_i: M_i = 2^n_i, z_i = z, its grid inside
// [lo, hi], the same signedness) is copied. term_bits_i is the proven width of M_i (x_i - z_i) and of x_i itself.
#ifndef FOLDLINE_CONCAT_H_
#define FOLDLINE_CONCAT_H_

#include "foldline_requant.h"

namespace foldline {

template <class in_T, class res_T, class CONFIG_T, bool COPY, int ZERO, unsigned MULT, unsigned SHIFT, int BITS>
res_T concat_term(in_T x) {
    #pragma HLS INLINE
    static_assert(MULT >= 1 && MULT < 65536, "multipliers are 16-bit unsigned, >= 1");
    if (COPY) return res_T(x);
    typedef ap_int<BITS> term_t;
    term_t v = (term_t(x) - ZERO) * multiplier_t(MULT);
    return clamp_to_grid<CONFIG_T, res_T, BITS>(round_shift<BITS>(v, SHIFT));
}

template <class in_T, class res_T, class CONFIG_T>
res_T concat_a(in_T x) {
    #pragma HLS INLINE
    return concat_term<in_T, res_T, CONFIG_T, CONFIG_T::copy_a, CONFIG_T::zero_a, CONFIG_T::mult_a,
                       CONFIG_T::shift_a, CONFIG_T::term_bits_a>(x);
}

template <class in_T, class res_T, class CONFIG_T>
res_T concat_b(in_T x) {
    #pragma HLS INLINE
    return concat_term<in_T, res_T, CONFIG_T, CONFIG_T::copy_b, CONFIG_T::zero_b, CONFIG_T::mult_b,
                       CONFIG_T::shift_b, CONFIG_T::term_bits_b>(x);
}

template <class in1_T, class in2_T, class res_T, class CONFIG_T>
void concat_array(const in1_T a[CONFIG_T::n_pixels * CONFIG_T::n_chan_a],
                  const in2_T b[CONFIG_T::n_pixels * CONFIG_T::n_chan_b],
                  res_T out[CONFIG_T::n_pixels * CONFIG_T::n_chan]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    static_assert(CONFIG_T::n_chan == CONFIG_T::n_chan_a + CONFIG_T::n_chan_b, "channel counts");
ConcatPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS UNROLL
        for (unsigned c = 0; c < CONFIG_T::n_chan_a; c++) {
            #pragma HLS UNROLL
            out[p * CONFIG_T::n_chan + c] = concat_a<in1_T, res_T, CONFIG_T>(a[p * CONFIG_T::n_chan_a + c]);
        }
        for (unsigned c = 0; c < CONFIG_T::n_chan_b; c++) {
            #pragma HLS UNROLL
            out[p * CONFIG_T::n_chan + CONFIG_T::n_chan_a + c] =
                concat_b<in2_T, res_T, CONFIG_T>(b[p * CONFIG_T::n_chan_b + c]);
        }
    }
}

template <class in1_T, class in2_T, class res_T, class CONFIG_T>
void concat_stream(hls::stream<in1_T> &a, hls::stream<in2_T> &b, hls::stream<res_T> &out) {
    static_assert(in1_T::size == CONFIG_T::n_chan_a && in2_T::size == CONFIG_T::n_chan_b &&
                      res_T::size == CONFIG_T::n_chan && CONFIG_T::n_chan == CONFIG_T::n_chan_a + CONFIG_T::n_chan_b,
                  "pixel widths");
    typedef typename res_T::value_type out_T;
ConcatPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        in1_T pa = a.read();
        in2_T pb = b.read();
        res_T y;
        for (unsigned c = 0; c < CONFIG_T::n_chan_a; c++) {
            #pragma HLS UNROLL
            y[c] = concat_a<typename in1_T::value_type, out_T, CONFIG_T>(pa[c]);
        }
        for (unsigned c = 0; c < CONFIG_T::n_chan_b; c++) {
            #pragma HLS UNROLL
            y[CONFIG_T::n_chan_a + c] = concat_b<typename in2_T::value_type, out_T, CONFIG_T>(pb[c]);
        }
        out.write(y);
    }
}

}  // namespace foldline

#endif
