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
//
// Split-K (kernels.py, _split_k): where a single product (batch 1) has too few tiles to give every
// multiprocessor two blocks, the grid's z dimension splits K instead: slice z multiplies over k in
// [z * chunk, z * chunk + chunk), chunk a multiple of BK, through the batch strides (A's is chunk * its k stride,
// B's likewise; the last slice's extent, k_last, may be shorter), into its own M x N product of a workspace
// (C's batch stride M * N), without epilogue; its row sums, if any, go to its own M values. A second launch,
// gemm_split_reduce (at the end of this file), adds the slices in a fixed order and applies the epilogue.
// One block computes a BM x BN tile of C. It walks K in steps of BK: each step its threads copy a BM x BK tile
// of op(A) and a BK x BN tile of op(B) into shared memory (k-major, rows padded by GEMM_PAD words), then each
// thread multiplies them into its register micro-tile. Shared memory holds two copies of each tile: while the
// threads multiply one, the next step's tiles, loaded from global memory into registers before the multiply,
// are stored into the other, so one barrier per step orders both (a buffer is written one step after the
// barrier that ended its last reads).
//
// One thread computes TM x TN elements of C as (TM / 4) x (TN / 4) blocks of 4 x 4: rows
// g * (BM / (TM / 4)) + 4 * ty + i and columns h * (BN / (TN / 4)) + 4 * tx + j of the block's tile (ty, tx: the
// thread's row and column in the block, i, j < 4). Four consecutive rows (columns) of a k-major tile are one
// 16-byte word for floats, so each fragment read is a vector shared load (LDS.128) instead of four scalar ones;
// the threads of a warp read consecutive vectors or the same one (a broadcast), never one bank twice.
//
// Specialised paths, chosen per block before the k-loop so that the loop itself decides nothing:
//   - interior blocks (the BM x BN tile lies inside C) without prologue or row sums run a loop without bounds
//     checks, with each operand's vector width (below) a template parameter: four copies, one per pair of
//     widths; only the last, partial k-step (K not a multiple of BK) checks k, after the loop;
//   - every other block (edge tiles, the prologue, the row sums) runs the general loop, which checks every load
//     against the matrix and reads the vector flags at run time.
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
// Every thread reaches every __syncthreads() (no early return; every branch around a barrier is the same for
// the whole block), as the CPU emulation requires and checks.
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
    int store_first;       // the first element's offset in the shared tile (rows of BX + GEMM_PAD)
    int store_step;        // from one group to the next there
    int store_unit;        // from one element of a group to the next there

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
        store_first = k_first * (BX + GEMM_PAD) + x_first;
        store_step = k_step * (BX + GEMM_PAD) + x_step;
        store_unit = k_unit * (BX + GEMM_PAD) + x_unit;
    }

    // Reads the tile that starts at k0 into next. With CHECK, elements outside the matrix read as zeros and
    // the prologue is applied where saved is given: k_limit and x_limit are how much of the tile lies inside
    // the matrix (at most BK and BX), so that the checks are small 32-bit compares. Without CHECK, the whole
    // tile must lie inside the matrix and saved is ignored (the interior path, which has no prologue). On the
    // vector path a group is wholly inside or outside the matrix (the loader checks that the walked extent is a
    // multiple of W, and tile corners are multiples of W), so its first element decides; the elements of a
    // group are contiguous in memory.
    template <int W, bool CHECK>
    __device__ __forceinline__ void load(T (&next)[LOADS], const T* __restrict__ source, const T* __restrict__ saved,
                                         int saved_activation, T low, T high, long long k0, long long k_stride,
                                         int k_limit, int x_limit) const {
#pragma unroll
        for (int l = 0; l < LOADS / W; ++l) {
            const long long offset = first + k0 * k_stride + l * step;
            Vector<T, W> group = {};
            if constexpr (!CHECK) {
                group = load_vector<T, W>(source + offset);
            } else if (k_first + l * k_step < k_limit && x_first + l * x_step < x_limit) {
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
    __device__ __forceinline__ void store(T (*tile)[BX + GEMM_PAD], const T (&next)[LOADS]) const {
        T* flat = &tile[0][0] + store_first;
#pragma unroll
        for (int l = 0; l < LOADS / W; ++l) {
#pragma unroll
            for (int i = 0; i < W; ++i) flat[l * store_step + i * store_unit] = next[l * W + i];
        }
    }
};

// The work of one block: its operands, its two tile copies, and the k-loop, which is instantiated once per
// path (see "Specialised paths" at the top).
template <typename T, int BM, int BN, int BK, int TM, int TN>
struct GemmBlock {
    static constexpr int THREADS_M = BM / TM;
    static constexpr int THREADS_N = BN / TN;
    static constexpr int THREADS = THREADS_M * THREADS_N;
    static constexpr int GROUPS_M = TM / 4;  // 4 x 4 blocks of a thread's micro-tile, down
    static constexpr int GROUPS_N = TN / 4;  // and across
    using CopyA = TileCopy<T, BK, BM, THREADS>;  // op(A): k is its column, x = m its row
    using CopyB = TileCopy<T, BK, BN, THREADS>;  // op(B): k is its row, x = n its column
    using ATile = T[BK][BM + GEMM_PAD];
    using BTile = T[BK][BN + GEMM_PAD];
    static_assert(TM % 4 == 0 && TN % 4 == 0, "micro-tiles are made of 4 x 4 blocks");
    static_assert(BM % TM == 0 && BN % TN == 0, "the micro-tile must divide the block tile");
    static_assert(BM <= THREADS, "one thread per row of the A tile sums the rows");
    static_assert((BM + GEMM_PAD) % 4 == 0 && (BN + GEMM_PAD) % 4 == 0, "fragment vectors must be aligned");

    ATile* a_tiles;  // two buffers each
    BTile* b_tiles;
    const T* a;
    const T* b;
    const T* a_saved;
    const T* b_saved;
    long long a_row, a_col, b_row, b_col, m0, n0, m_size, n_size, k_size;
    int a_vector, b_vector, saved_activation, tid, ty, tx;
    int m_limit, n_limit;  // rows and columns of the block's tile inside C: at most BM and BN
    T low, high;
    bool sums_rows;
    CopyA a_copy;
    CopyB b_copy;

    // How much of the k-step at k0 lies inside the matrix: BK but for the last, partial step.
    __device__ __forceinline__ int k_limit(long long k0) const {
        return k_size - k0 < BK ? (int)(k_size - k0) : BK;
    }

    // The general path's loads: bounds-checked, prologue applied, vector widths read at run time. k_left is
    // how much of the step lies inside the matrix along k: BK for a full step.
    __device__ __forceinline__ void load_checked(T (&a_next)[CopyA::LOADS], T (&b_next)[CopyB::LOADS],
                                                 long long k0, int k_left) const {
        if (a_vector) {
            a_copy.template load<CopyA::VECTOR, true>(a_next, a, a_saved, saved_activation, low, high, k0, a_col,
                                                      k_left, m_limit);
        } else {
            a_copy.template load<1, true>(a_next, a, a_saved, saved_activation, low, high, k0, a_col, k_left,
                                          m_limit);
        }
        if (b_vector) {
            b_copy.template load<CopyB::VECTOR, true>(b_next, b, b_saved, saved_activation, low, high, k0, b_row,
                                                      k_left, n_limit);
        } else {
            b_copy.template load<1, true>(b_next, b, b_saved, saved_activation, low, high, k0, b_row, k_left,
                                          n_limit);
        }
    }

    // Reads the tiles at k0 into registers: AW, BW > 0 is the interior path with those vector widths (bounds
    // checked only with CHECK_K, for the last, partial step), 0 the general path (checked against m and n on
    // every step, against k only with CHECK_K).
    template <int AW, int BW, bool CHECK_K>
    __device__ __forceinline__ void load(T (&a_next)[CopyA::LOADS], T (&b_next)[CopyB::LOADS], long long k0) const {
        if constexpr (AW == 0) {
            load_checked(a_next, b_next, k0, CHECK_K ? k_limit(k0) : BK);
        } else if constexpr (CHECK_K) {
            const int k_left = k_limit(k0);
            a_copy.template load<AW, true>(a_next, a, nullptr, 0, low, high, k0, a_col, k_left, BM);
            b_copy.template load<BW, true>(b_next, b, nullptr, 0, low, high, k0, b_row, k_left, BN);
        } else {
            a_copy.template load<AW, false>(a_next, a, nullptr, 0, low, high, k0, a_col, BK, BM);
            b_copy.template load<BW, false>(b_next, b, nullptr, 0, low, high, k0, b_row, BK, BN);
        }
    }

    template <int AW, int BW>
    __device__ __forceinline__ void store(int buffer, const T (&a_next)[CopyA::LOADS],
                                          const T (&b_next)[CopyB::LOADS]) const {
        if constexpr (AW == 0) {
            if (a_vector) {
                a_copy.template store<CopyA::VECTOR>(a_tiles[buffer], a_next);
            } else {
                a_copy.template store<1>(a_tiles[buffer], a_next);
            }
            if (b_vector) {
                b_copy.template store<CopyB::VECTOR>(b_tiles[buffer], b_next);
            } else {
                b_copy.template store<1>(b_tiles[buffer], b_next);
            }
        } else {
            a_copy.template store<AW>(a_tiles[buffer], a_next);
            b_copy.template store<BW>(b_tiles[buffer], b_next);
        }
    }

    // Adds one step's product of the tiles in buffer to acc (and, on the general path, the A tile's rows to
    // row_sum). Each fragment is read as 4-element vectors: see the thread mapping at the top.
    template <bool GENERAL>
    __device__ __forceinline__ void multiply(int buffer, T (&acc)[TM][TN], T& row_sum) const {
        const ATile& a_tile = a_tiles[buffer];
        const BTile& b_tile = b_tiles[buffer];
        if (GENERAL && sums_rows && tid < BM) {
#pragma unroll
            for (int kk = 0; kk < BK; ++kk) row_sum += a_tile[kk][tid];
        }
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            Vector<T, 4> a_fragment[GROUPS_M];
            Vector<T, 4> b_fragment[GROUPS_N];
#pragma unroll
            for (int g = 0; g < GROUPS_M; ++g) {
                a_fragment[g] = *reinterpret_cast<const Vector<T, 4>*>(&a_tile[kk][g * (BM / GROUPS_M) + 4 * ty]);
            }
#pragma unroll
            for (int h = 0; h < GROUPS_N; ++h) {
                b_fragment[h] = *reinterpret_cast<const Vector<T, 4>*>(&b_tile[kk][h * (BN / GROUPS_N) + 4 * tx]);
            }
#pragma unroll
            for (int i = 0; i < TM; ++i) {
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += a_fragment[i / 4].v[i % 4] * b_fragment[j / 4].v[j % 4];
            }
        }
    }

    // The k-loop: full steps of BK first, double-buffered with one barrier each, then the partial step, if any.
    // AW = BW = 0 is the general path; otherwise the interior path with those vector widths.
    template <int AW, int BW>
    __device__ __forceinline__ void run(T (&acc)[TM][TN], T& row_sum) const {
        constexpr bool GENERAL = AW == 0;
        const long long full_steps = k_size / BK;
        T a_next[CopyA::LOADS];
        T b_next[CopyB::LOADS];
        if (full_steps > 0) {
            load<AW, BW, false>(a_next, b_next, 0);
            store<AW, BW>(0, a_next, b_next);
        }
        __syncthreads();
        for (long long step = 0; step < full_steps; ++step) {
            const int buffer = (int)(step & 1);
            const bool more = step + 1 < full_steps;
            if (more) load<AW, BW, false>(a_next, b_next, (step + 1) * BK);  // in flight during the multiply
            multiply<GENERAL>(buffer, acc, row_sum);
            if (more) store<AW, BW>(buffer ^ 1, a_next, b_next);  // the other buffer: read one step ago
            __syncthreads();
        }
        if (full_steps * BK < k_size) {  // the partial step, checked against k
            const int buffer = (int)(full_steps & 1);
            load<AW, BW, true>(a_next, b_next, full_steps * BK);
            store<AW, BW>(buffer, a_next, b_next);
            __syncthreads();
            multiply<GENERAL>(buffer, acc, row_sum);
        }
    }
};

// Fewest resident blocks per multiprocessor asked of the register allocator (__launch_bounds__'s second value):
// 2 for 256-thread blocks of 4 x 4 micro-tiles, which caps them at 128 registers (left to itself, ptxas picks 64
// for the float 64 x 64 tile on sm_90 and spills); none for the 8 x 8 micro-tile, which needs about 175 registers
// to run without spilling (at 128 it spills 150 to 230 bytes: benchmarks/results/gemm_static.md).
__host__ __device__ constexpr int gemm_min_blocks(int threads, int micro_tile) { return threads == 256 && micro_tile < 64 ? 2 : 1; }

template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), gemm_min_blocks((BM / TM) * (BN / TN), TM * TN))
gemm(const T* __restrict__ a, long long a_row, long long a_col, long long a_batch, int a_vector,
     const T* __restrict__ b, long long b_row, long long b_col, long long b_batch, int b_vector,
     T* __restrict__ c, long long c_row, long long c_batch,
     long long m_size, long long n_size, long long k_size,
     long long k_last,                    // k_size of the last z-slice of the grid (split-K), else k_size
     const T* __restrict__ bias,          // N values added to every row, or null
     T* __restrict__ preactivation,       // receives op(A) op(B) + bias in C's layout, or null
     int activation,                      // applied to C (Activation codes of activation.cuh)
     const T* __restrict__ saved,         // prologue: the operand times activation'(saved); or null
     int saved_operand,                   // 0: saved applies to A (A's layout), 1: to B (B's layout)
     int saved_activation,
     T low, T high,                       // clamp bounds of both activations (-inf / +inf when absent)
     // M sums of op(A)'s rows after its prologue, or null; z-slice z writes its sums at row_sums + z * M
     // (split-K; without it the batch is 1 and z is 0)
     T* __restrict__ row_sums)
{
    using Block = GemmBlock<T, BM, BN, BK, TM, TN>;
    using CopyA = typename Block::CopyA;
    using CopyB = typename Block::CopyB;

    // Two buffers of each tile, 32-byte aligned: a fragment vector of four doubles is 32 bytes, and every row
    // starts at a multiple of it.
    struct alignas(32) Tiles {
        typename Block::ATile a[2];
        typename Block::BTile b[2];
    };
    __shared__ Tiles tiles;

    const int tid = threadIdx.x;
    if (blockIdx.z + 1 == gridDim.z) k_size = k_last;  // split-K: the last slice of K may be shorter
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

    const Block block{tiles.a, tiles.b, a, b, a_saved, b_saved, a_row, a_col, b_row, b_col, m0, n0, m_size,
                      n_size, k_size, a_vector, b_vector, saved_activation, tid, tid / Block::THREADS_N,
                      tid % Block::THREADS_N, m_size - m0 < BM ? (int)(m_size - m0) : BM,
                      n_size - n0 < BN ? (int)(n_size - n0) : BN, low, high, row_sums != nullptr && blockIdx.x == 0,
                      CopyA(tid, m0, a_col, a_row, a_vector ? CopyA::VECTOR : 1),
                      CopyB(tid, n0, b_row, b_col, b_vector ? CopyB::VECTOR : 1)};

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
    }
    T row_sum = T(0);

    // The same for every thread of the block, so every thread takes the same path to the same barriers.
    const bool interior = saved == nullptr && row_sums == nullptr && m0 + BM <= m_size && n0 + BN <= n_size;
    if (!interior) {
        block.template run<0, 0>(acc, row_sum);
    } else if (a_vector && b_vector) {
        block.template run<CopyA::VECTOR, CopyB::VECTOR>(acc, row_sum);
    } else if (a_vector) {
        block.template run<CopyA::VECTOR, 1>(acc, row_sum);
    } else if (b_vector) {
        block.template run<1, CopyB::VECTOR>(acc, row_sum);
    } else {
        block.template run<1, 1>(acc, row_sum);
    }

    if (block.sums_rows && tid < BM && m0 + tid < m_size) row_sums[(long long)blockIdx.z * m_size + m0 + tid] = row_sum;

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const long long m = m0 + (i / 4) * (BM / Block::GROUPS_M) + 4 * block.ty + i % 4;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const long long n = n0 + (j / 4) * (BN / Block::GROUPS_N) + 4 * block.tx + j % 4;
            if (m < m_size && n < n_size) {
                T z = acc[i][j];
                if (bias != nullptr) z += bias[n];
                if (preactivation != nullptr) preactivation[m * c_row + n] = z;
                c[m * c_row + n] = activate(z, activation, low, high);
            }
        }
    }
}

// The second pass of split-K: C = activation(sum_s partial[s] + bias), summed in the order s = 0, 1, ..., so
// that the result is the same, bit for bit, on every run. partial holds `splits` contiguous M x N products (the
// z-slices of the first pass, each over its own range of K); C and the pre-activation are contiguous M x N.
// Where row_partial is given (splits x M row sums of the first pass), row_sums[m] = sum_s row_partial[s][m] in
// the same order. A 1-d grid-stride loop over the M x N elements, like the elementwise kernels
// (kernels.py: 256 threads); thread i also sums row i where i < M.
template <typename T>
__global__ void __launch_bounds__(256)
gemm_split_reduce(const T* __restrict__ partial, long long splits, long long m_size, long long n_size,
                  T* __restrict__ c, const T* __restrict__ bias, T* __restrict__ preactivation, int activation,
                  T low, T high, const T* __restrict__ row_partial, T* __restrict__ row_sums) {
    const long long count = m_size * n_size;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    // Element i's column, i % n_size, kept up to date by adding the stride's remainder (as in bias_activation):
    // one 64-bit division per thread instead of one per element.
    long long column = i % n_size;
    const long long column_step = stride % n_size;
    for (; i < count; i += stride) {
        T z = partial[i];
        for (long long s = 1; s < splits; ++s) z += partial[s * count + i];
        if (bias != nullptr) z += bias[column];
        if (preactivation != nullptr) preactivation[i] = z;
        c[i] = activate(z, activation, low, high);
        if (row_partial != nullptr && i < m_size) {
            T sum = row_partial[i];
            for (long long s = 1; s < splits; ++s) sum += row_partial[s * m_size + i];
            row_sums[i] = sum;
        }
        column += column_step;
        if (column >= n_size) column -= n_size;
    }
}

}  // namespace gradcore
