// Foldline HLS kernels: the sparse multiply-accumulate shared by Conv and Linear (folded form).
//
//     acc[o] = b'[o] + sum over the nonzero weights w of output o:  w * x[tap]
//
// x holds the raw activations (padded taps hold the input zero point), b' = b - z_x * sum(w)
// is precomputed, and every partial sum in any order is proven to fit accum_t (ap_int<P>).
// The table lists nonzero weights only, as {out, tap, weight} entries, out-major, so a zero
// weight is never a multiplier. The table is a plain constant array that the UNROLL pragma
// unrolls (at reuse 1 each entry's out, tap and weight are constants); its elements are
// table_element types (foldline_types.h), so g++ reads it as data and compiles it in linear time.
#ifndef FOLDLINE_MAC_H_
#define FOLDLINE_MAC_H_

#include "foldline_types.h"

namespace foldline {

template <class in_T, class CONFIG_T>
void sparse_mac(const in_T x[CONFIG_T::n_taps], const typename CONFIG_T::nonzero_t w[CONFIG_T::n_table],
                const typename table_element<typename CONFIG_T::accum_t>::type b[CONFIG_T::n_out],
                typename CONFIG_T::accum_t acc[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    typedef typename CONFIG_T::weight_t weight_t;
    static_assert(CONFIG_T::n_table == (CONFIG_T::n_nonzero > 0 ? CONFIG_T::n_nonzero : 1),
                  "n_table is n_nonzero (one placeholder entry when every weight is zero)");
    static_assert(CONFIG_T::multiplier_limit * CONFIG_T::reuse_factor >= CONFIG_T::n_nonzero,
                  "multiplier_limit must be ceil(n_nonzero / reuse_factor)");
    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
MacBias:
    for (unsigned o = 0; o < CONFIG_T::n_out; o++) {
        #pragma HLS UNROLL
        acc[o] = b[o];
    }
MacNonzero:
    for (unsigned k = 0; k < CONFIG_T::n_nonzero; k++) {
        #pragma HLS UNROLL
        acc[w[k].out] += weight_t(w[k].weight) * x[w[k].tap];
    }
}

}  // namespace foldline

#endif
