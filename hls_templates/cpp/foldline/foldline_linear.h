// Foldline HLS kernels: fully connected layer (folded form, sparse weights).
//
// The input vector is in the order the hardware holds it: after a Flatten of a (C, H, W) map
// that is pixel-major (HWC); the Python writer permutes the weight columns to match, so the
// Flatten itself costs nothing.
#ifndef FOLDLINE_LINEAR_H_
#define FOLDLINE_LINEAR_H_

#include "foldline_mac.h"
#include "foldline_requant.h"

namespace foldline {

template <class in_T, class out_T, class CONFIG_T>
void linear_vector(const in_T x[CONFIG_T::n_taps], out_T y[CONFIG_T::n_out],
                   const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                   const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_out],
                   const multiplier_table_t m[CONFIG_T::n_out], const shift_table_t n[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    static_assert(CONFIG_T::in_pixels * CONFIG_T::in_chan == CONFIG_T::n_taps, "n_taps = in_pixels * in_chan");
    typename CONFIG_T::accum_t acc[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=acc complete
    sparse_mac<in_T, CONFIG_T>(x, w, b, acc);
LinearRequant:
    for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
        #pragma HLS UNROLL
        y[o] = requantize<CONFIG_T, out_T>(acc[o], m[o], n[o]);
    }
}

// Arrays (fully parallel).
template <class data_T, class res_T, class CONFIG_T>
void linear_array(const data_T in[CONFIG_T::n_taps], res_T out[CONFIG_T::n_out],
                  const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                  const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_out],
                  const multiplier_table_t m[CONFIG_T::n_out], const shift_table_t n[CONFIG_T::n_out]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    linear_vector<data_T, res_T, CONFIG_T>(in, out, w, b, m, n);
}

// Streaming: collect in_pixels pixels of in_chan values, then one output vector (one element).
template <class data_T, class res_T, class CONFIG_T>
void linear_stream(hls::stream<data_T> &in, hls::stream<res_T> &out,
                   const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                   const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_out],
                   const multiplier_table_t m[CONFIG_T::n_out], const shift_table_t n[CONFIG_T::n_out]) {
    typedef typename data_T::value_type in_T;
    static_assert(data_T::size == CONFIG_T::in_chan && res_T::size == CONFIG_T::n_out, "pixel widths");
    in_T x[CONFIG_T::n_taps];
    #pragma HLS ARRAY_PARTITION variable=x complete
LinearRead:
    for (unsigned p = 0; p < CONFIG_T::in_pixels; p++) {
        #pragma HLS PIPELINE II=1
        data_T px = in.read();
        for (unsigned c = 0; c < CONFIG_T::in_chan; c++) {
            #pragma HLS UNROLL
            x[p * CONFIG_T::in_chan + c] = px[c];
        }
    }
    // Once per sample: sparse_mac's ALLOCATION limit spreads the multiplies over reuse_factor cycles.
    res_T y;
    linear_vector<in_T, typename res_T::value_type, CONFIG_T>(x, y.data, w, b, m, n);
    out.write(y);
}

}  // namespace foldline

#endif
