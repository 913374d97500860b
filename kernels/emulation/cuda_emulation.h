// Runs the CUDA C kernels of kernels/*.cu on the CPU, unchanged, so that they can be tested without a GPU.
//
// A source compiled as C++ with this header force-included (g++ -std=c++20 -include cuda_emulation.h) sees
// the CUDA built-ins it uses mapped onto C++:
//   - one host thread per CUDA thread of a block; the blocks of the grid run one after another, each block
//     on the same threads (so blockIdx is per thread, and every thread moves to the next block together);
//   - __shared__ is `static`: one copy of the array per kernel instantiation, which is per-block storage
//     because only one block runs at a time (and one launch at a time, under a lock);
//   - __syncthreads() is a C++20 std::barrier over the block's threads, whose arrive-and-wait also orders the
//     threads' memory accesses, as the CUDA barrier does for shared and global memory within a block;
//   - __global__, __device__, __forceinline__ and __launch_bounds__ lose their meaning and vanish.
// Each thread counts its __syncthreads() calls per block; a launch in which the threads of one block made
// different counts (a barrier inside divergent code, or an early return before one) reports an error instead of
// passing by chance. A thread that finishes leaves the barrier (arrive_and_drop), so such a kernel cannot hang.
// A kernel's vector load asks CUDA_EMULATION_ALIGNED(pointer, bytes) first (only where this header defines it):
// a GPU faults on a misaligned vector access while the host would quietly run it, so a misaligned address is
// recorded, the load skipped, and the launch reports the error.
//
// What this cannot show is listed in kernels/README.md: warp-synchronous code, the GPU memory model beyond
// barriers, occupancy, register and shared-memory limits, speed.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;  // the same for every thread of a launch: set before the threads start
inline dim3 gridDim;

namespace cuda_emulation {

inline std::barrier<>* block_barrier = nullptr;
inline thread_local unsigned syncs_in_block = 0;
inline std::atomic<bool> misaligned_access{false};

// Whether `pointer` is a multiple of `bytes`; records the launch's fault where it is not.
inline bool aligned(const void* pointer, std::size_t bytes) {
    if (reinterpret_cast<std::uintptr_t>(pointer) % bytes == 0) return true;
    misaligned_access.store(true, std::memory_order_relaxed);
    return false;
}

}  // namespace cuda_emulation

#define CUDA_EMULATION_ALIGNED(pointer, bytes) cuda_emulation::aligned((pointer), (bytes))

inline void __syncthreads() {
    ++cuda_emulation::syncs_in_block;
    cuda_emulation::block_barrier->arrive_and_wait();
}

namespace cuda_emulation {

enum LaunchStatus : int {
    LAUNCH_OK = 0,
    LAUNCH_UNKNOWN_KERNEL = 1,
    LAUNCH_DIVERGENT_SYNCTHREADS = 2,
    LAUNCH_BAD_SHAPE = 3,
    LAUNCH_MISALIGNED_ACCESS = 4,
};

inline std::mutex launch_lock;

// Launches `kernel` over grid x block threads, its arguments given as cuLaunchKernel takes them: an array of
// pointers, one per parameter, each to a value of that parameter's type.
template <typename... Params>
int launch(void (*kernel)(Params...), dim3 grid, dim3 block, void** args) {
    using Values = std::tuple<std::decay_t<Params>...>;
    Values values = [&]<std::size_t... I>(std::index_sequence<I...>) {
        return Values{*static_cast<std::tuple_element_t<I, Values>*>(args[I])...};
    }(std::index_sequence_for<Params...>{});

    const unsigned threads = block.x * block.y * block.z;
    const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    if (threads == 0 || threads > 1024 || blocks == 0) return LAUNCH_BAD_SHAPE;

    std::lock_guard<std::mutex> guard(launch_lock);
    gridDim = grid;
    blockDim = block;
    std::barrier<> barrier(threads);
    block_barrier = &barrier;
    misaligned_access = false;
    // syncs[b * threads + t]: how many __syncthreads() thread t made in block b.
    std::vector<unsigned> syncs(blocks * threads, 0);

    auto run_thread = [&](unsigned t) {
        threadIdx = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        unsigned long long b = 0;
        for (unsigned z = 0; z < grid.z; ++z) {
            for (unsigned y = 0; y < grid.y; ++y) {
                for (unsigned x = 0; x < grid.x; ++x, ++b) {
                    blockIdx = dim3{x, y, z};
                    syncs_in_block = 0;
                    std::apply(kernel, values);
                    syncs[b * threads + t] = syncs_in_block;
                    // Every thread leaves the block before any starts the next: shared memory is reused.
                    barrier.arrive_and_wait();
                }
            }
        }
        barrier.arrive_and_drop();
    };

    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back(run_thread, t);
    for (auto& thread : pool) thread.join();
    block_barrier = nullptr;

    for (unsigned long long b = 0; b < blocks; ++b) {
        for (unsigned t = 1; t < threads; ++t) {
            if (syncs[b * threads + t] != syncs[b * threads]) return LAUNCH_DIVERGENT_SYNCTHREADS;
        }
    }
    return misaligned_access ? LAUNCH_MISALIGNED_ACCESS : LAUNCH_OK;
}

}  // namespace cuda_emulation
