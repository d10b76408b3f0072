// Foldline testbench helpers (C simulation only; never synthesized).
//
// tb_data/*.dat hold one sample per line, integers separated by spaces, in the model's own
// tensor order (C-major, as ONNX/NumPy flatten (C, H, W)). The top function's ports are
// pixel-major (HWC); IO structs (defines.h) give each port's channels/height/width and grid.
#ifndef FOLDLINE_TESTBENCH_H_
#define FOLDLINE_TESTBENCH_H_

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "foldline_types.h"

namespace foldline {
namespace tb {

// Index in the model's C-major order of channel c at pixel p.
template <class IO>
unsigned model_index(unsigned p, unsigned c) {
    return c * IO::height * IO::width + p;
}

template <class IO, class pixel_T>
void to_stream(const std::vector<int> &flat, hls::stream<pixel_T> &s) {
    for (unsigned p = 0; p < IO::height * IO::width; p++) {
        pixel_T px;
        for (unsigned c = 0; c < IO::channels; c++) px[c] = flat[model_index<IO>(p, c)];
        s.write(px);
    }
}

template <class IO, class pixel_T>
bool from_stream(hls::stream<pixel_T> &s, std::vector<int> &flat, std::string &error) {
    flat.assign(IO::size, 0);
    for (unsigned p = 0; p < IO::height * IO::width; p++) {
        if (s.empty()) {
            error = "the output stream holds fewer pixels than the output tensor";
            return false;
        }
        pixel_T px = s.read();
        for (unsigned c = 0; c < IO::channels; c++) flat[model_index<IO>(p, c)] = px[c].to_int();
    }
    if (!s.empty()) error = "the output stream holds more pixels than the output tensor";
    return s.empty();
}

// Dataflow top: void top(hls::stream<input pixel> &, hls::stream<output pixel> &).
template <class IN_IO, class OUT_IO, class in_T, class out_T>
bool call_stream(void (*top)(hls::stream<in_T> &, hls::stream<out_T> &), const std::vector<int> &x,
                 std::vector<int> &y, std::string &error) {
    hls::stream<in_T> input("input");
    hls::stream<out_T> output("output");
    to_stream<IN_IO>(x, input);
    top(input, output);
    if (!input.empty()) {
        error = "the top function left input pixels unread";
        return false;
    }
    return from_stream<OUT_IO>(output, y, error);
}

// Fully parallel top: void top(const input_t in[N], output_t out[M]) with HWC arrays.
template <class IN_IO, class OUT_IO, class in_T, class out_T>
bool call_array(void (*top)(const in_T *, out_T *), const std::vector<int> &x, std::vector<int> &y,
                std::string &error) {
    std::vector<in_T> in(IN_IO::size);
    std::vector<out_T> out(OUT_IO::size);
    for (unsigned p = 0; p < IN_IO::height * IN_IO::width; p++)
        for (unsigned c = 0; c < IN_IO::channels; c++) in[p * IN_IO::channels + c] = x[model_index<IN_IO>(p, c)];
    top(in.data(), out.data());
    y.assign(OUT_IO::size, 0);
    for (unsigned p = 0; p < OUT_IO::height * OUT_IO::width; p++)
        for (unsigned c = 0; c < OUT_IO::channels; c++)
            y[model_index<OUT_IO>(p, c)] = out[p * OUT_IO::channels + c].to_int();
    (void)error;
    return true;
}

// One line of whitespace-separated integers; false at end of file.
inline bool read_line(std::istream &in, std::vector<int> &values) {
    std::string line;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::istringstream fields(line);
        values.clear();
        long v;
        while (fields >> v) values.push_back(int(v));
        return true;
    }
    return false;
}

typedef bool (*infer_fn)(const std::vector<int> &, std::vector<int> &, std::string &);

// Run every sample, compare with the golden outputs, print the first mismatch and a summary.
// Returns 0 when every element is equal, 1 on a mismatch, 2 when the data cannot be used.
template <class IN_IO, class OUT_IO>
int run(int argc, char **argv, infer_fn infer) {
    std::string in_path = argc > 1 ? argv[1] : "tb_data/tb_input_features.dat";
    std::string gold_path = argc > 2 ? argv[2] : "tb_data/tb_output_predictions.dat";
    std::string log_path = argc > 3 ? argv[3] : "tb_data/csim_results.log";
    std::ifstream fin(in_path.c_str()), fgold(gold_path.c_str());
    if (!fin || !fgold) {
        std::cout << "ERROR: cannot open " << (!fin ? in_path : gold_path) << std::endl;
        return 2;
    }
    std::ofstream flog(log_path.c_str());
    std::vector<int> x, gold, y;
    long samples = 0, elements = 0, mismatches = 0;
    while (read_line(fin, x)) {
        if (!read_line(fgold, gold)) {
            std::cout << "ERROR: " << gold_path << " has fewer lines than " << in_path << std::endl;
            return 2;
        }
        if (x.size() != IN_IO::size || gold.size() != OUT_IO::size) {
            std::cout << "ERROR: sample " << samples << " has " << x.size() << " inputs and " << gold.size()
                      << " golden outputs, expected " << IN_IO::size << " and " << OUT_IO::size << std::endl;
            return 2;
        }
        for (unsigned i = 0; i < x.size(); i++) {
            if (x[i] < IN_IO::lo || x[i] > IN_IO::hi) {
                std::cout << "ERROR: sample " << samples << " input " << i << " = " << x[i] << " leaves the input grid ["
                          << IN_IO::lo << ", " << IN_IO::hi << "]" << std::endl;
                return 2;
            }
        }
        std::string error;
        if (!infer(x, y, error)) {
            std::cout << "ERROR: sample " << samples << ": " << error << std::endl;
            return 2;
        }
        for (unsigned i = 0; i < y.size(); i++) {
            flog << y[i] << (i + 1 < y.size() ? " " : "\n");
            if (y[i] != gold[i]) {
                if (mismatches == 0)
                    std::cout << "FOLDLINE FIRST_MISMATCH sample=" << samples << " index=" << i << " got=" << y[i]
                              << " expected=" << gold[i] << std::endl;
                mismatches++;
            }
        }
        elements += y.size();
        samples++;
    }
    if (samples == 0) {
        std::cout << "ERROR: " << in_path << " holds no samples" << std::endl;
        return 2;
    }
    if (read_line(fgold, gold)) {
        std::cout << "ERROR: " << gold_path << " has more lines than " << in_path << std::endl;
        return 2;
    }
    std::cout << "FOLDLINE CSIM samples=" << samples << " elements=" << elements << " mismatches=" << mismatches
              << std::endl;
    std::cout << "csim: " << (elements - mismatches) << "/" << elements << " elements equal" << std::endl;
    return mismatches == 0 ? 0 : 1;
}

}  // namespace tb
}  // namespace foldline

#endif
