// Foldline HLS kernels: sliding windows over padded feature maps, shared by Conv and the pools.
//
// Maps are pixel-major (HWC): stream element / array block p = h * W + w holds all channels; a
// 1-D map (C, L) is one row (H = 1, filt_height = 1). A window is flattened to
// x[(kh * filt_width + kw) * n_chan + c]; its taps are dil_height rows and dil_width columns apart
// (dilation), so it spans span_height x span_width pixels. Taps that fall in the padding (ceil
// mode's end padding included) hold CONFIG_T::pad_value: the input zero point for Conv and AvgPool
// (real zero, as the contract's folded form needs), the grid minimum for MaxPool (never larger
// than a real tap, and every window holds one).
#ifndef FOLDLINE_WINDOW_H_
#define FOLDLINE_WINDOW_H_

#include "foldline_types.h"

namespace foldline {

// Streaming: is padded position (r, c) padding (no input pixel is read there)?
template <class CONFIG_T>
bool in_padding(unsigned r, unsigned c) {
    #pragma HLS INLINE
    return r < CONFIG_T::pad_top || r >= CONFIG_T::pad_top + CONFIG_T::in_height || c < CONFIG_T::pad_left ||
           c >= CONFIG_T::pad_left + CONFIG_T::in_width;
}

// Streaming: does the window ending at padded position (r, c) produce an output pixel?
template <class CONFIG_T>
bool window_ready(unsigned r, unsigned c) {
    #pragma HLS INLINE
    typedef window_geometry<CONFIG_T> geometry;
    return r + 1 >= geometry::span_height && c + 1 >= geometry::span_width &&
           (r + 1 - geometry::span_height) % CONFIG_T::stride_height == 0 &&
           (c + 1 - geometry::span_width) % CONFIG_T::stride_width == 0;
}

// Streaming: push the pixel at padded column c into the line buffers and the window registers.
// lines[k][c] holds the pixel k + 1 rows above the newest row (span_height - 1 rows: a dilated
// window reaches dil_height * (filt_height - 1) rows up); win[kh][j] holds window row kh (the row
// (filt_height - 1 - kh) * dil_height above the newest) at the last span_width columns, j = 0 the
// oldest: its taps are the columns j = kw * dil_width.
template <class pixel_T, class CONFIG_T>
void slide_window(pixel_T lines[window_geometry<CONFIG_T>::line_rows][window_geometry<CONFIG_T>::padded_width],
                  pixel_T win[CONFIG_T::filt_height][window_geometry<CONFIG_T>::span_width], const pixel_T &px,
                  unsigned c) {
    #pragma HLS INLINE
    static constexpr unsigned KH = CONFIG_T::filt_height, DH = CONFIG_T::dil_height;
    static constexpr unsigned SH = window_geometry<CONFIG_T>::span_height, SW = window_geometry<CONFIG_T>::span_width;
WindowShiftLeft:
    for (unsigned kh = 0; kh < KH; kh++) {
        #pragma HLS UNROLL
        for (unsigned j = 0; j + 1 < SW; j++) {
            #pragma HLS UNROLL
            win[kh][j] = win[kh][j + 1];
        }
    }
WindowNewColumn:
    for (unsigned kh = 0; kh + 1 < KH; kh++) {
        #pragma HLS UNROLL
        win[kh][SW - 1] = lines[(KH - 1 - kh) * DH - 1][c];
    }
    win[KH - 1][SW - 1] = px;
LineBufferShift:
    for (unsigned k = SH - 1; k > 1; k--) {
        #pragma HLS UNROLL
        lines[k - 1][c] = lines[k - 2][c];
    }
    if (SH > 1) lines[0][c] = px;
}

// Streaming: flatten the window's taps to x[(kh * KW + kw) * n_chan + c].
template <class pixel_T, class CONFIG_T>
void flatten_window(const pixel_T win[CONFIG_T::filt_height][window_geometry<CONFIG_T>::span_width],
                    typename pixel_T::value_type x[window_geometry<CONFIG_T>::n_taps]) {
    #pragma HLS INLINE
WindowFlatten:
    for (unsigned kh = 0; kh < CONFIG_T::filt_height; kh++) {
        for (unsigned kw = 0; kw < CONFIG_T::filt_width; kw++) {
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                x[(kh * CONFIG_T::filt_width + kw) * CONFIG_T::n_chan + c] = win[kh][kw * CONFIG_T::dil_width][c];
            }
        }
    }
}

// Arrays: gather the window of output pixel (oh, ow) from an HWC array, padding with pad_value.
template <class data_T, class CONFIG_T>
void gather_window(const data_T in[CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan], unsigned oh,
                   unsigned ow, data_T x[window_geometry<CONFIG_T>::n_taps]) {
    #pragma HLS INLINE
WindowGather:
    for (unsigned kh = 0; kh < CONFIG_T::filt_height; kh++) {
        for (unsigned kw = 0; kw < CONFIG_T::filt_width; kw++) {
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                int ih = int(oh * CONFIG_T::stride_height + kh * CONFIG_T::dil_height) - int(CONFIG_T::pad_top);
                int iw = int(ow * CONFIG_T::stride_width + kw * CONFIG_T::dil_width) - int(CONFIG_T::pad_left);
                bool inside = ih >= 0 && ih < int(CONFIG_T::in_height) && iw >= 0 && iw < int(CONFIG_T::in_width);
                x[(kh * CONFIG_T::filt_width + kw) * CONFIG_T::n_chan + c] =
                    inside ? in[(ih * CONFIG_T::in_width + iw) * CONFIG_T::n_chan + c] : data_T(CONFIG_T::pad_value);
            }
        }
    }
}

}  // namespace foldline

#endif
