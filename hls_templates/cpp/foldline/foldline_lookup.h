// Foldline HLS kernels: Lookup, an elementwise function as a ROM (docs/integer-contract.md).
//
//     y = table[x - in_lo]        one entry per integer of the input grid (2^b for a hidden input)
//
// The table holds the output integers, computed once at conversion (exporters.layers.lookup), so the
// kernel only indexes it. Each lookup needs its own read port: the table is partitioned completely,
// so the tool builds every lookup as a constant function of the input bits (LUT logic).
#ifndef FOLDLINE_LOOKUP_H_
#define FOLDLINE_LOOKUP_H_

#include "foldline_types.h"

namespace foldline {

template <class in_T, class out_T, class CONFIG_T>
out_T lookup_one(in_T x, const typename table_element<typename CONFIG_T::table_t>::type table[CONFIG_T::n_table]) {
    #pragma HLS INLINE
    static_assert((1ull << CONFIG_T::index_t::width) >= CONFIG_T::n_table, "index_t must hold every table index");
    typename CONFIG_T::index_t i = x - CONFIG_T::in_lo;  // in [0, n_table): x lies in the input grid
    return out_T(typename CONFIG_T::table_t(table[i]));
}

template <class data_T, class res_T, class CONFIG_T>
void lookup_array(const data_T x[CONFIG_T::n_pixels * CONFIG_T::n_chan],
                  res_T y[CONFIG_T::n_pixels * CONFIG_T::n_chan],
                  const typename table_element<typename CONFIG_T::table_t>::type table[CONFIG_T::n_table]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    #pragma HLS ARRAY_PARTITION variable=table complete
LookupElements:
    for (unsigned i = 0; i < CONFIG_T::n_pixels * CONFIG_T::n_chan; i++) {
        #pragma HLS UNROLL
        y[i] = lookup_one<data_T, res_T, CONFIG_T>(x[i], table);
    }
}

template <class data_T, class res_T, class CONFIG_T>
void lookup_stream(hls::stream<data_T> &in, hls::stream<res_T> &out,
                   const typename table_element<typename CONFIG_T::table_t>::type table[CONFIG_T::n_table]) {
    static_assert(data_T::size == CONFIG_T::n_chan && res_T::size == CONFIG_T::n_chan, "pixel widths");
    #pragma HLS ARRAY_PARTITION variable=table complete
LookupPixels:
    for (unsigned p = 0; p < CONFIG_T::n_pixels; p++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        data_T px = in.read();
        res_T y;
    LookupChannels:
        for (unsigned c = 0; c < CONFIG_T::n_chan; c++) {
            #pragma HLS UNROLL
            y[c] = lookup_one<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(px[c], table);
        }
        out.write(y);
    }
}

}  // namespace foldline

#endif
