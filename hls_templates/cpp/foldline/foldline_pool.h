// Foldline HLS kernels: MaxPool, AvgPool and GlobalAvgPool.
//
// MaxPool works on the integers directly (same grid in and out; padded taps hold the grid
// minimum, so they never win). The average pools are a ones-weight sum in folded form,
//     acc[c] = acc_start + sum over the window of x[c],   acc_start = -z_x * window,
// (padded taps hold z_x: real zero), then the shared requantization: per channel, or, for an
// AvgPool whose edge windows count fewer taps (ceil mode, count_include_pad=False: CONFIG_T::counted),
// by the (M, n) of the window's count (docs/integer-contract.md, "AvgPool's divisor").
#ifndef FOLDLINE_POOL_H_
#define FOLDLINE_POOL_H_

#include "foldline_requant.h"
#include "foldline_window.h"

namespace foldline {

template <class in_T, class CONFIG_T>
void max_window(const in_T x[window_geometry<CONFIG_T>::n_taps], in_T y[CONFIG_T::n_chan]) {
    #pragma HLS INLINE
MaxChannels:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        in_T best = x[c];
        for (unsigned t = 1; t < window_geometry<CONFIG_T>::n_window; t++) {
            #pragma HLS UNROLL
            if (x[t * CONFIG_T::n_chan + c] > best) best = x[t * CONFIG_T::n_chan + c];
        }
        y[c] = best;
    }
}

// Taps a window starting at padded position `start` counts along one axis: [start, start + K) within
// [LO, HI) (padded coordinates: the padded plane with count_include_pad, the input without it).
template <int K, int LO, int HI>
unsigned counted_taps(unsigned start) {
    #pragma HLS INLINE
    int first = int(start) > LO ? int(start) : LO;
    int last = int(start) + K < HI ? int(start) + K : HI;
    return unsigned(last - first);
}

// Which (M, n) of the n_rules-entry tables the window at output (oh, ow) uses: channel c's own
// (per channel), or, when CONFIG_T::counted, the entry of the window's count for every channel,
// k = (counted rows - 1) * filt_width + counted columns - 1 (the table holds each pair's count's rule).
template <class CONFIG_T, bool COUNTED = CONFIG_T::counted>
struct average_rule {
    static unsigned index(unsigned c, unsigned, unsigned) {
        #pragma HLS INLINE
        return c;
    }
};
template <class CONFIG_T>
struct average_rule<CONFIG_T, true> {
    static unsigned index(unsigned, unsigned oh, unsigned ow) {
        #pragma HLS INLINE
        unsigned rows = counted_taps<CONFIG_T::filt_height, CONFIG_T::count_row_lo, CONFIG_T::count_row_hi>(
            oh * CONFIG_T::stride_height);
        unsigned cols = counted_taps<CONFIG_T::filt_width, CONFIG_T::count_col_lo, CONFIG_T::count_col_hi>(
            ow * CONFIG_T::stride_width);
        return (rows - 1) * CONFIG_T::filt_width + cols - 1;
    }
};

template <class in_T, class out_T, class CONFIG_T>
void avg_window(const in_T x[window_geometry<CONFIG_T>::n_taps], out_T y[CONFIG_T::n_chan],
                const multiplier_table_t m[CONFIG_T::n_rules], const shift_table_t n[CONFIG_T::n_rules], unsigned oh,
                unsigned ow) {
    #pragma HLS INLINE
    static_assert(CONFIG_T::acc_start == -CONFIG_T::in_zero * int(window_geometry<CONFIG_T>::n_window),
                  "acc_start must be -in_zero * window");
    static_assert(CONFIG_T::n_rules == (CONFIG_T::counted ? window_geometry<CONFIG_T>::n_window : CONFIG_T::n_chan),
                  "n_rules: one (M, n) per channel, or per (counted rows, counted columns) pair");
AvgChannels:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        typename CONFIG_T::accum_t acc = CONFIG_T::acc_start;
        for (unsigned t = 0; t < window_geometry<CONFIG_T>::n_window; t++) {
            #pragma HLS UNROLL
            acc += x[t * CONFIG_T::n_chan + c];
        }
        unsigned r = average_rule<CONFIG_T>::index(c, oh, ow);
        y[c] = requantize<CONFIG_T, out_T>(acc, m[r], n[r]);
    }
}

template <class data_T, class CONFIG_T>
void maxpool_stream(hls::stream<data_T> &in, hls::stream<data_T> &out) {
    typedef window_geometry<CONFIG_T> geometry;
    typedef typename data_T::value_type in_T;
    static_assert(data_T::size == CONFIG_T::n_chan, "pixel width");
    static_assert(CONFIG_T::pad_top < CONFIG_T::filt_height && CONFIG_T::pad_left < CONFIG_T::filt_width,
                  "MaxPool padding must be smaller than the kernel (every window holds a real pixel)");
    data_T lines[geometry::line_rows][geometry::padded_width];
    data_T win[CONFIG_T::filt_height][geometry::span_width];
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=1
    #pragma HLS ARRAY_PARTITION variable=win complete dim=0
    data_T pad;
MaxPadPixel:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        pad[c] = CONFIG_T::pad_value;
    }
MaxRows:
    for (unsigned r = 0; r < geometry::padded_height; r++) {
    MaxCols:
        for (unsigned c = 0; c < geometry::padded_width; c++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            data_T px = in_padding<CONFIG_T>(r, c) ? pad : in.read();
            slide_window<data_T, CONFIG_T>(lines, win, px, c);
            if (window_ready<CONFIG_T>(r, c)) {
                in_T x[geometry::n_taps];
                #pragma HLS ARRAY_PARTITION variable=x complete
                flatten_window<data_T, CONFIG_T>(win, x);
                data_T y;
                max_window<in_T, CONFIG_T>(x, y.data);
                out.write(y);
            }
        }
    }
}

template <class data_T, class res_T, class CONFIG_T>
void avgpool_stream(hls::stream<data_T> &in, hls::stream<res_T> &out, const multiplier_table_t m[CONFIG_T::n_rules],
                    const shift_table_t n[CONFIG_T::n_rules]) {
    typedef window_geometry<CONFIG_T> geometry;
    typedef typename data_T::value_type in_T;
    static_assert(data_T::size == CONFIG_T::n_chan && res_T::size == CONFIG_T::n_chan, "pixel widths");
    data_T lines[geometry::line_rows][geometry::padded_width];
    data_T win[CONFIG_T::filt_height][geometry::span_width];
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=1
    #pragma HLS ARRAY_PARTITION variable=win complete dim=0
    data_T pad;
AvgPadPixel:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        pad[c] = CONFIG_T::pad_value;
    }
    unsigned oh = 0, ow = 0;  // the output pixel the next complete window makes (a counted pool's rule)
AvgRows:
    for (unsigned r = 0; r < geometry::padded_height; r++) {
    AvgCols:
        for (unsigned c = 0; c < geometry::padded_width; c++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            data_T px = in_padding<CONFIG_T>(r, c) ? pad : in.read();
            slide_window<data_T, CONFIG_T>(lines, win, px, c);
            if (window_ready<CONFIG_T>(r, c)) {
                in_T x[geometry::n_taps];
                #pragma HLS ARRAY_PARTITION variable=x complete
                flatten_window<data_T, CONFIG_T>(win, x);
                res_T y;
                avg_window<in_T, typename res_T::value_type, CONFIG_T>(x, y.data, m, n, oh, ow);
                out.write(y);
                if (ow + 1 == CONFIG_T::out_width) {
                    ow = 0;
                    oh++;
                } else {
                    ow++;
                }
            }
        }
    }
}

template <class data_T, class CONFIG_T>
void maxpool_array(const data_T in[CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan],
                   data_T out[CONFIG_T::out_height * CONFIG_T::out_width * CONFIG_T::n_chan]) {
MaxOutRows:
    for (unsigned oh = 0; oh < CONFIG_T::out_height; oh++) {
    MaxOutCols:
        for (unsigned ow = 0; ow < CONFIG_T::out_width; ow++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            data_T x[window_geometry<CONFIG_T>::n_taps];
            #pragma HLS ARRAY_PARTITION variable=x complete
            gather_window<data_T, CONFIG_T>(in, oh, ow, x);
            data_T y[CONFIG_T::n_chan];
            max_window<data_T, CONFIG_T>(x, y);
        MaxStore:
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                out[(oh * CONFIG_T::out_width + ow) * CONFIG_T::n_chan + c] = y[c];
            }
        }
    }
}

template <class data_T, class res_T, class CONFIG_T>
void avgpool_array(const data_T in[CONFIG_T::in_height * CONFIG_T::in_width * CONFIG_T::n_chan],
                   res_T out[CONFIG_T::out_height * CONFIG_T::out_width * CONFIG_T::n_chan],
                   const multiplier_table_t m[CONFIG_T::n_rules], const shift_table_t n[CONFIG_T::n_rules]) {
AvgOutRows:
    for (unsigned oh = 0; oh < CONFIG_T::out_height; oh++) {
    AvgOutCols:
        for (unsigned ow = 0; ow < CONFIG_T::out_width; ow++) {
            #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
            data_T x[window_geometry<CONFIG_T>::n_taps];
            #pragma HLS ARRAY_PARTITION variable=x complete
            gather_window<data_T, CONFIG_T>(in, oh, ow, x);
            res_T y[CONFIG_T::n_chan];
            avg_window<data_T, res_T, CONFIG_T>(x, y, m, n, oh, ow);
        AvgStore:
            for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
                #pragma HLS UNROLL
                out[(oh * CONFIG_T::out_width + ow) * CONFIG_T::n_chan + c] = y[c];
            }
        }
    }
}

// GlobalAvgPool: (C, H, W) -> (C,), window H x W; streaming accumulates one pixel per cycle.
template <class data_T, class res_T, class CONFIG_T>
void global_avgpool_stream(hls::stream<data_T> &in, hls::stream<res_T> &out,
                           const multiplier_table_t m[CONFIG_T::n_chan], const shift_table_t n[CONFIG_T::n_chan]) {
    static_assert(data_T::size == CONFIG_T::n_chan && res_T::size == CONFIG_T::n_chan, "pixel widths");
    static_assert(CONFIG_T::acc_start == -CONFIG_T::in_zero * int(CONFIG_T::n_pixels), "acc_start = -in_zero * H * W");
    typename CONFIG_T::accum_t acc[CONFIG_T::n_chan];
    #pragma HLS ARRAY_PARTITION variable=acc complete
GapInit:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        acc[c] = CONFIG_T::acc_start;
    }
GapPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        data_T px = in.read();
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            acc[c] += px[c];
        }
    }
    res_T y;
GapRequant:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        y[c] = requantize<CONFIG_T, typename res_T::value_type>(acc[c], m[c], n[c]);
    }
    out.write(y);
}

template <class data_T, class res_T, class CONFIG_T>
void global_avgpool_array(const data_T in[CONFIG_T::n_pixels * CONFIG_T::n_chan], res_T out[CONFIG_T::n_chan],
                          const multiplier_table_t m[CONFIG_T::n_chan], const shift_table_t n[CONFIG_T::n_chan]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    static_assert(CONFIG_T::acc_start == -CONFIG_T::in_zero * int(CONFIG_T::n_pixels), "acc_start = -in_zero * H * W");
GapChannels:
    for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
        #pragma HLS UNROLL
        typename CONFIG_T::accum_t acc = CONFIG_T::acc_start;
        for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
            #pragma HLS UNROLL
            acc += in[p * CONFIG_T::n_chan + c];
        }
        out[c] = requantize<CONFIG_T, res_T>(acc, m[c], n[c]);
    }
}

}  // namespace foldline

#endif
