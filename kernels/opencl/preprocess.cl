/* Pre-processing kernels: camera frame -> model input, bit-exact with accel.kernels.numpy_ref.
 *
 * Built with -DPRECISION_BITS (Pillow's 22) and the BT.601 YUV -> RGB coefficients x 1000 from the host:
 * -DYUV_Y (luma), -DYUV_RU -DYUV_RV -DYUV_GU -DYUV_GV -DYUV_BU -DYUV_BV (chroma), so numpy_ref stays the one
 * place the numbers live. Everything is integer maths: no rounding mode can differ from numpy's.
 *
 * A source image is read through load_rgb: kind 0 is packed bytes (bpp bytes a pixel, R, G, B at byte ri, gi,
 * bi, rows `stride` bytes apart); kind 1 is 4:2:0 YUV (luma rows `stride` bytes apart, the chroma sample of
 * pixel (x, y) at uoff / voff + (y / 2) * cstride + (x / 2) * cstep: I420 has cstep 1, NV12 cstep 2).
 *
 * Each output kernel fills a canvas of out_w x out_h pixels: the content (cw x ch at top, left) is computed,
 * the rest is lut[fill] (letterbox borders). Every value goes through a 256-entry LUT (identity for uint8
 * intermediates; the host's numpy_ref table for the model input), in OUT_T = uchar or float.
 */

#define SRC_PARAMS __global const uchar *src, const int kind, const int stride, const int bpp, const int ri, \
    const int gi, const int bi, const int uoff, const int voff, const int cstride, const int cstep
#define SRC_ARGS src, kind, stride, bpp, ri, gi, bi, uoff, voff, cstride, cstep
#define OUT_PARAMS(OUT_T) __global const OUT_T *lut, __global OUT_T *dst, const int out_w, const int out_h, \
    const int top, const int left, const int cw, const int ch, const int fill

inline int3 load_rgb(SRC_PARAMS, const int x, const int y) {
    if (kind == 0) {
        const int p = y * stride + x * bpp;
        return (int3)(src[p + ri], src[p + gi], src[p + bi]);
    }
    const int yy = ((int)src[y * stride + x] - 16) * YUV_Y;
    const int c = (y >> 1) * cstride + (x >> 1) * cstep;
    const int cu = (int)src[uoff + c] - 128;
    const int cv = (int)src[voff + c] - 128;
    const int3 t = (int3)(yy + YUV_RU * cu + YUV_RV * cv, yy + YUV_GU * cu + YUV_GV * cv,
                          yy + YUV_BU * cu + YUV_BV * cv) + 500;
    /* numpy computes clip(floor(t / 1000), 0, 255). Clamping t to 0..255999 first gives the same result, and
     * there floor(t / 1000) == mul_hi(t, ceil(2^41 / 1000)) >> 9 exactly (checked for every t on the host):
     * integer division has no vector instruction on most devices, the multiply does. */
    const uint3 c8 = convert_uint3(clamp(t, 0, 255999));
    return convert_int3(mul_hi(c8, (uint3)(2199023256u)) >> 9);
}

/* Pillow's clip8((acc + 2^(PRECISION_BITS - 1)) >> PRECISION_BITS); acc starts at the rounding half. */
inline int3 finish_taps(const int3 acc) { return clamp(acc >> PRECISION_BITS, 0, 255); }

#define DEFINE_KERNELS(SUFFIX, OUT_T)                                                                         \
__kernel void copy_##SUFFIX(SRC_PARAMS, OUT_PARAMS(OUT_T)) {                                                  \
    const int x = get_global_id(0), y = get_global_id(1);                                                     \
    if (x >= out_w || y >= out_h) return;                                                                     \
    __global OUT_T *o = dst + 3 * (y * out_w + x);                                                            \
    const int sx = x - left, sy = y - top;                                                                    \
    if (sx < 0 || sy < 0 || sx >= cw || sy >= ch) { o[0] = o[1] = o[2] = lut[fill]; return; }                 \
    const int3 p = load_rgb(SRC_ARGS, sx, sy);                                                                \
    o[0] = lut[p.x]; o[1] = lut[p.y]; o[2] = lut[p.z];                                                        \
}                                                                                                             \
__kernel void hpass_##SUFFIX(SRC_PARAMS, __global const int *index, __global const int *weight,               \
                             const int ksize, OUT_PARAMS(OUT_T)) {                                            \
    const int x = get_global_id(0), y = get_global_id(1);                                                     \
    if (x >= out_w || y >= out_h) return;                                                                     \
    __global OUT_T *o = dst + 3 * (y * out_w + x);                                                            \
    const int sx = x - left, sy = y - top;                                                                    \
    if (sx < 0 || sy < 0 || sx >= cw || sy >= ch) { o[0] = o[1] = o[2] = lut[fill]; return; }                 \
    int3 acc = (int3)(1 << (PRECISION_BITS - 1));                                                             \
    for (int t = 0; t < ksize; ++t) {                                                                         \
        const int w = weight[sx * ksize + t];                                                                 \
        if (w != 0) acc += w * load_rgb(SRC_ARGS, index[sx * ksize + t], sy);                                 \
    }                                                                                                         \
    const int3 p = finish_taps(acc);                                                                          \
    o[0] = lut[p.x]; o[1] = lut[p.y]; o[2] = lut[p.z];                                                        \
}                                                                                                             \
__kernel void vpass_##SUFFIX(SRC_PARAMS, __global const int *index, __global const int *weight,               \
                             const int ksize, OUT_PARAMS(OUT_T)) {                                            \
    const int x = get_global_id(0), y = get_global_id(1);                                                     \
    if (x >= out_w || y >= out_h) return;                                                                     \
    __global OUT_T *o = dst + 3 * (y * out_w + x);                                                            \
    const int sx = x - left, sy = y - top;                                                                    \
    if (sx < 0 || sy < 0 || sx >= cw || sy >= ch) { o[0] = o[1] = o[2] = lut[fill]; return; }                 \
    int3 acc = (int3)(1 << (PRECISION_BITS - 1));                                                             \
    for (int t = 0; t < ksize; ++t) {                                                                         \
        const int w = weight[sy * ksize + t];                                                                 \
        if (w != 0) acc += w * load_rgb(SRC_ARGS, sx, index[sy * ksize + t]);                                 \
    }                                                                                                         \
    const int3 p = finish_taps(acc);                                                                          \
    o[0] = lut[p.x]; o[1] = lut[p.y]; o[2] = lut[p.z];                                                        \
}

DEFINE_KERNELS(u8, uchar)
DEFINE_KERNELS(f32, float)
