// Foldline HLS kernels: nearest-neighbour upsampling by integer factors.
//
//     y[oh, ow, c] = x[oh / factor_height, ow / factor_width, c]        the integers replicated
//
// The streaming kernel keeps one input row (in_width pixels) and writes it factor_height times,
// each pixel factor_width times: one output pixel per reuse_factor cycles.
#ifndef FOLDLINE_UPSAMPLE_H_
#define FOLDLINE_UPSAMPLE_H_

#include "foldline_types.h"

namespace foldline {

template <class CONFIG_T>
struct upsample_geometry {
    static_assert(CONFIG_T::factor_height >= 1 && CONFIG_T::factor_width >= 1, "factors are integers >= 1");
    static_assert(CONFIG_T::out_height == CONFIG_T::in_height * CONFIG_T::factor_height &&
                      CONFIG_T::out_width == CONFIG_T::in_width * CONFIG_T::factor_width,
                  "output size is the input size times the factors");
    static constexpr bool ok = true;
};

template <class data_T, class res_T, class CONFIG_T>
void upsample_array(const data_T in[CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan],
                    res_T out[CONFIG_T::out_height * CONFIG_T::out_width * CONFIG_T::n_chan]) {
    static_assert(upsample_geometry<CONFIG_T>::ok, "geometry");
UpsampleOutRows:
    for (unsigned oh = 0; oh < CONFIG_T::out_height; oh++) {
    UpsampleOutCols:
        for (unsigned ow = 0; ow < CONFIG_T::out_width; ow++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            unsigned src = (oh / CONFIG_T::factor_height) * CONFIG_T::in_width + ow / CONFIG_T::factor_width;
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                out[(oh * CONFIG_T::out_width + ow) * CONFIG_T::n_chan + c] = in[src * CONFIG_T::n_chan + c];
            }
        }
    }
}

template <class data_T, class res_T, class CONFIG_T>
void upsample_stream(hls::stream<data_T> &in, hls::stream<res_T> &out) {
    static_assert(upsample_geometry<CONFIG_T>::ok, "geometry");
    static_assert(data_T::size == CONFIG_T::n_chan && res_T::size == CONFIG_T::n_chan, "pixel widths");
    data_T row[CONFIG_T::in_width];
UpsampleRows:
    for (unsigned h = 0; h < CONFIG_T::in_height; h++) {
    UpsampleRepeatRows:
        for (unsigned r = 0; r < CONFIG_T::factor_height; r++) {
        UpsampleCols:
            for (unsigned w = 0; w < CONFIG_T::in_width; w++) {
            UpsampleRepeatCols:
                for (unsigned s = 0; s < CONFIG_T::factor_width; s++) {
                    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
                    if (r == 0 && s == 0) row[w] = in.read();
                    res_T y;
                    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                        #pragma HLS UNROLL
                        y[c] = row[w][c];
                    }
                    out.write(y);
                }
            }
        }
    }
}

}  // namespace foldline

#endif
