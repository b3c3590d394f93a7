/* Fused per-pixel kernel application of the kernel-predicting render denoisers (engine/kernel_pipeline.py).
 *
 * For every pixel p and every tap t of a few square kernels (one per scale, each with its own dilation):
 *     logit_t(p) = L_t(p) - sum_c S_{group(c), scale(t)}(p) * (G_{scale(t), c}(p + t) - C_{scale(t), c}(p))^2
 *     w_t(p)     = exp(min(logit_t(p) - logit_ref(p), cap))
 *     out(p)     = sum_t w_t(p) X_{scale(t)}(p + t) / sum_t w_t(p)
 * which is what the ONNX graph computes with thousands of Slice / Sub / Mul / Concat nodes, each a pass over the
 * whole tile in memory. Here one pass over each row, with the row's buffers in the first-level cache.
 *
 * Plain C with no Python API in the computation: Python calls `guided_kernels` through ctypes (which releases
 * the GIL), one band of rows per thread. Layouts are planar float32, C order:
 *   logits     (taps, H, W), taps = scales * size * size in scale-major, row-major tap order
 *   strengths  (groups * scales, H, W), index group * scales + scale
 *   guides     (scales, guide_channels, H + 2 pad, W + 2 pad), edge-replicated by the caller
 *   centres    (guide_channels, H, W) per scale, `centre_scale_stride` floats apart (0: the same for every scale)
 *   signals    (signal_channels, H + 2 pad, W + 2 pad) per scale, `signal_scale_stride` floats apart (they may
 *              be some of the guides' channels)
 *   out        (signal_channels, H, W)
 *   scratch    (2 + signal_channels) * W floats, one per thread
 * Returns 0, or -1 when a channel count exceeds MAX_CHANNELS.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define HAVE_MXCSR 1
#endif

/* The most guide or signal channels one call takes (the shipped models use 9 and 3). */
#define MAX_CHANNELS 16

#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict  /* MSVC's C has the keyword under this name */
#endif

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

/* One row of output pixels for one tap: the penalty over NC guide channels, the tap's weight and its share of
 * the weighted sums, all in registers (one pass over the row per tap). NC is a constant in the specialised
 * copies below (NS the signal channels likewise), so the compiler unrolls the channel loops and vectorises over x. */
#define TAP_ROW_BODY(NC, NS)                                                                                        \
    for (int x = 0; x < width; x++) {                                                                             \
        float penalty = 0.0f;                                                                                     \
        _Pragma("GCC unroll 16") for (int c = 0; c < (NC); c++) {                                                 \
            float d = g[c][x] - m[c][x];                                                                          \
            penalty += s[c][x] * d * d;                                                                           \
        }                                                                                                         \
        float v = l[x] - penalty - reference[x];                                                                  \
        float w = NAMED(fast_exp)(v < cap ? v : cap);                                                             \
        total[x] += w;                                                                                            \
        _Pragma("GCC unroll 16") for (int c = 0; c < (NS); c++) sums[c * width + x] += w * z[c][x];               \
    }

typedef struct {
    const float *g[MAX_CHANNELS], *m[MAX_CHANNELS], *s[MAX_CHANNELS], *z[MAX_CHANNELS];
} TapRows;

#define TAP_ROW_FUNCTION(NAME, NC, NS)                                                                            \
    static void NAME(const TapRows *rows, const float *restrict l, const float *restrict reference,              \
                     float *restrict total, float *restrict sums, int signal_channels, int width, float cap) {   \
        const float *g[NC], *m[NC], *s[NC], *z[NS];                                                               \
        for (int c = 0; c < (NC); c++) g[c] = rows->g[c], m[c] = rows->m[c], s[c] = rows->s[c];                  \
        for (int c = 0; c < (NS); c++) z[c] = rows->z[c];                                                         \
        (void)signal_channels;                                                                                    \
        _Pragma("GCC ivdep") TAP_ROW_BODY(NC, NS)                                                                 \
    }

#define NAMED_(name, suffix) name##suffix
#define NAMED2(name, suffix) NAMED_(name, suffix)
#define NAMED(name) NAMED2(name, SUFFIX)

/* Every processor: SSE2 on x86-64 (or the target's own vectors elsewhere). */
#define SUFFIX _generic
#include "guided_kernels_impl.h"
#undef SUFFIX

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
/* x86-64 processors since 2013-2015 (AVX2 and FMA): the same code in 8-wide vectors, with fused multiply-adds. */
#pragma GCC push_options
#pragma GCC target("avx2,fma,sse4.1,sse4.2,popcnt")
#define SUFFIX _avx2
#include "guided_kernels_impl.h"
#undef SUFFIX
#pragma GCC pop_options
#define HAVE_AVX2_COPY 1
#endif

EXPORT int guided_kernels(int height, int width, int y0, int y1, int scales, int size, const int *dilations,
                          int pad, int guide_channels, const int *group, const float *logits, int ref_tap,
                          const float *strengths, const float *guides, const float *centres,
                          ptrdiff_t centre_scale_stride, int signal_channels, const float *signals,
                          ptrdiff_t signal_scale_stride, float cap,
                          float *out, float *scratch) {
#ifdef HAVE_MXCSR
    /* Denormal numbers (tiny weights times tiny values) cost a hundred cycles each on x86: flush them to zero
     * for this call (flush-to-zero and denormals-are-zero), then restore the caller's mode. */
    const unsigned int mode = _mm_getcsr();
    _mm_setcsr(mode | 0x8040);
#endif
    int status;
#ifdef HAVE_AVX2_COPY
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        status = guided_kernels_avx2(height, width, y0, y1, scales, size, dilations, pad, guide_channels, group, logits,
                                   ref_tap, strengths, guides, centres, centre_scale_stride, signal_channels, signals,
                                   signal_scale_stride, cap, out, scratch);
    else
#endif
        status = guided_kernels_generic(height, width, y0, y1, scales, size, dilations, pad, guide_channels, group, logits,
                                  ref_tap, strengths, guides, centres, centre_scale_stride, signal_channels, signals,
                                  signal_scale_stride, cap, out, scratch);
#ifdef HAVE_MXCSR
    _mm_setcsr(mode);
#endif
    return status;
}

/* An importable module (so that packaging tools treat the library as the extension it is); the function above is
 * called through ctypes. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_guided_kernels", "Fused guided kernel application.",
                                    -1, NULL};

PyMODINIT_FUNC PyInit__guided_kernels(void) { return PyModule_Create(&module); }
