// Tiled matrix product with a fused prologue and epilogue:
//
//     C = activation(op(A) op(B) + bias)             (forward; optionally also writes Z = op(A) op(B) + bias)
//     C = (op(A) * activation'(saved)) op(B)          (backward; the derivative is applied as A is loaded)
//     row_sums[m] = sum_k (op(A) * activation'(saved))[m, k]        (bias gradient, in the same pass)
//
// op(A) is M x K and op(B) is K x N, each read through a row and a column stride, so a transposed operand (or
// any strided view) is read in place: transposing is swapping the two strides, never a copy. A third stride
// steps through a batch (blockIdx.z); a stride of 0 broadcasts an operand over the batch.
//
// Launch shape: grid (ceil(N / BN), ceil(M / BM), batch), block (BM / TM) * (BN / TN) threads in x.
// One block computes a BM x BN tile of C. It walks K in steps of BK: each step its threads copy a BM x BK tile
// of op(A) and a BK x BN tile of op(B) into shared memory (k-major, padded so that neither the copy nor the
// reads hit one bank twice), then each thread multiplies them into its register micro-tile.
// One thread computes TM x TN elements of C: rows ty + i * (BM / TM) and columns tx + j * (BN / TN) of the
// block's tile (ty, tx: the thread's row and column in the block). Strided rather than contiguous micro-tiles
// make neighbouring threads read neighbouring shared-memory words and write neighbouring elements of C.
// The next step's tiles are loaded from global memory into registers while the current step computes, so the
// loads' latency overlaps the arithmetic with one shared-memory buffer.
//
// Tile sizes (instantiated by gradcore/backend/kernels.py, GEMM_TILES):
//   float  large  128 x 128 x 8, 8 x 8 per thread, 256 threads
//   float  medium  64 x  64 x 8, 4 x 4 per thread, 256 threads
//   float  small   32 x  32 x 16, 4 x 4 per thread, 64 threads
//   double large   64 x  64 x 8, 4 x 4 per thread, 256 threads
//   double small   32 x  32 x 8, 4 x 4 per thread, 64 threads
//
// Every thread reaches every __syncthreads() (no early return), as the CPU emulation requires and checks.
#include "activation.cuh"

namespace gradcore {

template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
gemm(const T* __restrict__ a, long long a_row, long long a_col, long long a_batch,
     const T* __restrict__ b, long long b_row, long long b_col, long long b_batch,
     T* __restrict__ c, long long c_row, long long c_batch,
     long long m_size, long long n_size, long long k_size,
     const T* __restrict__ bias,          // N values added to every row, or null
     T* __restrict__ preactivation,       // receives op(A) op(B) + bias in C's layout, or null
     int activation,                      // applied to C (Activation codes of activation.cuh)
     const T* __restrict__ saved,         // prologue: op(A) times activation'(saved), saved in A's layout; or null
     int saved_activation,
     T low, T high,                       // clamp bounds of both activations (-inf / +inf when absent)
     T* __restrict__ row_sums)            // M sums of op(A)'s rows after the prologue, or null (batch 1 only)
{
    constexpr int THREADS_M = BM / TM;
    constexpr int THREADS_N = BN / TN;
    constexpr int THREADS = THREADS_M * THREADS_N;
    constexpr int A_LOADS = BM * BK / THREADS;  // elements of the A tile that one thread copies per step
    constexpr int B_LOADS = BK * BN / THREADS;
    constexpr int PAD = 4;                      // words of padding per shared row: see the bank note above
    static_assert(BM % TM == 0 && BN % TN == 0, "the micro-tile must divide the block tile");
    static_assert(A_LOADS * THREADS == BM * BK && B_LOADS * THREADS == BK * BN, "tiles must split evenly");
    static_assert(BM <= THREADS, "one thread per row of the A tile sums the rows");

    __shared__ T a_tile[BK][BM + PAD];
    __shared__ T b_tile[BK][BN + PAD];

    const int tid = threadIdx.x;
    const int ty = tid / THREADS_N;
    const int tx = tid % THREADS_N;
    const long long m0 = (long long)blockIdx.y * BM;
    const long long n0 = (long long)blockIdx.x * BN;
    a += (long long)blockIdx.z * a_batch;
    b += (long long)blockIdx.z * b_batch;
    c += (long long)blockIdx.z * c_batch;
    if (preactivation != nullptr) preactivation += (long long)blockIdx.z * c_batch;

    // Consecutive threads walk along whichever dimension is contiguous in memory, so global reads coalesce
    // for a plain and a transposed operand alike. A thread copies the elements (first + l * step) of each tile,
    // l = 0 .. LOADS - 1, the step lying along one dimension only; since THREADS is a multiple of both tile
    // sides, the step is the same for every thread and the offsets below are computed once, not per element.
    static_assert(THREADS % BK == 0 && THREADS % BM == 0 && THREADS % BN == 0, "copies must tile the tiles");
    const bool a_k_contiguous = a_col == 1;
    const int a_m_first = a_k_contiguous ? tid / BK : tid % BM;
    const int a_k_first = a_k_contiguous ? tid % BK : tid / BM;
    const int a_m_step = a_k_contiguous ? THREADS / BK : 0;
    const int a_k_step = a_k_contiguous ? 0 : THREADS / BM;
    const long long a_first = (m0 + a_m_first) * a_row + a_k_first * a_col;  // from the block's corner at k = 0
    const long long a_step = a_m_step * a_row + a_k_step * a_col;

    const bool b_n_contiguous = b_col == 1;
    const int b_k_first = b_n_contiguous ? tid / BN : tid % BK;
    const int b_n_first = b_n_contiguous ? tid % BN : tid / BK;
    const int b_k_step = b_n_contiguous ? THREADS / BN : 0;
    const int b_n_step = b_n_contiguous ? 0 : THREADS / BK;
    const long long b_first = b_k_first * b_row + (n0 + b_n_first) * b_col;
    const long long b_step = b_k_step * b_row + b_n_step * b_col;

    const bool sums_rows = row_sums != nullptr && blockIdx.x == 0;

    T a_next[A_LOADS];
    T b_next[B_LOADS];

    // Copies the tiles that start at k0 from global memory into a_next / b_next (zeros outside the matrices).
    // The saved tensor of the prologue has A's layout (the loader checks), so it shares A's offsets.
    auto load_tiles = [&](long long k0) {
#pragma unroll
        for (int l = 0; l < A_LOADS; ++l) {
            const long long m = m0 + a_m_first + l * a_m_step, k = k0 + a_k_first + l * a_k_step;
            const long long offset = a_first + k0 * a_col + l * a_step;
            T v = T(0);
            if (m < m_size && k < k_size) {
                v = a[offset];
                if (saved != nullptr) v = activation_gradient(v, saved[offset], saved_activation, low, high);
            }
            a_next[l] = v;
        }
#pragma unroll
        for (int l = 0; l < B_LOADS; ++l) {
            const long long k = k0 + b_k_first + l * b_k_step, n = n0 + b_n_first + l * b_n_step;
            b_next[l] = (k < k_size && n < n_size) ? b[b_first + k0 * b_row + l * b_step] : T(0);
        }
    };

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
    }
    T row_sum = T(0);

    load_tiles(0);
    for (long long k0 = 0; k0 < k_size; k0 += BK) {
#pragma unroll
        for (int l = 0; l < A_LOADS; ++l) a_tile[a_k_first + l * a_k_step][a_m_first + l * a_m_step] = a_next[l];
#pragma unroll
        for (int l = 0; l < B_LOADS; ++l) b_tile[b_k_first + l * b_k_step][b_n_first + l * b_n_step] = b_next[l];
        __syncthreads();

        if (sums_rows && tid < BM) {
#pragma unroll
            for (int kk = 0; kk < BK; ++kk) row_sum += a_tile[kk][tid];
        }
        if (k0 + BK < k_size) load_tiles(k0 + BK);  // in flight while this step computes

#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a_fragment[TM];
            T b_fragment[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a_fragment[i] = a_tile[kk][ty + i * THREADS_M];
#pragma unroll
            for (int j = 0; j < TN; ++j) b_fragment[j] = b_tile[kk][tx + j * THREADS_N];
#pragma unroll
            for (int i = 0; i < TM; ++i) {
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += a_fragment[i] * b_fragment[j];
            }
        }
        __syncthreads();  // the tiles are overwritten by the next step
    }

    if (sums_rows && tid < BM && m0 + tid < m_size) row_sums[m0 + tid] = row_sum;

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const long long m = m0 + ty + i * THREADS_M;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const long long n = n0 + tx + j * THREADS_N;
            if (m < m_size && n < n_size) {
                T z = acc[i][j];
                if (bias != nullptr) z += bias[n];
                if (preactivation != nullptr) preactivation[m * c_row + n] = z;
                c[m * c_row + n] = activate(z, activation, low, high);
            }
        }
    }
}

}  // namespace gradcore
