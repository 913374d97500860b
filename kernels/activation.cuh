// Activations and their derivatives, shared by the GEMM epilogue/prologue (gemm.cu) and the elementwise
// kernels (elementwise.cu), so that a fused and an unfused path compute bit-identical values.
//
// The loader (gradcore/backend/kernels.py) pastes this file into each .cu source in place of its #include line,
// so that CuPy's on-disk cache, keyed by the source text, sees every change to it.
#pragma once

namespace gradcore {

// Activation codes, as passed by the loader (kernels.py ACTIVATIONS keeps the same numbers).
enum Activation : int {
    ACTIVATION_NONE = 0,
    ACTIVATION_RELU = 1,     // max(z, 0); its derivative is read from the saved output y: 0 where y <= 0
    ACTIVATION_CLAMP = 2,    // clamp(z, low, high); derivative from the saved pre-activation z: low <= z <= high
    ACTIVATION_SIGMOID = 3,  // 1 / (1 + exp(-z)); derivative from the saved output y: y * (1 - y)
};

// exp(-|x|) picks the single or double precision library function; the argument is never positive, so the
// result lies in [0, 1] and never overflows.
__device__ __forceinline__ float exp_of_minus_abs(float x) { return expf(-fabsf(x)); }
__device__ __forceinline__ double exp_of_minus_abs(double x) { return exp(-fabs(x)); }

// 1 / (1 + exp(-x)) without overflow for any x: for x >= 0 the usual form, for x < 0 the equal form
// e / (1 + e) with e = exp(x), which keeps full relative precision where the result is tiny. NaN stays NaN.
template <typename T>
__device__ __forceinline__ T sigmoid_exact(T x) {
    const T e = exp_of_minus_abs(x);
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// clamp(z, low, high) as PyTorch defines it: a NaN input stays NaN, a NaN bound gives NaN, and low > high
// gives high everywhere (max first, then min). An absent bound is passed as -inf or +inf.
template <typename T>
__device__ __forceinline__ T clamp_value(T z, T low, T high) {
    T r = (z < low || low != low) ? low : z;
    return (r > high || high != high) ? high : r;
}

template <typename T>
__device__ __forceinline__ T activate(T z, int activation, T low, T high) {
    switch (activation) {
        case ACTIVATION_RELU: return z < T(0) ? T(0) : z;  // NaN passes, as in PyTorch
        case ACTIVATION_CLAMP: return clamp_value(z, low, high);
        case ACTIVATION_SIGMOID: return sigmoid_exact(z);
        default: return z;
    }
}

// The gradient with respect to the pre-activation, given the upstream gradient g and the saved tensor s
// (the output for ReLU and sigmoid, the pre-activation for clamp). Masks select rather than multiply, so a
// NaN or infinite g where the mask is off gives 0, as PyTorch's threshold and clamp backward do; sigmoid keeps
// PyTorch's order of operations, g * (1 - y) * y.
template <typename T>
__device__ __forceinline__ T activation_gradient(T g, T s, int activation, T low, T high) {
    switch (activation) {
        case ACTIVATION_RELU: return s <= T(0) ? T(0) : g;  // a NaN output passes g, as PyTorch's does
        case ACTIVATION_CLAMP: return (s >= low && s <= high) ? g : T(0);
        case ACTIVATION_SIGMOID: return g * (T(1) - s) * s;
        default: return g;
    }
}

}  // namespace gradcore
