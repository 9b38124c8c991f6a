/* Post-processing kernels: raw detector outputs -> candidates -> NMS suppression bitmask, following
 * accel.kernels.decode formula for formula (same operation order; contraction into FMA is off).
 *
 * `real` is double when the host builds with -DUSE_DOUBLE (the device has cl_khr_fp64), as numpy decodes in
 * float64: then every decision (threshold, IoU > limit) is taken on the same values as numpy's. Without fp64
 * it is float and a decision can flip for a value within float rounding of its limit.
 *
 * Raw outputs arrive as bytes: dtype 0 float32, 1 uint8, 2 int8, dequantized as (q - zp) * scale when
 * scale != 0. Candidates are appended with an atomic counter (their order is arbitrary): each carries `key`,
 * its position in numpy's candidate order, so the host can sort them exactly as numpy does.
 */
#pragma OPENCL FP_CONTRACT OFF
#ifdef USE_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real;
typedef double4 real4;
#else
typedef float real;
typedef float4 real4;
#endif

inline real load(__global const uchar *raw, const int dtype, const int i, const real scale, const real zp) {
    real v;
    if (dtype == 0) v = (real)((__global const float *)raw)[i];
    else if (dtype == 1) v = (real)raw[i];
    else v = (real)((__global const char *)raw)[i];
    return scale != 0 ? (v - zp) * scale : v;
}

#define CAND_PARAMS __global int *count, const int capacity, __global int *cand_key, __global real *cand_score, \
    __global int *cand_class, __global real *cand_box

inline void append(CAND_PARAMS, const int key, const real score, const int cls, const real4 box) {
    const int k = atomic_inc(count);
    if (k >= capacity) return;
    cand_key[k] = key; cand_score[k] = score; cand_class[k] = cls;
    vstore4(box, k, cand_box);
}

/* One anchor a work-item. activation: 0 none, 1 sigmoid, 2 softmax over all columns; `first` is 1 when
 * column 0 is the background class. box_order: 0 yxhw, 1 xywh, 2 xyxy, 3 yxyx. Boxes come out (x0, y0, x1, y1). */
__kernel void ssd_decode(__global const uchar *enc, const int enc_dtype, const real enc_scale, const real enc_zp,
                         __global const uchar *scores, const int sc_dtype, const real sc_scale, const real sc_zp,
                         __global const real *anchors, const int n, const int cols, const int first,
                         const int activation, const int box_order, const real ys, const real xs, const real hs,
                         const real ws, const real threshold, CAND_PARAMS) {
    const int i = get_global_id(0);
    if (i >= n) return;
    real m = 0, total = 0;
    if (activation == 2) {
        m = load(scores, sc_dtype, i * cols, sc_scale, sc_zp);
        for (int c = 1; c < cols; ++c) m = fmax(m, load(scores, sc_dtype, i * cols + c, sc_scale, sc_zp));
        for (int c = 0; c < cols; ++c) total += exp(load(scores, sc_dtype, i * cols + c, sc_scale, sc_zp) - m);
    }
    bool decoded = false;
    real4 box = (real4)(0);
    for (int c = first; c < cols; ++c) {
        const real x = load(scores, sc_dtype, i * cols + c, sc_scale, sc_zp);
        const real p = activation == 1 ? (real)0.5 * ((real)1 + tanh((real)0.5 * x))
                     : activation == 2 ? exp(x - m) / total : x;
        if (!(p >= threshold)) continue;
        if (!decoded) {
            const real t0 = load(enc, enc_dtype, 4 * i, enc_scale, enc_zp);
            const real t1 = load(enc, enc_dtype, 4 * i + 1, enc_scale, enc_zp);
            const real t2 = load(enc, enc_dtype, 4 * i + 2, enc_scale, enc_zp);
            const real t3 = load(enc, enc_dtype, 4 * i + 3, enc_scale, enc_zp);
            const bool yfirst = box_order == 0 || box_order == 3;
            const real a = yfirst ? t0 : t1, b = yfirst ? t1 : t0, cc = yfirst ? t2 : t3, d = yfirst ? t3 : t2;
            const real ya = anchors[4 * i], xa = anchors[4 * i + 1], ha = anchors[4 * i + 2], wa = anchors[4 * i + 3];
            if (box_order < 2) {
                const real yc = a / ys * ha + ya, xc = b / xs * wa + xa;
                const real h = exp(cc / hs) * ha, w = exp(d / ws) * wa;
                box = (real4)(xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2);
            } else {
                box = (real4)(b / xs * wa + xa - wa / 2, a / ys * ha + ya - ha / 2,
                              d / xs * wa + xa + wa / 2, cc / ys * ha + ya + ha / 2);
            }
            decoded = true;
        }
        append(count, capacity, cand_key, cand_score, cand_class, cand_box, i * (cols - first) + (c - first), p,
               c - first, box);
    }
}

/* One candidate row a work-item: element (row, col) at pred[row * sn + col * sk]. first = 5 (v5: objectness
 * at col 4, score = class * objectness) or 4 (v8). The best class wins, ties to the lower id. Boxes stay raw
 * (cx, cy, w, h): whether they are pixels depends on every row (`pixels` is set when any |centre| > 2). */
__kernel void yolo_decode(__global const uchar *pred, const int dtype, const real scale, const real zp,
                          const int n, const int k, const int sn, const int sk, const int first,
                          const real threshold, __global int *pixels, CAND_PARAMS) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const real cx = load(pred, dtype, i * sn, scale, zp), cy = load(pred, dtype, i * sn + sk, scale, zp);
    if (fabs(cx) > (real)2 || fabs(cy) > (real)2) atomic_or(pixels, 1);
    const real obj = first == 5 ? load(pred, dtype, i * sn + 4 * sk, scale, zp) : (real)1;
    real best = 0;
    int id = 0;
    for (int c = first; c < k; ++c) {
        real v = load(pred, dtype, i * sn + c * sk, scale, zp);
        if (first == 5) v = v * obj;
        if (c == first || v > best) { best = v; id = c - first; }
    }
    if (!(best >= threshold)) return;
    const real4 box = (real4)(cx, cy, load(pred, dtype, i * sn + 2 * sk, scale, zp),
                              load(pred, dtype, i * sn + 3 * sk, scale, zp));
    append(count, capacity, cand_key, cand_score, cand_class, cand_box, i, best, id, box);
}

/* Candidates in the host's sorted order -> boxes (x0, y0, x1, y1) and classes. yolo: raw (cx, cy, w, h),
 * divided by the input size when `pixels` is set, then turned into corners as decode.decode_yolo does. */
__kernel void gather(__global const int *order, const int k, __global const real *cand_box,
                     __global const int *cand_class, const int yolo, __global const int *pixels, const real in_w,
                     const real in_h, __global real *boxes, __global int *classes) {
    const int i = get_global_id(0);
    if (i >= k) return;
    const int s = order[i];
    real4 b = vload4(s, cand_box);
    if (yolo) {
        if (*pixels) b = (real4)(b.x / in_w, b.y / in_h, b.z / in_w, b.w / in_h);
        b = (real4)(b.x - b.z / 2, b.y - b.w / 2, b.x + b.z / 2, b.y + b.w / 2);
    }
    vstore4(b, i, boxes);
    classes[i] = cand_class[s];
}

/* Work-item (word, i): bit t of mask[i * words + word] says that box j = 32 * word + t (j > i, in score
 * order) overlaps box i with IoU > limit (same class unless agnostic): decode.nms's formula and rule. */
__kernel void nms_mask(__global const real *boxes, __global const int *classes, const int k, const int words,
                       const real limit, const int agnostic, __global uint *mask) {
    const int word = get_global_id(0), i = get_global_id(1);
    if (word >= words || i >= k) return;
    const real4 a = vload4(i, boxes);
    const real area_a = fmax(a.z - a.x, (real)0) * fmax(a.w - a.y, (real)0);
    uint bits = 0;
    for (int t = 0; t < 32; ++t) {
        const int j = 32 * word + t;
        if (j <= i || j >= k || (!agnostic && classes[j] != classes[i])) continue;
        const real4 b = vload4(j, boxes);
        const real area_b = fmax(b.z - b.x, (real)0) * fmax(b.w - b.y, (real)0);
        const real w = fmax(fmin(a.z, b.z) - fmax(a.x, b.x), (real)0);
        const real h = fmax(fmin(a.w, b.w) - fmax(a.y, b.y), (real)0);
        const real inter = w * h;
        const real uni = area_a + area_b - inter;
        const real iou = uni > 0 ? inter / uni : (real)0;
        if (iou > limit) bits |= 1u << t;
    }
    mask[i * words + word] = bits;
}
