// Tiled matrix product with a fused prologue and epilogue:
//
//     C = activation(op(A) op(B) + bias)             (forward; optionally also writes Z = op(A) op(B) + bias)
//     C = (op(A) * activation'(saved)) op(B)          (backward, saved_operand 0: the derivative applied to A
//     C = op(A) (op(B) * activation'(saved))           or, saved_operand 1, to B, as the operand is loaded)
//     row_sums[m] = sum_k op(A)[m, k]                  (after A's prologue, if any: the bias gradient, same pass)
//
// op(A) is M x K and op(B) is K x N, each read through a row and a column stride, so a transposed operand (or
// any strided view) is read in place: transposing is swapping the two strides, never a copy. A third stride
// steps through a batch (blockIdx.z); a stride of 0 broadcasts an operand over the batch. The saved tensor of
// the prologue has the layout of the operand it applies to and is read at that operand's offsets.
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
// Vector loads: each thread copies LOADS elements of each tile per step (TileCopy below). Where the loader
// (kernels.py, _vector_width) has found an operand fit, a_vector / b_vector is 1 and the thread copies them
// VECTOR contiguous elements at a time, each group one 8- or 16-byte load instruction instead of VECTOR
// separate ones. It is fit when its contiguous dimension has stride 1 and an extent that is a multiple of
// VECTOR (so a vector lies wholly inside or wholly outside the matrix), its other stride and its batch stride
// are multiples of VECTOR, and its pointer (and the saved tensor's, when the prologue applies to it) is aligned
// to VECTOR elements: then every vector starts at an aligned address. Otherwise the scalar path runs.
//
// Tile sizes (instantiated by gradcore/backend/kernels.py, GEMM_TILES):
//   float  large  128 x 128 x 8, 8 x 8 per thread, 256 threads, vectors of 4
//   float  medium  64 x  64 x 8, 4 x 4 per thread, 256 threads, vectors of 2
//   float  small   32 x  32 x 16, 4 x 4 per thread, 64 threads, vectors of 4
//   double large   64 x  64 x 8, 4 x 4 per thread, 256 threads, vectors of 2
//   double small   32 x  32 x 8, 4 x 4 per thread, 64 threads, vectors of 2
//
// Every thread reaches every __syncthreads() (no early return), as the CPU emulation requires and checks.
#include "activation.cuh"

namespace gradcore {

// V elements of T loaded or stored as one unit. Its alignment is its size, so the compiler emits a single
// vector instruction (ld.global.v4.f32 for four floats, v2.f64 for two doubles) where the address allows it.
template <typename T, int V>
struct alignas(sizeof(T) * V) Vector {
    T v[V];
};

// Reads V consecutive elements at p, which must be aligned to the vector's size. On a GPU a misaligned vector
// load is a fault; the host would just run it, so the CPU emulation checks the address instead
// (cuda_emulation.h) and fails the launch.
template <typename T, int V>
__device__ __forceinline__ Vector<T, V> load_vector(const T* p) {
#ifdef CUDA_EMULATION_ALIGNED
    if (!CUDA_EMULATION_ALIGNED(p, sizeof(Vector<T, V>))) return Vector<T, V>{};
#endif
    return *reinterpret_cast<const Vector<T, V>*>(p);
}

constexpr int GEMM_PAD = 4;  // words of padding per shared tile row: see the bank note at the top

// One thread's part in copying one operand's tile into shared memory, the same code for op(A) and op(B).
// Both tiles are stored k-major, tile[k][x], where x is the operand's other dimension (m for op(A), n for
// op(B)) and the tile is BK x BX; the operand is read through a k stride and an x stride.
//
// Consecutive threads walk along whichever dimension has stride 1 (k if the k stride is 1, else x), so their
// global reads coalesce for a plain and a transposed operand alike. Each thread copies LOADS / W groups of W
// elements (W = 1 on the scalar path, VECTOR on the vector path): group l starts at tile position
// (k_first + l * k_step, x_first + l * x_step), and its elements follow each other along the walked
// dimension. Since THREADS is a multiple of both tile sides, these steps are the same for every thread, and
// the offsets are worked out once here rather than per element.
template <typename T, int BK, int BX, int THREADS>
struct TileCopy {
    static constexpr int LOADS = BK * BX / THREADS;  // elements per thread per step
    static constexpr int WIDEST = 16 / (int)sizeof(T);  // 16 bytes: the widest load instruction
    static constexpr int VECTOR = LOADS < WIDEST ? LOADS : WIDEST;  // elements per vector load
    static_assert(LOADS * THREADS == BK * BX, "the tile must split evenly over the threads");
    static_assert(THREADS % BK == 0 && THREADS % BX == 0, "copies must tile the tile");
    static_assert(LOADS % VECTOR == 0 && BK % VECTOR == 0 && BX % VECTOR == 0, "vectors must tile the tile");

    int k_first, x_first;  // the thread's first element in the tile
    int k_step, x_step;    // from one of its groups to the next
    int k_unit, x_unit;    // from one element of a group to the next: 1 along the walked dimension, else 0
    long long first;       // the first element's offset in memory from the operand's (x0, k = 0)
    long long step;        // the offset in memory from one group to the next

    __device__ __forceinline__ TileCopy(int tid, long long x0, long long k_stride, long long x_stride, int width) {
        const bool along_k = k_stride == 1;
        const int groups_per_line = (along_k ? BK : BX) / width;  // groups along the walked dimension
        const int along = (tid % groups_per_line) * width;         // the thread's position along it
        const int across = tid / groups_per_line;                  // and across it
        const int across_step = THREADS / groups_per_line;
        k_first = along_k ? along : across;
        x_first = along_k ? across : along;
        k_step = along_k ? 0 : across_step;
        x_step = along_k ? across_step : 0;
        k_unit = along_k ? 1 : 0;
        x_unit = along_k ? 0 : 1;
        first = k_first * k_stride + (x0 + x_first) * x_stride;
        step = k_step * k_stride + x_step * x_stride;
    }

    // Reads the tile that starts at k0 into next (zeros outside the matrix), applying the prologue where
    // saved is given. On the vector path a group is wholly inside or outside the matrix (the loader checks
    // that the walked extent is a multiple of W, and tile corners are multiples of W), so its first element
    // decides; the elements of a group are contiguous in memory (stride 1).
    template <int W>
    __device__ __forceinline__ void load(T (&next)[LOADS], const T* __restrict__ source, const T* __restrict__ saved,
                                         int saved_activation, T low, T high, long long k0, long long k_stride,
                                         long long k_size, long long x0, long long x_size) const {
#pragma unroll
        for (int l = 0; l < LOADS / W; ++l) {
            const long long k = k0 + k_first + l * k_step, x = x0 + x_first + l * x_step;
            const long long offset = first + k0 * k_stride + l * step;
            Vector<T, W> group = {};
            if (k < k_size && x < x_size) {
                group = load_vector<T, W>(source + offset);
                if (saved != nullptr) {
                    const Vector<T, W> s = load_vector<T, W>(saved + offset);
#pragma unroll
                    for (int i = 0; i < W; ++i) {
                        group.v[i] = activation_gradient(group.v[i], s.v[i], saved_activation, low, high);
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < W; ++i) next[l * W + i] = group.v[i];
        }
    }

    template <int W>
    __device__ __forceinline__ void store(T (&tile)[BK][BX + GEMM_PAD], const T (&next)[LOADS]) const {
#pragma unroll
        for (int l = 0; l < LOADS / W; ++l) {
#pragma unroll
            for (int i = 0; i < W; ++i) {
                tile[k_first + l * k_step + i * k_unit][x_first + l * x_step + i * x_unit] = next[l * W + i];
            }
        }
    }
};

template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
gemm(const T* __restrict__ a, long long a_row, long long a_col, long long a_batch, int a_vector,
     const T* __restrict__ b, long long b_row, long long b_col, long long b_batch, int b_vector,
     T* __restrict__ c, long long c_row, long long c_batch,
     long long m_size, long long n_size, long long k_size,
     const T* __restrict__ bias,          // N values added to every row, or null
     T* __restrict__ preactivation,       // receives op(A) op(B) + bias in C's layout, or null
     int activation,                      // applied to C (Activation codes of activation.cuh)
     const T* __restrict__ saved,         // prologue: the operand times activation'(saved); or null
     int saved_operand,                   // 0: saved applies to A (A's layout), 1: to B (B's layout)
     int saved_activation,
     T low, T high,                       // clamp bounds of both activations (-inf / +inf when absent)
     T* __restrict__ row_sums)            // M sums of op(A)'s rows after its prologue, or null (batch 1 only)
{
    constexpr int THREADS_M = BM / TM;
    constexpr int THREADS_N = BN / TN;
    constexpr int THREADS = THREADS_M * THREADS_N;
    using CopyA = TileCopy<T, BK, BM, THREADS>;  // op(A): k is its column, x = m its row
    using CopyB = TileCopy<T, BK, BN, THREADS>;  // op(B): k is its row, x = n its column
    static_assert(BM % TM == 0 && BN % TN == 0, "the micro-tile must divide the block tile");
    static_assert(BM <= THREADS, "one thread per row of the A tile sums the rows");

    __shared__ T a_tile[BK][BM + GEMM_PAD];
    __shared__ T b_tile[BK][BN + GEMM_PAD];

    const int tid = threadIdx.x;
    const int ty = tid / THREADS_N;
    const int tx = tid % THREADS_N;
    const long long m0 = (long long)blockIdx.y * BM;
    const long long n0 = (long long)blockIdx.x * BN;
    a += (long long)blockIdx.z * a_batch;
    b += (long long)blockIdx.z * b_batch;
    c += (long long)blockIdx.z * c_batch;
    if (preactivation != nullptr) preactivation += (long long)blockIdx.z * c_batch;
    const T* a_saved = saved_operand == 0 ? saved : nullptr;
    const T* b_saved = saved_operand == 0 ? nullptr : saved;
    if (a_saved != nullptr) a_saved += (long long)blockIdx.z * a_batch;
    if (b_saved != nullptr) b_saved += (long long)blockIdx.z * b_batch;

    const CopyA a_copy(tid, m0, a_col, a_row, a_vector ? CopyA::VECTOR : 1);
    const CopyB b_copy(tid, n0, b_row, b_col, b_vector ? CopyB::VECTOR : 1);
    const bool sums_rows = row_sums != nullptr && blockIdx.x == 0;

    T a_next[CopyA::LOADS];
    T b_next[CopyB::LOADS];

    // The vector flags are the same for every thread of the launch, so these branches never diverge.
    auto load_tiles = [&](long long k0) {
        if (a_vector) {
            a_copy.template load<CopyA::VECTOR>(a_next, a, a_saved, saved_activation, low, high, k0, a_col, k_size,
                                                m0, m_size);
        } else {
            a_copy.template load<1>(a_next, a, a_saved, saved_activation, low, high, k0, a_col, k_size, m0, m_size);
        }
        if (b_vector) {
            b_copy.template load<CopyB::VECTOR>(b_next, b, b_saved, saved_activation, low, high, k0, b_row, k_size,
                                                n0, n_size);
        } else {
            b_copy.template load<1>(b_next, b, b_saved, saved_activation, low, high, k0, b_row, k_size, n0, n_size);
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
        if (a_vector) {
            a_copy.template store<CopyA::VECTOR>(a_tile, a_next);
        } else {
            a_copy.template store<1>(a_tile, a_next);
        }
        if (b_vector) {
            b_copy.template store<CopyB::VECTOR>(b_tile, b_next);
        } else {
            b_copy.template store<1>(b_tile, b_next);
        }
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
