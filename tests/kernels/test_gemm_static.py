"""The static GEMM report (benchmarks/gemm_static.py): its occupancy arithmetic and its reading of SASS."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import gemm_static  # noqa: E402

A100, H100 = gemm_static.LIMITS


def test_blocks_per_multiprocessor_follows_the_documented_limits():
    # 256 threads at 128 registers: 8 warps x 4096 registers per warp = 32768 registers, two blocks in 65536.
    assert gemm_static.blocks_per_multiprocessor(H100, 256, 128, 8448) == (2, "registers")
    # 129 registers round up to 136 per thread: 4352 per warp, 15 warps fit, one block of 8 warps.
    assert gemm_static.blocks_per_multiprocessor(H100, 256, 129, 0) == (1, "registers")
    # 64 threads, 32 registers: the 32-block limit binds before threads (2048 / 64 = 32) and registers (32).
    assert gemm_static.blocks_per_multiprocessor(H100, 64, 32, 0)[0] == 32
    # Shared memory: 50 KB + 1 KB reserved per block; 164 KB on an A100 holds 3, 228 KB on an H100 holds 4.
    assert gemm_static.blocks_per_multiprocessor(A100, 128, 32, 50 * 1024) == (3, "shared memory")
    assert gemm_static.blocks_per_multiprocessor(H100, 128, 32, 50 * 1024) == (4, "shared memory")
    # 1024 threads: two blocks by threads.
    assert gemm_static.blocks_per_multiprocessor(H100, 1024, 16, 0) == (2, "threads")


SASS = """
.text.kernel:
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_1:
        /*0010*/                   LDS.128 R4, [R2] ;
        /*0020*/                   LDS R8, [R2+0x10] ;
        /*0030*/                   FFMA R9, R4, R8, R9 ;
        /*0040*/                   FFMA R10, R5, R8, R10 ;
        /*0050*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
        /*0060*/              @P0 BRA `(.L_x_2) ;
        /*0070*/                   STS.128 [R3], R4 ;
.L_x_2:
        /*0080*/              @!P1 BRA `(.L_x_1) ;
        /*0090*/                   EXIT ;
"""


def test_main_loop_is_the_backward_branch_with_the_most_fmas():
    function = gemm_static.sass_functions(SASS)["kernel"]
    loop = gemm_static.main_loop(function, "FFMA", fma_per_step=2)
    assert loop.instructions == 8  # 0x10 .. 0x80
    assert loop.fma == 2 and loop.unroll == 1
    assert loop.shared_loads == {"LDS.128": 1, "LDS": 1}
    assert loop.shared_stores == {"STS.128": 1}
    assert loop.branches == 2 and loop.barriers == 1
    unrolled = gemm_static.main_loop(function, "FFMA", fma_per_step=1)
    assert unrolled.unroll == 2 and unrolled.instructions == 4


def test_whole_elf_pads_to_the_size_the_headers_give():
    import struct

    header = bytearray(64)
    header[:4] = b"\x7fELF"
    struct.pack_into("<QQ", header, 0x20, 64, 200)  # program headers at 64, sections at 200
    struct.pack_into("<HHHH", header, 0x36, 56, 1, 64, 2)  # 1 x 56 and 2 x 64 bytes
    image = bytes(header) + b"\1" * 263  # 327 bytes: one short of 200 + 128
    assert len(gemm_static.whole_elf(image)) == 328
    assert gemm_static.whole_elf(image + b"\0") == image + b"\0"
