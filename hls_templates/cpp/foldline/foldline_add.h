// Foldline HLS kernels: residual Add, and the stream clone a dataflow branch needs.
//
//     y = clamp(z + ((M1 (x1 - z1) + M2 (x2 - z2) + 2^(n-1)) >> n), lo, hi)      one shift n for both
//
// sum_bits is the proven width of M1 (x1 - z1) + M2 (x2 - z2); each term and each difference
// fits it too (both ranges contain 0).
#ifndef FOLDLINE_ADD_H_
#define FOLDLINE_ADD_H_

#include "foldline_requant.h"

namespace foldline {

template <class in1_T, class in2_T, class out_T, class CONFIG_T>
out_T add_one(in1_T a, in2_T b) {
    #pragma HLS INLINE
    typedef ap_int<CONFIG_T::sum_bits> sum_t;
    static_assert(CONFIG_T::mult_a >= 1 && CONFIG_T::mult_a < 65536 && CONFIG_T::mult_b >= 1 &&
                      CONFIG_T::mult_b < 65536, "multipliers are 16-bit unsigned, >= 1");
    sum_t da = sum_t(a) - CONFIG_T::zero_a;
    sum_t db = sum_t(b) - CONFIG_T::zero_b;
    sum_t v = da * multiplier_t(CONFIG_T::mult_a) + db * multiplier_t(CONFIG_T::mult_b);
    return shift_round_clamp<CONFIG_T, out_T, CONFIG_T::sum_bits, CONFIG_T::shift>(v, CONFIG_T::shift);
}

template <class in1_T, class in2_T, class res_T, class CONFIG_T>
void add_array(const in1_T a[CONFIG_T::n_pixels * CONFIG_T::n_chan],
               const in2_T b[CONFIG_T::n_pixels * CONFIG_T::n_chan], res_T out[CONFIG_T::n_pixels * CONFIG_T::n_chan]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
AddElements:
    for (unsigned i = 0; i < CONFIG_T::n_pixels * CONFIG_T::n_chan; i++) {
        #pragma HLS UNROLL
        out[i] = add_one<in1_T, in2_T, res_T, CONFIG_T>(a[i], b[i]);
    }
}

template <class in1_T, class in2_T, class res_T, class CONFIG_T>
void add_stream(hls::stream<in1_T> &a, hls::stream<in2_T> &b, hls::stream<res_T> &out) {
    static_assert(in1_T::size == CONFIG_T::n_chan && in2_T::size == CONFIG_T::n_chan &&
                      res_T::size == CONFIG_T::n_chan, "pixel widths");
AddPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        in1_T pa = a.read();
        in2_T pb = b.read();
        res_T y;
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            y[c] = add_one<typename in1_T::value_type, typename in2_T::value_type, typename res_T::value_type,
                           CONFIG_T>(pa[c], pb[c]);
        }
        out.write(y);
    }
}

// A dataflow stream has one reader: a tensor read by two layers is cloned first.
template <class data_T, unsigned N_PIXELS>
void clone_stream(hls::stream<data_T> &in, hls::stream<data_T> &out1, hls::stream<data_T> &out2) {
ClonePixels:
    for (unsigned p = 0; p < N_PIXELS; p++) {
        #pragma HLS PIPELINE II=1
        data_T px = in.read();
        out1.write(px);
        out2.write(px);
    }
}

}  // namespace foldline

#endif
