/* The body of engine/native/guided_kernels.c, included there once per instruction set (NAMED(x) gives each copy
 * its own names). See guided_kernels.c for what it computes. */

/* exp(x) for x <= 88 in single precision (Cephes' expf: range reduction by ln 2, a degree-6 polynomial, the
 * exponent written into the float's bits): branch-free, so the compiler vectorises the loops that call it.
 * Relative error about 2e-7; below -87 it gives 0 instead of a denormal. The loops that call it vectorise only
 * when comparisons may not trap and signed overflow is undefined (-fno-trapping-math -fno-wrapv, set in
 * pyproject.toml: Python's own flags add -fwrapv, which made this code 5x slower). */
static inline float NAMED(fast_exp)(float x) {
    union { float f; int i; } bits;
    float under = x < -87.0f ? 0.0f : 1.0f;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float fx = x * 1.44269504088896341f + 0.5f;
#if defined(__SSE4_1__) || !(defined(__x86_64__) || defined(__i386__))
    float fn = floorf(fx);  /* one instruction where the target has it */
#else
    float t = (float)(int)fx;  /* floor without a library call, which would stop the vectoriser */
    float fn = t > fx ? t - 1.0f : t;
#endif
    int n = (int)fn;
    x = x - fn * 0.693359375f + fn * 2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * x * x + x + 1.0f;
    bits.i = (n + 127) << 23;
    return y * bits.f * under;
}

TAP_ROW_FUNCTION(NAMED(tap_row_9), 9, 3)
TAP_ROW_FUNCTION(NAMED(tap_row_3), 3, 3)

static void NAMED(tap_row_any)(const TapRows *rows, const float *restrict l, const float *restrict reference,
                        float *restrict total, float *restrict sums, int signal_channels, int width, float cap,
                        int guide_channels) {
    const float *const *g = rows->g, *const *m = rows->m, *const *s = rows->s, *const *z = rows->z;
    TAP_ROW_BODY(guide_channels, signal_channels)
}

static void NAMED(reference_row)(const TapRows *rows, const float *restrict l, float *restrict reference,
                          int guide_channels, int width) {
    for (int x = 0; x < width; x++) {
        float penalty = 0.0f;
        for (int c = 0; c < guide_channels; c++) {
            float d = rows->g[c][x] - rows->m[c][x];
            penalty += rows->s[c][x] * d * d;
        }
        reference[x] = l[x] - penalty;
    }
}

static int NAMED(guided_kernels)(int height, int width, int y0, int y1, int scales, int size, const int *dilations,
                          int pad, int guide_channels, const int *group, const float *logits, int ref_tap,
                          const float *strengths, const float *guides, const float *centres,
                          ptrdiff_t centre_scale_stride, int signal_channels, const float *signals,
                          ptrdiff_t signal_scale_stride, float cap,
                          float *out, float *scratch) {
    if (guide_channels > MAX_CHANNELS || signal_channels > MAX_CHANNELS) return -1;
    const ptrdiff_t plane = (ptrdiff_t)height * width;
    const ptrdiff_t padded_width = width + 2 * pad;
    const ptrdiff_t padded_plane = (ptrdiff_t)(height + 2 * pad) * padded_width;
    const int taps = size * size, radius = size / 2;
    float *reference = scratch, *total = scratch + width, *sums = scratch + 2 * width;
    TapRows rows;
    for (int y = y0; y < y1; y++) {
        const ptrdiff_t row = (ptrdiff_t)y * width;
        for (int x = 0; x < width; x++) total[x] = 0.0f;
        for (int x = 0; x < signal_channels * width; x++) sums[x] = 0.0f;
        for (int pass = 0; pass < 2; pass++) {  /* pass 0: the reference tap's logit; pass 1: every tap */
            for (int scale = 0; scale < scales; scale++) {
                const int d = dilations[scale];
                const float *g_scale = guides + (ptrdiff_t)scale * guide_channels * padded_plane;
                const float *x_scale = signals + scale * signal_scale_stride;
                for (int c = 0; c < guide_channels; c++) {
                    rows.m[c] = centres + scale * centre_scale_stride + c * plane + row;
                    rows.s[c] = strengths + (ptrdiff_t)(group[c] * scales + scale) * plane + row;
                }
                for (int k = 0; k < taps; k++) {
                    const int tap = scale * taps + k;
                    if (pass == 0 && tap != ref_tap) continue;
                    const int dy = (k / size - radius) * d, dx = (k % size - radius) * d;
                    const ptrdiff_t offset = (y + pad + dy) * padded_width + pad + dx;
                    for (int c = 0; c < guide_channels; c++) rows.g[c] = g_scale + c * padded_plane + offset;
                    for (int c = 0; c < signal_channels; c++) rows.z[c] = x_scale + c * padded_plane + offset;
                    const float *l = logits + (ptrdiff_t)tap * plane + row;
                    if (pass == 0)
                        NAMED(reference_row)(&rows, l, reference, guide_channels, width);
                    else if (guide_channels == 9 && signal_channels == 3)
                        NAMED(tap_row_9)(&rows, l, reference, total, sums, 3, width, cap);
                    else if (guide_channels == 3 && signal_channels == 3)
                        NAMED(tap_row_3)(&rows, l, reference, total, sums, 3, width, cap);
                    else
                        NAMED(tap_row_any)(&rows, l, reference, total, sums, signal_channels, width, cap, guide_channels);
                }
            }
        }
        for (int c = 0; c < signal_channels; c++) {
            float *o = out + c * plane + row;
            const float *acc = sums + c * width;
            for (int x = 0; x < width; x++) o[x] = acc[x] / total[x];
        }
    }
    return 0;
}

