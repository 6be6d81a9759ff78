"""How fast one x86 core multiplies and accumulates, fp32 against u8 x i8, without and with VNNI.

Issue 5 asks int8 to run 2x faster than tuned fp32. Without VNNI (``vpdpbusd``), x86 computes a
u8 x i8 dot product with two multiplies per vector, ``vpmaddubsw`` (32 products summed in pairs
into 16-bit lanes) then ``vpmaddwd`` against ones (pairs widened into 8 int32 lanes), and one
``vpaddd``; fp32 computes 8 products with one ``vfmadd231ps``. This measures both at their peak:
a GEMM micro-kernel each (6 rows x 16 columns of fp32 accumulators; 2 x 16 of int32, the
fastest of 2-5 rows here: only the vpaddd is a loop-carried dependency, and more rows spill),
operands in L1, one thread, so the result is what this core's instructions allow and not a
kernel's memory traffic. The ratio is the ceiling an int8 conv can reach over an equally
efficient fp32 conv here. On a host with AVX-512 VNNI two more kernels measure ``vpdpbusd`` on
256-bit vectors (what the ``avx512-vnni-8x4`` int8 kernel uses: 32 products per instruction, no
widening) and on 512-bit ones (``avx512-vnni-16x4``: 64 products per instruction).

    python benchmarks/x86_dot_peak.py [--json benchmarks/results/x86-avx2-dot-peak.json]

Needs a C compiler (``cc``) and an AVX2 CPU.
    python benchmarks/x86_dot_peak.py --json benchmarks/results/x86-avx512-vnni-dot-peak.json  # a VNNI host
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define K 256      /* depth of one pass: operands stay in L1 */
#define ROUNDS 7
#define PASSES 400000L  /* about 0.2 s a kernel */

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* GEMM micro-kernel 6 rows x 16 columns: 12 accumulators, per k 2 vector loads, 6 broadcasts */
#define FR 6
static float fa[FR * K], fb[K * 16];
static double fp32(void) {
    __m256 acc[FR][2];
    for (int r = 0; r < FR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    double t = now();
    for (long p = 0; p < PASSES; p++) {
        for (int k = 0; k < K; k++) {
            __m256 b0 = _mm256_loadu_ps(fb + 16 * k), b1 = _mm256_loadu_ps(fb + 16 * k + 8);
            for (int r = 0; r < FR; r++) {
                __m256 a = _mm256_broadcast_ss(fa + r * K + k);
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
            }
        }
        for (int r = 0; r < FR; r++) __asm__ volatile("" : "+x"(acc[r][0]), "+x"(acc[r][1]));
    }
    t = now() - t;
    float s = 0, out[8];
    for (int r = 0; r < FR; r++) { _mm256_storeu_ps(out, _mm256_add_ps(acc[r][0], acc[r][1])); s += out[0]; }
    fprintf(stderr, "%f\n", s);
    return (double)PASSES * K * FR * 16 / t;
}

/* the same with u8 x i8: 2 rows x 16 columns, 4 input channels per step (vpmaddubsw, vpmaddwd with
   ones, vpaddd: 32 multiply-adds per column vector) */
#define QR 2
static uint8_t qa[QR * K * 4];
static int8_t qb[K * 16 * 4];
static double u8i8(void) {
    __m256i acc[QR][2], ones = _mm256_set1_epi16(1);
    for (int r = 0; r < QR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    double t = now();
    for (long p = 0; p < PASSES; p++) {
        for (int k = 0; k < K; k++) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)(qb + 64 * k));
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(qb + 64 * k + 32));
            for (int r = 0; r < QR; r++) {
                __m256i a = _mm256_set1_epi32(*(const int32_t *)(qa + 4 * (r * K + k)));
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b0), ones));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b1), ones));
            }
        }
        for (int r = 0; r < QR; r++) __asm__ volatile("" : "+x"(acc[r][0]), "+x"(acc[r][1]));
    }
    t = now() - t;
    int s = 0;
    for (int r = 0; r < QR; r++) s += _mm256_extract_epi32(_mm256_add_epi32(acc[r][0], acc[r][1]), 0);
    fprintf(stderr, "%d\n", s);
    return (double)PASSES * K * QR * 16 * 4 / t;
}

#ifdef HAVE_VNNI
/* u8 x i8 with VNNI: one vpdpbusd per 32 multiply-adds, accumulating in place (a loop-carried
   dependency per accumulator, so 6 rows x 2 like fp32) */
#define VR 6
static uint8_t va[VR * K * 4];
static double vnni(void) {
    __m256i acc[VR][2];
    for (int r = 0; r < VR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    double t = now();
    for (long p = 0; p < PASSES; p++) {
        for (int k = 0; k < K; k++) {
            __m256i b0 = _mm256_loadu_si256((const __m256i *)(qb + 64 * k));
            __m256i b1 = _mm256_loadu_si256((const __m256i *)(qb + 64 * k + 32));
            for (int r = 0; r < VR; r++) {
                __m256i a = _mm256_set1_epi32(*(const int32_t *)(va + 4 * (r * K + k)));
                acc[r][0] = _mm256_dpbusd_epi32(acc[r][0], a, b0);
                acc[r][1] = _mm256_dpbusd_epi32(acc[r][1], a, b1);
            }
        }
        for (int r = 0; r < VR; r++) __asm__ volatile("" : "+x"(acc[r][0]), "+x"(acc[r][1]));
    }
    t = now() - t;
    int s = 0;
    for (int r = 0; r < VR; r++) s += _mm256_extract_epi32(_mm256_add_epi32(acc[r][0], acc[r][1]), 0);
    fprintf(stderr, "%d\n", s);
    return (double)PASSES * K * VR * 16 * 4 / t;
}

/* the same on 512-bit vectors (what the ``avx512-vnni-16x4`` int8 kernel uses): 8 rows x 32
   columns, 64 multiply-adds per instruction; Zen 4 runs these at full rate, not as two halves */
#define ZR 8
static int8_t zb[K * 32 * 4] __attribute__((aligned(64)));
static uint8_t za[ZR * K * 4];
static double vnni512(void) {
    __m512i acc[ZR][2];
    for (int r = 0; r < ZR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    double t = now();
    for (long p = 0; p < PASSES; p++) {
        for (int k = 0; k < K; k++) {
            __m512i b0 = _mm512_load_si512((const void *)(zb + 128 * k));
            __m512i b1 = _mm512_load_si512((const void *)(zb + 128 * k + 64));
            for (int r = 0; r < ZR; r++) {
                __m512i a = _mm512_set1_epi32(*(const int32_t *)(za + 4 * (r * K + k)));
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, b0);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, b1);
            }
        }
        for (int r = 0; r < ZR; r++) __asm__ volatile("" : "+v"(acc[r][0]), "+v"(acc[r][1]));
    }
    t = now() - t;
    int s = 0;
    for (int r = 0; r < ZR; r++) s += _mm512_reduce_add_epi32(_mm512_add_epi32(acc[r][0], acc[r][1]));
    fprintf(stderr, "%d\n", s);
    return (double)PASSES * K * ZR * 32 * 4 / t;
}
#endif

int main(void) {
    for (int i = 0; i < FR * K; i++) fa[i] = (float)(i % 7) / 7;
    for (int i = 0; i < K * 16; i++) fb[i] = (float)(i % 5) / 5;
    for (int i = 0; i < QR * K * 4; i++) qa[i] = (uint8_t)(i * 37);
    for (int i = 0; i < K * 64; i++) qb[i] = (int8_t)(i % 127 - 63);
#ifdef HAVE_VNNI
    for (int i = 0; i < VR * K * 4; i++) va[i] = (uint8_t)(i * 37);
    for (int i = 0; i < ZR * K * 4; i++) za[i] = (uint8_t)(i * 37);
    for (int i = 0; i < K * 128; i++) zb[i] = (int8_t)(i % 127 - 63);
#endif
    for (int r = 0; r < ROUNDS; r++) {  /* interleaved: each round's kernels share the machine's state */
        printf("%.4e %.4e", fp32(), u8i8());
#ifdef HAVE_VNNI
        printf(" %.4e %.4e", vnni(), vnni512());
#endif
        printf("\n");
    }
    return 0;
}
"""


def host_cpu_flags() -> set:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def measure() -> dict:
    """Multiply-adds per second of one core, fp32 FMA and u8 x i8 (AVX2; and VNNI where the host
    has it): the best of 7 interleaved rounds each, and the median ratio of a round's pair (this
    VM's speed drifts between rounds)."""
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp, "peak.c"), Path(tmp, "peak")
        source.write_text(SOURCE)
        vnni = {"avx512_vnni", "avx512vl"} <= host_cpu_flags()
        flags = ["-mavx512f", "-mavx512vnni", "-mavx512vl", "-DHAVE_VNNI"] if vnni else []
        subprocess.run(["cc", "-O3", "-mavx2", "-mfma", *flags, str(source), "-o", str(binary)], check=True)
        out = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    rounds = [[float(v) for v in line.split()] for line in out.splitlines()]
    result = {"fp32_gmac_per_s": round(max(r[0] for r in rounds) / 1e9, 2)}
    for column, name in ((1, "u8i8"), (2, "vnni_u8i8"), (3, "vnni512_u8i8"))[:3 if vnni else 1]:
        ratios = sorted(r[column] / r[0] for r in rounds)
        best = max(r[column] for r in rounds)
        result.update({f"{name}_gmac_per_s": round(best / 1e9, 2),
                       f"{name}_over_fp32_best": round(best / max(r[0] for r in rounds), 3),
                       f"{name}_over_fp32_median": round(ratios[len(ratios) // 2], 3),
                       f"{name}_over_fp32_range": [round(ratios[0], 3), round(ratios[-1], 3)]})
    return {**result, "rounds": len(rounds), "threads": 1,
            "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name")), "unknown")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args(argv)
    result = measure()
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
