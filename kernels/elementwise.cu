// Elementwise activations and their backward passes, each one pass over contiguous arrays of n elements:
//
//     clamp_forward     y  = clamp(x, low, high)
//     clamp_backward    dx = grad where low <= x <= high, else 0
//     relu_backward     dx = grad where y > 0, else 0           (from the saved output of max(x, 0))
//     sigmoid_forward   y  = 1 / (1 + exp(-x)), finite and to full relative precision for any x
//     sigmoid_backward  dx = grad * (1 - y) * y                  (from the saved output)
//
// The formulas are those of activation.cuh, shared with the GEMM's fused epilogue and prologue.
//
// Launch shape: a 1-d grid of 1-d blocks (kernels.py uses 256 threads and at most 16 blocks per multiprocessor,
// so a large array is covered by a grid-stride loop rather than by one thread per element).
// One thread computes elements i, i + S, i + 2S, ... where i = blockIdx.x * blockDim.x + threadIdx.x and
// S = gridDim.x * blockDim.x: consecutive threads touch consecutive elements, so every access coalesces.
// Absent clamp bounds are passed as -inf / +inf.
#include "activation.cuh"

namespace gradcore {

// The first element of this thread and the distance between its elements, in 64 bits: n may pass 2^31.
#define GRADCORE_GRID_STRIDE_LOOP(i, n)                                                              \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (long long)gridDim.x * blockDim.x)

template <typename T>
__global__ void clamp_forward(const T* __restrict__ x, T* __restrict__ y, long long n, T low, T high) {
    GRADCORE_GRID_STRIDE_LOOP(i, n) { y[i] = clamp_value(x[i], low, high); }
}

template <typename T>
__global__ void clamp_backward(const T* __restrict__ grad, const T* __restrict__ x, T* __restrict__ dx,
                               long long n, T low, T high) {
    GRADCORE_GRID_STRIDE_LOOP(i, n) { dx[i] = activation_gradient(grad[i], x[i], ACTIVATION_CLAMP, low, high); }
}

template <typename T>
__global__ void relu_backward(const T* __restrict__ grad, const T* __restrict__ y, T* __restrict__ dx,
                              long long n) {
    GRADCORE_GRID_STRIDE_LOOP(i, n) { dx[i] = activation_gradient(grad[i], y[i], ACTIVATION_RELU, T(0), T(0)); }
}

template <typename T>
__global__ void sigmoid_forward(const T* __restrict__ x, T* __restrict__ y, long long n) {
    GRADCORE_GRID_STRIDE_LOOP(i, n) { y[i] = sigmoid_exact(x[i]); }
}

template <typename T>
__global__ void sigmoid_backward(const T* __restrict__ grad, const T* __restrict__ y, T* __restrict__ dx,
                                 long long n) {
    GRADCORE_GRID_STRIDE_LOOP(i, n) {
        dx[i] = activation_gradient(grad[i], y[i], ACTIVATION_SIGMOID, T(0), T(0));
    }
}

#undef GRADCORE_GRID_STRIDE_LOOP

}  // namespace gradcore
