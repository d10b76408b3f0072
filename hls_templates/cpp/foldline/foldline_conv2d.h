// Foldline HLS kernels: 2-D convolution, any groups (depthwise included), folded form.
//
// The sparse table's tap index already names the input channel of the output's group, so the
// kernel has no group logic: a depthwise layer simply lists one channel per output.
#ifndef FOLDLINE_CONV2D_H_
#define FOLDLINE_CONV2D_H_

#include "foldline_mac.h"
#include "foldline_requant.h"
#include "foldline_window.h"

namespace foldline {

template <class CONFIG_T>
struct conv2d_checks {
    typedef window_geometry<CONFIG_T> geometry;
    static_assert(CONFIG_T::n_taps == geometry::n_taps, "n_taps must be filt_height * filt_width * n_chan");
    static_assert(CONFIG_T::n_out == CONFIG_T::n_filt, "n_out must equal n_filt");
    static_assert(CONFIG_T::n_chan % CONFIG_T::groups == 0 && CONFIG_T::n_filt % CONFIG_T::groups == 0,
                  "groups must divide the input and output channels");
    static constexpr bool ok = true;
};

// One output pixel from a flattened window: sparse MAC, then requantization per filter.
template <class in_T, class out_T, class CONFIG_T>
void conv2d_pixel(const in_T x[CONFIG_T::n_taps], out_T y[CONFIG_T::n_filt],
                  const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                  const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_filt],
                  const multiplier_table_t m[CONFIG_T::n_filt], const shift_table_t n[CONFIG_T::n_filt]) {
    #pragma HLS INLINE
    typename CONFIG_T::accum_t acc[CONFIG_T::n_filt];
    #pragma HLS ARRAY_PARTITION variable=acc complete
    sparse_mac<in_T, CONFIG_T>(x, w, b, acc);
ConvRequant:
    for (unsigned o = 0; o < CONFIG_T::n_filt; o++) {
        #pragma HLS UNROLL
        y[o] = requantize<CONFIG_T, out_T>(acc[o], m[o], n[o]);
    }
}

// Streaming (dataflow): a line buffer turns the raster-order pixel stream into windows; one
// output pixel per reuse_factor cycles, every nonzero weight its own multiplier at reuse 1.
template <class data_T, class res_T, class CONFIG_T>
void conv2d_stream(hls::stream<data_T> &in, hls::stream<res_T> &out,
                   const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                   const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_filt],
                   const multiplier_table_t m[CONFIG_T::n_filt], const shift_table_t n[CONFIG_T::n_filt]) {
    typedef window_geometry<CONFIG_T> geometry;
    typedef typename data_T::value_type in_T;
    static_assert(conv2d_checks<CONFIG_T>::ok, "");
    static_assert(data_T::size == CONFIG_T::n_chan && res_T::size == CONFIG_T::n_filt, "pixel widths");
    data_T lines[geometry::line_rows][geometry::padded_width];
    data_T win[CONFIG_T::filt_height][geometry::span_width];
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=1
    #pragma HLS ARRAY_PARTITION variable=win complete dim=0
    data_T pad;
ConvPadPixel:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        pad[c] = CONFIG_T::pad_value;
    }
ConvRows:
    for (unsigned r = 0; r < geometry::padded_height; r++) {
    ConvCols:
        for (unsigned c = 0; c < geometry::padded_width; c++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            data_T px = in_padding<CONFIG_T>(r, c) ? pad : in.read();
            slide_window<data_T, CONFIG_T>(lines, win, px, c);
            if (window_ready<CONFIG_T>(r, c)) {
                in_T x[CONFIG_T::n_taps];
                #pragma HLS ARRAY_PARTITION variable=x complete
                flatten_window<data_T, CONFIG_T>(win, x);
                res_T y;
                conv2d_pixel<in_T, typename res_T::value_type, CONFIG_T>(x, y.data, w, b, m, n);
                out.write(y);
            }
        }
    }
}

// Arrays (fully parallel): one output pixel per reuse_factor cycles, unrolled by the caller's
// PIPELINE when the whole network is pipelined.
template <class data_T, class res_T, class CONFIG_T>
void conv2d_array(const data_T in[CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan],
                  res_T out[CONFIG_T::out_height * CONFIG_T::out_width * CONFIG_T::n_filt],
                  const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                  const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_filt],
                  const multiplier_table_t m[CONFIG_T::n_filt], const shift_table_t n[CONFIG_T::n_filt]) {
    static_assert(conv2d_checks<CONFIG_T>::ok, "");
ConvOutRows:
    for (unsigned oh = 0; oh < CONFIG_T::out_height; oh++) {
    ConvOutCols:
        for (unsigned ow = 0; ow < CONFIG_T::out_width; ow++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            data_T x[CONFIG_T::n_taps];
            #pragma HLS ARRAY_PARTITION variable=x complete
            gather_window<data_T, CONFIG_T>(in, oh, ow, x);
            res_T y[CONFIG_T::n_filt];
            #pragma HLS ARRAY_PARTITION variable=y complete
            conv2d_pixel<data_T, res_T, CONFIG_T>(x, y, w, b, m, n);
        ConvStore:
            for (unsigned o = 0; o < CONFIG_T::n_filt; o++) {
                #pragma HLS UNROLL
                out[(oh * CONFIG_T::out_width + ow) * CONFIG_T::n_filt + o] = y[o];
            }
        }
    }
}

}  // namespace foldline

#endif
