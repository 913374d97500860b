// Elementwise activations and their backward passes, each one pass over contiguous arrays of n elements:
//
//     clamp_forward        y  = clamp(x, low, high)
//     clamp_backward       dx = grad where low <= x <= high, else 0
//     relu_backward        dx = grad where y > 0, else 0           (from the saved output of max(x, 0))
//     sigmoid_forward      y  = 1 / (1 + exp(-x)), finite and to full relative precision for any x
//     sigmoid_backward     dx = grad * (1 - y) * y                  (from the saved output)
//     bias_activation      y  = activation(z + bias), over a rows x cols matrix; optionally z + bias into z
//     activation_backward  dz = grad * activation'(saved) over a rows x cols matrix, and the column sums of dz
//     column_sums          sums[j] = sum_p partial[p, j]: activation_backward's second pass, where it has one
//
// The formulas are those of activation.cuh, shared with the GEMM's fused epilogue and prologue: bias_activation
// is the GEMM's epilogue and activation_backward its prologue and bias gradient, for products that cuBLAS
// computes (above the GEMM crossover), so both paths give the same values.
//
// Launch shape (all but activation_backward): a 1-d grid of 1-d blocks (kernels.py uses 256 threads and at
// most 16 blocks per multiprocessor, so a large array is covered by a grid-stride loop rather than by one
// thread per element).
// One thread computes elements i, i + S, i + 2S, ... where i = blockIdx.x * blockDim.x + threadIdx.x and
// S = gridDim.x * blockDim.x: consecutive threads touch consecutive elements, so every access coalesces.
//
// activation_backward's launch shape: a 2-d grid of column blocks by row blocks, so that a tall matrix still
// gives the GPU many blocks, with no atomics. Block (blockDim.x, blockDim.y) = (CX, 256 / CX) threads with
// CX = min(32, the smallest power of two >= cols); grid (ceil(cols / CX), P), P the number of row blocks
// (kernels.py, _column_sum_launch). One thread computes column blockIdx.x * CX + threadIdx.x for rows
// blockIdx.y * blockDim.y + threadIdx.y, plus multiples of P * blockDim.y: it writes those elements of dz and
// adds them up; the block then adds its blockDim.y partial sums of each column in a tree in shared memory and
// writes them to row P's line of the partial sums, sums[blockIdx.y * cols + column]. With P = 1 those are the
// column sums; otherwise column_sums adds the P lines of each column in order p = 0, 1, ... (one thread per
// column, a grid-stride loop). The launch shapes and so the order of the additions depend on the shape alone:
// the sums are the same on every run and every GPU.
//
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

// y = activation(z + bias) over a rows x cols matrix, both contiguous, bias (cols values) optional. Where
// write_preactivation is set, z + bias is also stored back into z, in the same pass: the clamp's derivative
// reads the pre-activation, and the product z is not needed otherwise.
template <typename T>
__global__ void bias_activation(T* __restrict__ z, const T* __restrict__ bias, T* __restrict__ y, long long rows,
                                long long cols, int activation, T low, T high, int write_preactivation) {
    const long long n = rows * cols;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    // The column of element i, i % cols, kept up to date by adding the stride's remainder: one 64-bit division
    // per thread instead of one per element.
    long long column = i % cols;
    const long long column_step = stride % cols;
    for (; i < n; i += stride) {
        T v = z[i];
        if (bias != nullptr) v += bias[column];
        if (write_preactivation) z[i] = v;
        y[i] = activate(v, activation, low, high);
        column += column_step;
        if (column >= cols) column -= cols;
    }
}

// The largest block of activation_backward (and so the size of its shared buffer); kernels.py uses it.
constexpr int COLUMN_SUM_THREADS = 256;

// dz = grad * activation'(saved) over a rows x cols matrix (all contiguous), and
// sums[p * cols + j] = sum of dz[i, j] over the rows i of row block p (gridDim.y of them: see the launch shape).
// dz may be null (only the sums are wanted); saved may be null for ACTIVATION_NONE. blockDim.y must be a power
// of two.
template <typename T>
__global__ void __launch_bounds__(COLUMN_SUM_THREADS)
activation_backward(const T* __restrict__ grad, const T* __restrict__ saved, T* __restrict__ dz,
                    T* __restrict__ sums, long long rows, long long cols, int activation, T low, T high) {
    __shared__ T partial[COLUMN_SUM_THREADS];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long long column = (long long)blockIdx.x * blockDim.x + tx;
    const long long row_step = (long long)gridDim.y * blockDim.y;
    T sum = T(0);
    if (column < cols) {
        for (long long row = (long long)blockIdx.y * blockDim.y + ty; row < rows; row += row_step) {
            const long long i = row * cols + column;
            const T d = activation_gradient(grad[i], saved != nullptr ? saved[i] : T(0), activation, low, high);
            if (dz != nullptr) dz[i] = d;
            sum += d;
        }
    }
    // Every thread takes part in the tree, including those past the last column, so that all reach each barrier.
    partial[ty * blockDim.x + tx] = sum;
    __syncthreads();
    for (int half = blockDim.y / 2; half > 0; half /= 2) {
        if (ty < half) partial[ty * blockDim.x + tx] += partial[(ty + half) * blockDim.x + tx];
        __syncthreads();
    }
    if (ty == 0 && column < cols) sums[(long long)blockIdx.y * cols + column] = partial[tx];
}

// sums[j] = partial[0, j] + partial[1, j] + ... + partial[parts - 1, j], added in that order, over a parts x cols
// matrix of activation_backward's partial sums (contiguous).
template <typename T>
__global__ void column_sums(const T* __restrict__ partial, T* __restrict__ sums, long long parts, long long cols) {
    GRADCORE_GRID_STRIDE_LOOP(j, cols) {
        T sum = partial[j];
        for (long long p = 1; p < parts; ++p) sum += partial[p * cols + j];
        sums[j] = sum;
    }
}

#undef GRADCORE_GRID_STRIDE_LOOP

}  // namespace gradcore
