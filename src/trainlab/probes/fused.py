r"""The ``economy`` probes' elementwise sums as one pass in C over many tensors.

At every step the ``economy`` preset needs, for each parameter tensor :math:`k`, the
squared norms :math:`\|g_k\|^2, \|\theta_k\|^2, \|\theta_k - \theta_{0,k}\|^2,
\|\theta_{0,k}\|^2, \|\theta_k - \theta_{k-1}\|^2, \|\theta_{k-1}\|^2`
(:func:`~trainlab.probes.norms.param_norms`) and, from the per-example statistics
:math:`S = \sum_i g_i` and :math:`Q = \sum_i g_i^{\odot 2}`, the sums
:math:`\sum_j S_j^2`, :math:`\sum_j [V_j > 0]\,S_j^2 / V_j` with :math:`V = nQ - S^2`, and the
count of :math:`V_j > 0` (:func:`~trainlab.probes.gradient_noise._noise`), and for each
``nn.Linear`` layer the squares of its inputs and output gradients with their row sums
(:mod:`~trainlab.probes.per_sample`). Through torch's eager operations that is some 60
dispatched kernels a step (3-4 us each on a small model, where each does little work) and,
on a large one, differences written to memory and read back. Here each family is one call
of a small C function (:func:`tensor_norms`, :func:`gsnr_sums`, :func:`example_rows`;
plain C with GCC vector extensions, no torch headers: it compiles in about a second) that
walks every tensor once. :func:`norm_spread` gives the mean and standard deviation of the
per-example gradient norms (float64 sums rounded once; torch's ``mean``/``std`` differ from
them within :data:`RTOL`), and :func:`entry` the raw functions for
:class:`~trainlab.probes.noise_plan.NoisePlan`, which keeps its pointer arrays across steps.

The library is built once per source and compiler, with the system C compiler (``$CC``,
else ``cc``), into ``$TRAINLAB_CACHE/fused`` (default ``~/.cache/trainlab/fused``), named
by a hash of the source, the flags, the compiler and the machine type; several processes
may build at once
(each writes a temporary file and renames it into place). It is loaded through
:mod:`ctypes` and called with the tensors' data pointers (contiguous CPU float32/float64
tensors of one dtype; a call whose tensors are otherwise returns None and the caller takes
its eager path).

The numbers. Every element is computed with the operations of the eager path in the
tensors' own dtype and in the same order (the differences :math:`\theta - \theta_0` are
rounded to the dtype, as ``torch.sub`` rounds them; the GSNR's :math:`S^2`, :math:`V`, the
mask and the ratio are the eager path's float operations; the build forbids contracting a
product and a sum into one fused multiply-add), so only the summation differs: the terms
are added in 8 lanes, each lane summing at most 8 terms in float32 (512 in float64)
before it is added into a float64 total (a block's 8 lane sums as
:math:`((s_0 + s_1) + (s_2 + s_3)) + ((s_4 + s_5) + (s_6 + s_7))`; the norms are tested to
the bit against an emulation of this order); the square roots are taken in float64 and
rounded once to the dtype. For float32 every lane's sum of 8 nonnegative terms, each
product rounded once, is within 9 units of 2^-24 (5.4e-7) of its exact value, which
bounds the relative error of the whole sum (and halves for a norm); torch's float32
reductions accumulate in float32 in their own order, so the two paths differ in the last
bits (at 4M float32 entries torch's norm is off by up to 1e-4; these sums are nearer the
exact ones). Stated tolerance (:data:`RTOL`), tested against a float64 computation of the
same elements: relative 1e-6 for float32 results, 1e-12 for float64 ones; the count of
positive variances is exact.

A kept plan (:class:`NormsPlan`). On a small model the cost of a call is mostly Python:
checking each tensor's dtype, device, contiguity and size and collecting its pointer takes
0.5-1 us, and a step passes some 30 tensors to :func:`tensor_norms`. A caller that keeps a
``plans`` list (the monitor's run cache) does those checks once per set of tensors; each
later call checks only that every tensor is the same object at the same data pointer
(which a replaced tensor, a swapped ``.data`` or a move to another dtype or device does
not pass: a new plan is built, or the tensors are refused), and checks the gradients, which
the caller owns and which are new tensors at most steps, in full. The plan holds a
reference to each tensor and its storage, so no address it keeps is freed and reused while
it is kept, and C gets only pointers equal to the tensors' current ones. In the same call the
C function forms two rows from the norms by the probes' own elementwise formulas (the
cosine distance of ``rotation``, the ratio of ``update-ratio``: the same bits as the torch
operations they replace, tested), and copies norms the caller knows already (those of the
initial parameters, kept from the first step; those of the previous parameters, the weight
norms of the step before) into their rows.

Turning it off: ``TRAINLAB_FUSED=0`` in the environment before the first use, or
:func:`set_enabled` (False) at any time; the eager path then runs and gives today's numbers
to the bit. Every reason for the eager path (off, no compiler, a failed build, tensors it
does not take) is logged once per process as a warning on the ``trainlab`` logger.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import operator
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import time
from array import array
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from trainlab.log import warn_once

RTOL = {torch.float32: 1e-6, torch.float64: 1e-12}
"""Stated relative tolerance of the fused sums against exact (float64) sums of the same
elements, per dtype of the tensors (tested)."""

ENV = "TRAINLAB_FUSED"
"""Environment variable: ``0`` (or ``off``, ``false``, ``no``) turns the fused path off."""

FLAGS = ("-O3", "-std=gnu99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno")

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
/* The norm pass also gets an AVX-512 clone: its float64 lanes are 8 doubles (512 bits),
   which GCC's AVX2 code kept in memory and moved through general registers at every
   step (37 us against 7 at 23k entries); the same IEEE operations on every clone. */
#define WIDE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#define WIDE_CLONES
#endif
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef double d8 __attribute__((vector_size(64)));
typedef int64_t l8 __attribute__((vector_size(64)));
#define WIDE(x) __builtin_convertvector((x), d8)
#define HSUM(v) \
    ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))
/* Lanes of 8 entries; each lane sums at most ITERS terms in the tensors' type (float: 8,
   so that every lane's sum is within 9 * 2^-24 of its exact value, relative; double: 512)
   before it is added into a double total. */
#define ITERS_float 8
#define ITERS_double 512

/* The copy of w (NORMS' array c) of a tensor of at least STREAM_MIN entries (beyond a core's
   cache) is written with non-temporal stores where the machine has them (SSE2, every
   x86-64), so that the destination's lines are not read into the cache first; smaller ones
   stay cached for the next step's read. The stored bits are w's. */
#define STREAM_MIN 1048576
#if defined(__x86_64__)
#include <emmintrin.h>
static inline void put8_float(float *c, const float *w, int nt) {
    if (nt) { _mm_stream_ps(c, _mm_loadu_ps(w)); _mm_stream_ps(c + 4, _mm_loadu_ps(w + 4)); }
    else memcpy(c, w, 8 * sizeof *c);
}
static inline void put8_double(double *c, const double *w, int nt) {
    if (nt) for (int j = 0; j < 8; j += 2) _mm_stream_pd(c + j, _mm_loadu_pd(w + j));
    else memcpy(c, w, 8 * sizeof *c);
}
#define FENCE() _mm_sfence()
#else
static inline void put8_float(float *c, const float *w, int nt) {
    (void)nt; memcpy(c, w, 8 * sizeof *c);
}
static inline void put8_double(double *c, const double *w, int nt) {
    (void)nt; memcpy(c, w, 8 * sizeof *c);
}
#define FENCE() ((void)0)
#endif

/* HSUM's sum ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)) as two shuffled vector
   additions and one scalar one: the same additions of the same operands, so the same bits
   (an IEEE sum does not depend on the order of its two operands), without taking the
   vector apart element by element. The accumulators are named variables (not an array
   cleared by memset, which the compiler kept in memory and cleared with rep stos). */
#if defined(__clang__) || __GNUC__ >= 12
#define SHUFFLE(v, ...) __builtin_shufflevector((v), (v), __VA_ARGS__)
#else
#define SHUFFLE(v, ...) __builtin_shuffle((v), (l8){__VA_ARGS__})
#endif
#define PAIRSUM(x) ({                                                                    \
    d8 v_ = (x), p_ = v_ + SHUFFLE(v_, 1, 0, 3, 2, 5, 4, 7, 6);                           \
    d8 q_ = p_ + SHUFFLE(p_, 2, 3, 0, 1, 6, 7, 4, 5);                                     \
    q_[0] + q_[4]; })

/* Sums of squares per tensor of the six families (g, w, w - a, a, w - b, b), one pass over
   each tensor; ALL = 0 skips the squares of a and b. Missing arrays (pointer 0) are read as
   w. The differences are rounded to T (as torch.sub rounds them). A fifth array c, when
   given, receives a copy of w (each block stored after its loads: c may even be b). The
   gradients' pointers come from gptrs when it is given (else column 0 of ptrs). */
#define NORMS(NAME, T, VT, ALL)                                                           \
WIDE_CLONES static void NAME(int64_t count, const int64_t *sizes, const uintptr_t *ptrs,  \
                        const uintptr_t *gptrs, int want, T *out) {                       \
    for (int64_t k = 0; k < count; ++k) {                                                 \
        const T *w = (const T *)ptrs[5 * k + 1];                                          \
        uintptr_t gp = gptrs ? gptrs[k] : ptrs[5 * k];                                    \
        const T *g = gp ? (const T *)gp : w;                                              \
        const T *a = ptrs[5 * k + 2] ? (const T *)ptrs[5 * k + 2] : w;                    \
        const T *b = ptrs[5 * k + 3] ? (const T *)ptrs[5 * k + 3] : w;                    \
        T *c = (T *)ptrs[5 * k + 4];                                                      \
        int64_t n = sizes[k], i = 0;                                                      \
        int nt = c && n >= STREAM_MIN && (uintptr_t)c % 16 == 0;                          \
        double tot[6] = {0, 0, 0, 0, 0, 0};                                               \
        while (i + 8 <= n) {                                                              \
            VT s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0};                \
            for (int it = 0; it < ITERS_##T && i + 8 <= n; ++it, i += 8) {                \
                VT gv, wv, av, bv;                                                        \
                memcpy(&gv, g + i, sizeof gv);                                            \
                memcpy(&wv, w + i, sizeof wv);                                            \
                memcpy(&av, a + i, sizeof av);                                            \
                memcpy(&bv, b + i, sizeof bv);                                            \
                if (c) put8_##T(c + i, w + i, nt);                                        \
                VT da = wv - av, db = wv - bv;                                            \
                s0 += gv * gv; s1 += wv * wv;                                             \
                s2 += da * da; s4 += db * db;                                             \
                if (ALL) { s3 += av * av; s5 += bv * bv; }                                \
            }                                                                             \
            tot[0] += PAIRSUM(WIDE(s0)); tot[1] += PAIRSUM(WIDE(s1));                     \
            tot[2] += PAIRSUM(WIDE(s2)); tot[4] += PAIRSUM(WIDE(s4));                     \
            if (ALL) { tot[3] += PAIRSUM(WIDE(s3)); tot[5] += PAIRSUM(WIDE(s5)); }        \
        }                                                                                 \
        double r[6] = {0, 0, 0, 0, 0, 0};                                                 \
        for (; i < n; ++i) {                                                              \
            T wv = w[i], av = a[i], bv = b[i], gv = g[i];                                 \
            T da = wv - av, db = wv - bv;                                                 \
            if (c) c[i] = wv;                                                             \
            r[0] += gv * gv; r[1] += wv * wv; r[2] += da * da;                            \
            r[3] += av * av; r[4] += db * db; r[5] += bv * bv;                            \
        }                                                                                 \
        for (int f = 0; f < 6; ++f)                                                       \
            if (want & (1 << f)) out[f * count + k] = (T)sqrt(tot[f] + r[f]);             \
    }                                                                                     \
    FENCE();                                                                              \
}
NORMS(norms_f32_all, float, f8, 1)
NORMS(norms_f32_four, float, f8, 0)
NORMS(norms_f64_all, double, d8, 1)
NORMS(norms_f64_four, double, d8, 0)

/* Rows 6 and 7 of out, per tensor, from its norms as stored in out (the operations of the
   norm probes' torch formulas, in T and in their order; tiny = (T)1e-30; max(x, tiny) keeps
   a NaN x, as torch's clamp_min does): the cosine distance of rotation,
   ((d - e)(d + e)) / max((w + w) w0, tiny) with e = w - w0 and d = |w - w0| (rows 2, 1,
   3), and the update ratio dp / max(wp, tiny) (rows 4, 5). Rows 3 and 5 may be given
   instead of computed (a0, b0: norms of a and b kept from an earlier pass; copied). */
#define DERIVED(NAME, T)                                                                  \
static void NAME(int64_t count, int want, T *out, const T *a0, const T *b0) {             \
    const T tiny = (T)1e-30;                                                              \
    T *w = out + count, *d = out + 2 * count, *w0 = out + 3 * count;                      \
    T *dp = out + 4 * count, *wp = out + 5 * count;                                       \
    if (a0) memcpy(w0, a0, count * sizeof *w0);                                           \
    if (b0) memcpy(wp, b0, count * sizeof *wp);                                           \
    if (want & (1 << 6))                                                                  \
        for (int64_t k = 0; k < count; ++k) {                                             \
            T e = w[k] - w0[k];                                                           \
            T num = (d[k] - e) * (d[k] + e);                                              \
            T den = (w[k] + w[k]) * w0[k];                                                \
            out[6 * count + k] = num / (den < tiny ? tiny : den);                         \
        }                                                                                 \
    if (want & (1 << 7))                                                                  \
        for (int64_t k = 0; k < count; ++k)                                               \
            out[7 * count + k] = dp[k] / (wp[k] < tiny ? tiny : wp[k]);                   \
}
DERIVED(derived_f32, float)
DERIVED(derived_f64, double)

/* The norms (rows 0-5 as asked by want's bits 0-5; the squares of a and b only when bit 3
   or 5 is set), then rows 6 and 7 (bits 6, 7); the rows neither asked for nor given are
   set to zero. */
#define OWN ((1 << 3) | (1 << 5))
#define ZERO_ROWS(T)                                                                      \
    for (int r = 0; r < 8; ++r)                                                           \
        if (!(want & (1 << r)) && !(r == 3 && a0) && !(r == 5 && b0))                     \
            memset(out + r * count, 0, count * sizeof(T));
void trainlab_norms_f32(int64_t count, const int64_t *sizes, const uintptr_t *ptrs,
                        const uintptr_t *gptrs, int want, float *out, const float *a0,
                        const float *b0) {
    ZERO_ROWS(float)
    ((want & OWN) ? norms_f32_all : norms_f32_four)(count, sizes, ptrs, gptrs, want, out);
    derived_f32(count, want, out, a0, b0);
}
void trainlab_norms_f64(int64_t count, const int64_t *sizes, const uintptr_t *ptrs,
                        const uintptr_t *gptrs, int want, double *out, const double *a0,
                        const double *b0) {
    ZERO_ROWS(double)
    ((want & OWN) ? norms_f64_all : norms_f64_four)(count, sizes, ptrs, gptrs, want, out);
    derived_f64(count, want, out, a0, b0);
}
/* The same with the arguments in one array, as a kept plan fills them in place (one
   argument to convert per call): a = {double?, count, sizes, ptrs, gptrs, want, out, a0,
   b0}, pointers as integers (0: none). */
void trainlab_norms_packed(const uintptr_t *a) {
    if (a[0])
        trainlab_norms_f64((int64_t)a[1], (const int64_t *)a[2], (const uintptr_t *)a[3],
                           (const uintptr_t *)a[4], (int)a[5], (double *)a[6],
                           (const double *)a[7], (const double *)a[8]);
    else
        trainlab_norms_f32((int64_t)a[1], (const int64_t *)a[2], (const uintptr_t *)a[3],
                           (const uintptr_t *)a[4], (int)a[5], (float *)a[6],
                           (const float *)a[7], (const float *)a[8]);
}

/* The GSNR sums over S (sum) and Q (sq), per element as the eager path in T:
   s = S (or src * f, or S * f, on a segment), s2 = s * s, v = Q [* qf] * nn - s2,
   m = v > 0, r = (m * s2) / max(v, tiny) (NaN kept); out += (sum s2, sum r, count m),
   range by range in offset order (out zeroed first when fresh: consecutive calls over
   consecutive parts without it add the same terms in the same order as one call).
   In a range: lanes of 8 entries, each lane summing at most ITERS terms in T; each
   block's lane sums widened and added by PAIRSUM into a double (the range's), then the
   tail's terms one by one, then the range's double into out. The mask m is the bits of 1
   where v > 0 (else 0: the value 1 or 0 that converting the comparison gives, without a
   conversion of int64 lanes, which AVX-512F does one lane at a time). The counts stay
   in the lanes for up to COUNT_BLOCKS blocks (at most 512 << 20 < 2^31 per lane) and
   are then added into an int64: an exact integer sum in any order. */
#define COUNT_BLOCKS (1 << 20)
/* A hint to load the cache line AHEAD_BYTES past p (a prefetch never faults; the address
   is formed as an integer, not as a pointer past the array): on tensors beyond the core's
   caches the two streams' loads otherwise wait on memory (8.5M float32 entries, warm
   tight loop: 6.9-7.5 ms a pass without, 2.8 with). Nothing is computed from it. */
#define AHEAD_BYTES 2048
#define AHEAD(p) __builtin_prefetch((const void *)((uintptr_t)(p) + AHEAD_BYTES))
#define GSNR_RANGE(T, VT, IT, SRC, LO, HI)                                                \
    {                                                                                     \
        int64_t i = (LO);                                                                 \
        const VT qfv = qf - (VT){0}, nv = nn - (VT){0}, tv = tiny - (VT){0};              \
        double p2 = 0, pr = 0;                                                            \
        const IT onev = (IT)((VT){0} + 1);                                                \
        int64_t c = 0, blocks = 0;                                                        \
        IT cv = {0};                                                                      \
        while (i + 8 <= (HI)) {                                                           \
            VT a2 = {0}, ar = {0};                                                        \
            for (int it = 0; it < ITERS_##T && i + 8 <= (HI); ++it, i += 8) {             \
                if (sizeof(T) == 8 || !(it & 1)) {                                        \
                    AHEAD(sq + i);                                                        \
                    AHEAD(SRC##_AT(i));                                                   \
                }                                                                         \
                VT sv, v;                                                                 \
                SRC##_LOAD(sv, i);                                                        \
                memcpy(&v, sq + i, sizeof v);                                             \
                VT s2 = sv * sv;                                                          \
                if (scale_q) v = v * qfv;                                                 \
                v = v * nv;                                                               \
                v = v - s2;                                                               \
                IT pos = v > (VT){0};                                                     \
                IT low = v < tv;                                                          \
                VT m = (VT)(pos & onev);                                                  \
                VT den = (VT)((low & (IT)tv) | (~low & (IT)v));                           \
                VT r = (m * s2) / den;                                                    \
                cv -= pos;                                                                \
                a2 += s2;                                                                 \
                ar += r;                                                                  \
            }                                                                             \
            p2 += PAIRSUM(WIDE(a2));                                                      \
            pr += PAIRSUM(WIDE(ar));                                                      \
            if (++blocks == COUNT_BLOCKS) {                                               \
                for (int j = 0; j < 8; ++j) c += cv[j];                                   \
                cv = (IT){0};                                                             \
                blocks = 0;                                                               \
            }                                                                             \
        }                                                                                 \
        for (int j = 0; j < 8; ++j) c += cv[j];                                           \
        for (; i < (HI); ++i) {                                                           \
            T sv = SRC(i);                                                                \
            T s2 = sv * sv;                                                               \
            T v = sq[i];                                                                  \
            if (scale_q) v = v * qf;                                                      \
            v = v * nn;                                                                   \
            v = v - s2;                                                                   \
            T m = v > 0 ? (T)1 : (T)0;                                                    \
            T r = (m * s2) / (v < tiny ? tiny : v);                                       \
            c += v > 0;                                                                   \
            p2 += s2;                                                                     \
            pr += r;                                                                      \
        }                                                                                 \
        out[0] += p2; out[1] += pr; out[2] += (double)c;                                  \
    }

#define PLAIN(i) sum[i]
#define PLAIN_AT(i) (sum + (i))
#define FROM_SRC_AT(i) (src + (i) - lo)
#define SCALED_AT(i) (sum + (i))
#define PLAIN_LOAD(x, i) memcpy(&(x), sum + (i), sizeof(x))
#define FROM_SRC(i) (src[(i) - lo] * f)
#define FROM_SRC_LOAD(x, i) \
    do { memcpy(&(x), src + (i) - lo, sizeof(x)); (x) = (x) * fv; } while (0)
#define SCALED(i) (sum[i] * f)
#define SCALED_LOAD(x, i) \
    do { memcpy(&(x), sum + (i), sizeof(x)); (x) = (x) * fv; } while (0)

#define GSNR(NAME, T, VT, IT, CLONE)                                                      \
CLONE void NAME(const T *sum, const T *sq, int64_t size, int64_t nsegs,                  \
                 const int64_t *segs, const uintptr_t *srcs, const T *factors,            \
                 int scale_q, T qf, T nn, T tiny, int fresh, double *out) {               \
    if (fresh) out[0] = out[1] = out[2] = 0;                                              \
    int64_t at = 0;                                                                       \
    for (int64_t q = 0; q <= nsegs; ++q) {                                                \
        int64_t lo = q < nsegs ? segs[2 * q] : size;                                      \
        GSNR_RANGE(T, VT, IT, PLAIN, at, lo)                                              \
        if (q == nsegs) break;                                                            \
        int64_t hi = lo + segs[2 * q + 1];                                                \
        T f = factors[q];                                                                 \
        VT fv = f - (VT){0};                                                              \
        if (srcs[q]) {                                                                    \
            const T *src = (const T *)srcs[q];                                            \
            GSNR_RANGE(T, VT, IT, FROM_SRC, lo, hi)                                       \
        } else {                                                                          \
            GSNR_RANGE(T, VT, IT, SCALED, lo, hi)                                         \
        }                                                                                 \
        at = hi;                                                                          \
    }                                                                                     \
}
/* float32: AVX2 and default clones only (an avx512f clone without AVX512VL may use 16
   ymm registers only, and GCC spilled the 256-bit lanes: slower); float64 also gets the
   avx512f clone, where d8 is one register (AVX2 moved it through memory: 4x slower). */
GSNR(trainlab_gsnr_f32, float, f8, i8, CLONES)
GSNR(trainlab_gsnr_f64, double, d8, l8, WIDE_CLONES)

/* Per-example squared gradient norms of Linear layers from their inputs a (B x I) and
   output gradients d (B x O): for each layer the squares d*d and a*a (in T, written out
   for the caller's products), their row sums r_d, r_a, and, with a bias, the column sums
   of d*d; acc[b] += r_d (r_a + 1 with a bias) in double; sq_norms = acc * factor, rounded
   once to T. phase: 1 zeroes acc first, 2 writes sq_norms at the end (layers passed in
   several calls: 1 on the first, 2 on the last, the same sums as one call). */
#define ROW(NAME, T, VT)                                                                  \
static inline double NAME(const T *x, T *out, int64_t m, double *col) {                   \
    double total = 0;                                                                     \
    int64_t i = 0;                                                                        \
    while (i + 8 <= m) {                                                                  \
        VT acc = {0};                                                                     \
        for (int it = 0; it < ITERS_##T && i + 8 <= m; ++it, i += 8) {                    \
            VT v;                                                                         \
            memcpy(&v, x + i, sizeof v);                                                  \
            v = v * v;                                                                    \
            memcpy(out + i, &v, sizeof v);                                                \
            acc += v;                                                                     \
            if (col) {                                                                    \
                d8 c;                                                                     \
                memcpy(&c, col + i, sizeof c);                                            \
                c += WIDE(v);                                                             \
                memcpy(col + i, &c, sizeof c);                                            \
            }                                                                             \
        }                                                                                 \
        d8 wide = WIDE(acc);                                                              \
        total += HSUM(wide);                                                              \
    }                                                                                     \
    for (; i < m; ++i) {                                                                  \
        T v = x[i] * x[i];                                                                \
        out[i] = v;                                                                       \
        total += v;                                                                       \
        if (col) col[i] += v;                                                             \
    }                                                                                     \
    return total;                                                                         \
}
ROW(row_f32, float, f8)
ROW(row_f64, double, d8)

#define ROWS(NAME, T, ROWFN, CLONE)                                                       \
CLONE void NAME(int64_t layers, int64_t batch, const int64_t *dims, const uintptr_t *ptrs, \
                 double *col, double *acc, double factor, int phase, T *sq_norms) {       \
    if (phase & 1) for (int64_t b = 0; b < batch; ++b) acc[b] = 0;                        \
    for (int64_t l = 0; l < layers; ++l) {                                                \
        int64_t o = dims[2 * l], in = dims[2 * l + 1];                                    \
        const T *d = (const T *)ptrs[5 * l], *a = (const T *)ptrs[5 * l + 1];             \
        T *dsq = (T *)ptrs[5 * l + 2], *asq = (T *)ptrs[5 * l + 3];                       \
        T *bsq = (T *)ptrs[5 * l + 4];                                                    \
        if (bsq) for (int64_t j = 0; j < o; ++j) col[j] = 0;                              \
        for (int64_t b = 0; b < batch; ++b) {                                             \
            double rd = ROWFN(d + b * o, dsq + b * o, o, bsq ? col : 0);                  \
            double ra = ROWFN(a + b * in, asq + b * in, in, 0);                           \
            acc[b] += rd * (bsq ? ra + 1 : ra);                                           \
        }                                                                                 \
        if (bsq) for (int64_t j = 0; j < o; ++j) bsq[j] = (T)col[j];                      \
    }                                                                                     \
    if (phase & 2) for (int64_t b = 0; b < batch; ++b) sq_norms[b] = (T)(acc[b] * factor); \
}
ROWS(trainlab_rows_f32, float, row_f32, CLONES)
ROWS(trainlab_rows_f64, double, row_f64, WIDE_CLONES)

/* The spread of the per-example norms r_b = sqrt(s_b) (each root rounded to T, as a
   T square root rounds it) of n squared norms s: out = (sum_b r_b, sum_b (r_b - m)^2)
   with m = out[0] / n, both summed in double in index order. */
#define SPREAD(NAME, T)                                                                   \
void NAME(const T *sq, int64_t n, double *out) {                                          \
    double total = 0, dev = 0;                                                            \
    for (int64_t b = 0; b < n; ++b) total += (T)sqrt((double)sq[b]);                      \
    double m = total / (double)n;                                                         \
    for (int64_t b = 0; b < n; ++b) {                                                     \
        double e = (double)(T)sqrt((double)sq[b]) - m;                                    \
        dev += e * e;                                                                     \
    }                                                                                     \
    out[0] = total; out[1] = dev;                                                         \
}
SPREAD(trainlab_spread_f32, float)
SPREAD(trainlab_spread_f64, double)
"""

_DTYPES = {torch.float32: ("f32", ctypes.c_float), torch.float64: ("f64", ctypes.c_double)}
_P = ctypes.c_void_p
_I = ctypes.c_int64

_enabled: bool | None = None  # None: read ENV at the first use
_lib: ctypes.CDLL | None = None
_failed = False


def set_enabled(on: bool) -> None:
    """Use the fused path (True, the default unless ``TRAINLAB_FUSED=0``) or the eager one
    (False) from now on, in this process."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    """Whether the fused path is switched on (not whether it can be built)."""
    global _enabled
    if _enabled is None:
        _enabled = os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false", "no")
    return _enabled


def cache_dir() -> Path:
    """Where the built library is kept: ``$TRAINLAB_CACHE/fused`` (default
    ``~/.cache/trainlab/fused``)."""
    base = os.environ.get("TRAINLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                             "trainlab")
    return Path(base) / "fused"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc")


def build(directory: Path | None = None) -> Path:
    """The shared library of :data:`SOURCE`, built if it is not in ``directory`` (default
    :func:`cache_dir`) yet; raises ``RuntimeError`` (no compiler) or ``OSError`` /
    ``subprocess.CalledProcessError`` (the build failed)."""
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found ($CC, cc or gcc on PATH)")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.splitlines()[:1]
    key = hashlib.sha256("\0".join([SOURCE, *FLAGS, cc, *version, platform.machine()]
                                   ).encode()).hexdigest()[:20]
    directory = cache_dir() if directory is None else directory
    target = directory / f"trainlab_fused_{key}.so"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(directory)
    if target.exists():
        _check_private(target)
        return target
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src = Path(tmp) / "fused.c"
        src.write_text(SOURCE)
        built = Path(tmp) / "fused.so"
        subprocess.run([cc, *FLAGS, str(src), "-o", str(built), "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.chmod(built, 0o755)  # not group-writable whatever the umask (_check_private)
        os.replace(built, target)  # atomic: a concurrent build renames the same bytes
    _remove_stale(directory, target)
    return target


STALE_SECONDS = 3600.0
"""A build removes the other libraries of this user in its directory that were last written
at least this long ago (:func:`_remove_stale`)."""


def _remove_stale(directory: Path, keep: Path) -> None:
    """After a build: remove the other ``trainlab_fused_*.so`` files of this user in
    ``directory`` written at least :data:`STALE_SECONDS` ago (libraries of older sources or
    compilers: one would otherwise be kept per source change). Only plain files of that name
    pattern, owned by this user. The recent ones are left: another checkout of another
    version may be in use at the same time, and the two would otherwise remove each other's
    library at every build. A process that has loaded a removed library keeps it mapped; one
    that finds its library gone before loading it builds it again (:func:`_load`). A file
    that cannot be removed is left."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    now = time.time()
    for old in directory.glob("trainlab_fused_*.so"):
        if old.name == keep.name:
            continue
        try:
            st = old.lstat()
            if (stat.S_ISREG(st.st_mode) and (uid is None or st.st_uid == uid)
                    and now - st.st_mtime >= STALE_SECONDS):
                old.unlink()
        except OSError as exc:  # harmless (a stale file stays), but said
            warn_once("fused:stale", "could not remove the stale fused library %s (%s); it "
                      "is left in the cache", old, exc)


def _check_private(path: Path) -> None:
    """Refuse (``RuntimeError``) a cache directory or library that another user owns or may
    write: loading a shared library runs its code, so a file planted in a shared cache (e.g.
    ``TRAINLAB_CACHE=/tmp``) must never be loaded."""
    if not hasattr(os, "getuid"):  # no POSIX owners (Windows): nothing to compare
        return
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RuntimeError(f"{path} is not private to this user (owner uid {st.st_uid}, mode "
                           f"{st.st_mode & 0o777:o}); set TRAINLAB_CACHE to a directory of "
                           "your own")


def _load() -> ctypes.CDLL | None:
    """The library (built and loaded at the first call), or None after a failure (warned
    once)."""
    global _lib, _failed
    if _lib is not None or _failed:
        return _lib
    try:
        path = build()
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            if path.exists():
                raise
            lib = ctypes.CDLL(str(build()))  # removed as stale by another build meanwhile
        lib.trainlab_norms_packed.argtypes = [_P]
        lib.trainlab_norms_packed.restype = None
        for suffix, scalar in _DTYPES.values():
            norms = getattr(lib, f"trainlab_norms_{suffix}")
            norms.argtypes = [_I, _P, _P, _P, ctypes.c_int, _P, _P, _P]
            norms.restype = None
            gsnr = getattr(lib, f"trainlab_gsnr_{suffix}")
            gsnr.argtypes = [_P, _P, _I, _I, _P, _P, _P, ctypes.c_int, scalar, scalar,
                             scalar, ctypes.c_int, _P]
            gsnr.restype = None
            rows = getattr(lib, f"trainlab_rows_{suffix}")
            rows.argtypes = [_I, _I, _P, _P, _P, _P, ctypes.c_double, ctypes.c_int, _P]
            rows.restype = None
            spread = getattr(lib, f"trainlab_spread_{suffix}")
            spread.argtypes = [_P, _I, _P]
            spread.restype = None
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as exc:
        _failed = True
        detail = getattr(exc, "stderr", None)
        warn_once("fused:build", "fused economy sums unavailable (%s%s); the eager torch "
                  "path is used", exc, f": {detail.decode(errors='replace')[:300]}"
                  if isinstance(detail, bytes) else "")
        return None
    _lib = lib
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded library when the fused path is on and could be built, else None (the
    reason warned once)."""
    if not enabled():
        warn_once("fused:off", "fused economy sums turned off (%s=0 or set_enabled(False)): "
                  "the eager torch path is used", ENV)
        return None
    return _load()


def available() -> bool:
    """Whether the fused path is on and its library not known to have failed (it may still
    be unbuilt: the first call builds it)."""
    return enabled() and not _failed


def fits(tensors: list[torch.Tensor]) -> bool:
    """Whether ``tensors`` are contiguous CPU tensors of one dtype the C functions take
    (float32 or float64), as :func:`tensor_norms` needs its weights (not whether the fused
    path is on)."""
    return bool(tensors) and tensors[0].dtype in _DTYPES and _fits(tensors, tensors[0].dtype)


def _fits(tensors: list[torch.Tensor], dtype: torch.dtype) -> bool:
    return all(t.dtype is dtype and t.is_cpu and t.is_contiguous() for t in tensors)


def _pointers(tensors: list[torch.Tensor], dtype: torch.dtype, sizes: list[int]
              ) -> list[int] | None:
    """The data pointers of ``tensors`` when each is a contiguous CPU tensor of ``dtype``
    with ``sizes[i]`` entries (what the C functions may read), else None (also when the
    two lists differ in length)."""
    if len(tensors) != len(sizes):
        return None
    out = [t.data_ptr() for t, size in zip(tensors, sizes) if t.dtype is dtype and t.is_cpu
           and t.is_contiguous() and t.numel() == size]  # one comprehension: no call per tensor
    return out if len(out) == len(sizes) else None


_DATA_PTR = torch.Tensor.data_ptr


def unfit(what: str, why: str) -> None:
    """Warn once that ``what`` takes the eager path because of ``why``."""
    warn_once(f"fused:{what}:{why}", "fused economy sums: %s takes the eager torch path (%s)",
              what, why)


FAMILIES = ("grad", "weight", "init_dist", "init", "prev_dist", "prev")
"""The norm families of :func:`tensor_norms`'s result: its first six rows, in order."""

ROWS = (*FAMILIES, "rotation", "update_ratio")
"""All rows of :func:`tensor_norms`'s result, in order: the norm families, then the two
formed from them."""


def tensor_norms(weights: list[torch.Tensor], grads: list[torch.Tensor] | None,
                 init: list[torch.Tensor] | None, prev: list[torch.Tensor] | None,
                 want: tuple[str, ...], copy_to: list[torch.Tensor] | None = None,
                 plans: list[NormsPlan] | None = None, init_norms: torch.Tensor | None = None,
                 prev_norms: torch.Tensor | None = None) -> torch.Tensor | None:
    """Per-tensor L2 norms of the families ``want`` (names of :data:`ROWS`) in one pass:
    a ``(8, len(weights))`` tensor of the weights' dtype whose rows named in ``want`` hold
    :math:`\\|g_k\\|`, :math:`\\|\\theta_k\\|`, :math:`\\|\\theta_k - a_k\\|`, :math:`\\|a_k\\|`,
    :math:`\\|\\theta_k - b_k\\|`, :math:`\\|b_k\\|` (``a = init``, ``b = prev``), and,
    formed from those rows, ``rotation``'s cosine distance
    :math:`((d - e)(d + e)) / \\max((w + w) a, 10^{-30})` (:math:`d = \\|\\theta_k - a_k\\|`,
    :math:`w = \\|\\theta_k\\|`, :math:`e = w - \\|a_k\\|`) and ``update_ratio``'s
    :math:`\\|\\theta_k - b_k\\| / \\max(\\|b_k\\|, 10^{-30})`, each element by the
    operations of those probes' torch formulas in the dtype and their order (the same
    bits); the rows not asked for are zero. ``init_norms`` / ``prev_norms``: the norms of
    ``init`` / ``prev`` known already (a contiguous vector per family, e.g. a row of an
    earlier result, or an earlier result itself, whose weight row is then read: the
    previous step's weight norms are the norms of its parameters), copied into their rows
    instead of computed. ``copy_to`` (one tensor
    per weight, of its dtype and size, contiguous): the same pass also copies each weight
    into it (an exact copy, written as the weight is read; it may be ``prev`` itself).
    None (nothing read or written) when the fused path is off or unavailable, or the
    tensors are not all contiguous CPU tensors of one float32/float64 dtype (warned once).

    ``plans``: a list the caller keeps from one call to the next (e.g. a monitor's run
    cache), holding the :class:`NormsPlan` of recent calls; a plan whose tensors are still
    the ones given is reused (:meth:`NormsPlan.matches`), else a new one is built and kept.
    The numbers are the same either way, to the bit. A plan (and so a ``plans`` list) is
    for one thread at a time: a call writes its arguments into the plan's array. Each
    call returns a new table, never written again (:class:`_Tables`)."""
    lib = library()
    if lib is None or not weights:
        return None
    columns = (weights, init or (), prev or (), copy_to or ())
    plan = None
    if plans is not None:
        for kept in plans:
            if kept.matches(columns):
                plan = kept
                break
    if plan is None:
        plan = NormsPlan.build(lib, columns)
        if plan is None:
            return None
        if plans is None:  # used once: a table of its own
            plan.tables = _Tables(plan.count, plan.dtype, 1)
        else:  # the plans of other weights are dropped: they keep tensors
            same = [p for p in plans if p.same_weights(weights)]
            plan.tables = same[0].tables if same else _Tables(plan.count, plan.dtype)
            plans[:] = [plan, *same][:PLANS_KEPT]
    return plan.run(grads or (), want, init_norms, prev_norms)


PLANS_KEPT = 4
"""How many :class:`NormsPlan` a ``plans`` list keeps (a monitor alternates two snapshot
buffers at cadence 1: two plans of the same weights)."""

TABLE_BLOCK_BYTES = 65536
"""The result tables of a kept plan are allocated together, as views of one block of at
most this many bytes (and at most :data:`TABLES_PER_BLOCK` tables; :class:`_Tables`)."""

TABLES_PER_BLOCK = 64

_COLUMN = {"weights": 1, "init": 2, "prev": 3, "copy_to": 4}  # column of ptrs (C's layout;
# column 0, the gradients', stays 0: they are passed apart, checked at every call)


class _Tables:
    """New ``(8, count)`` result tables for the plans of one set of weights, each handed
    out once and never written again: a caller that keeps a result (a
    :class:`~trainlab.probes.norms.ParamNorms`, a row, a view) never sees a later call's
    numbers. They are made a block at a time (one ``torch.empty`` and one ``unbind`` for
    up to :data:`TABLES_PER_BLOCK` tables of :data:`TABLE_BLOCK_BYTES` in all, their
    addresses computed from the block's), so that a call allocates no tensor: in a
    training step an allocation costs 5-8 us with its code out of the caches. A table
    kept by a caller keeps its block's memory (at most that many bytes) allocated.

    The last table handed out is remembered with its address (and the last known norms
    passed in, :meth:`known`), so that the next call, which reads its weight row as the
    previous parameters' norms, checks it by identity, data pointer and dtype instead of
    in full."""

    __slots__ = ("block", "count", "dtype", "free", "kept", "last", "row_bytes")

    def __init__(self, count: int, dtype: torch.dtype, block: int | None = None):
        self.count, self.dtype = count, dtype
        size = torch.empty((), dtype=dtype).element_size()
        self.row_bytes = count * size
        self.block = block or max(1, min(TABLES_PER_BLOCK,
                                         TABLE_BLOCK_BYTES // (8 * self.row_bytes)))
        self.free: list[tuple[torch.Tensor, int]] = []
        self.last: tuple[torch.Tensor, int] | None = None
        self.kept: tuple[torch.Tensor, int, int] | None = None

    def take(self) -> tuple[torch.Tensor, int]:
        """A new table and its data pointer."""
        free = self.free
        if not free and self.block == 1:  # a plain tensor
            table = torch.empty(8, self.count, dtype=self.dtype)
            free.append((table, table.data_ptr()))
        elif not free:
            block = torch.empty(self.block, 8, self.count, dtype=self.dtype)
            base, step = block.data_ptr(), 8 * self.row_bytes
            free.extend((t, base + i * step) for i, t in enumerate(block.unbind(0)))
            free.reverse()  # handed out in address order
        self.last = out = free.pop()
        return out

    def known(self, t: torch.Tensor) -> int:
        """The address of known norms ``t`` (:func:`_known`): the previous table handed out
        or the known norms of the previous call, checked by identity, data pointer (a
        swapped ``.data`` moves it) and dtype; any other tensor checked in full."""
        last = self.last
        if last is not None and t is last[0] and t.data_ptr() == last[1] \
                and t.dtype is self.dtype:
            return last[1] + self.row_bytes  # its weight row
        kept = self.kept
        if kept is not None and t is kept[0] and t.data_ptr() == kept[1] \
                and t.dtype is self.dtype:
            return kept[2]
        address = _known(t, self.dtype, self.count)
        if address:
            self.kept = (t, t.data_ptr(), address)
        return address


class NormsPlan:
    """:func:`tensor_norms` prepared for fixed tensors: the checks of the weights, initial
    and previous parameters and copy buffers (dtype, device, contiguity, sizes) done once,
    their data pointers and sizes kept in the arrays the C function reads.

    It holds a reference to each of those tensors and to each one's storage, so the memory
    its pointers name stays allocated while it is kept (even when a tensor's ``.data`` is
    swapped, no other allocation can take that address). Before each use :meth:`matches`
    checks, for every tensor, that it is the same object with the same data pointer (a
    tensor replaced, a ``.data`` swapped, a move to another dtype or device gives a new
    object or pointer: a new plan is built), so C reads only memory that each tensor still
    points to. The
    gradients, which the caller owns and which are new tensors at most steps, are checked
    in full at every call (:meth:`run`: dtype, device, contiguity, size; a missing or
    unfit gradient means no fused pass) and their pointers written into the array anew.
    Not noticed: a kept tensor whose shape or strides are changed in place without moving
    its data (``resize_`` to fewer entries, ``transpose_``); the tensors a monitor hands in
    are its own (detached views, copies, buffers), which nothing changes that way. The
    result tables come from :class:`_Tables` (shared by the plans of the same weights in
    one ``plans`` list), a new one at each call.
    """

    __slots__ = ("args", "args_address", "columns", "count", "dtype", "flat", "fn",
                 "grad_ptrs", "numels", "ptrs", "sizes", "stable", "storages", "tables")

    def __init__(self, fn: Any, dtype: torch.dtype, columns: tuple, numels: list[int],
                 ptrs: array, stable: list[int]):
        self.fn, self.dtype, self.columns, self.numels = fn, dtype, columns, numels
        self.count = len(numels)
        self.ptrs, self.sizes, self.stable = ptrs, array("q", numels), stable
        # the arrays are never resized (their items are assigned in place): fixed addresses;
        # args: trainlab_norms_packed's, the last five (gradients' pointers, want, out, known
        # norms) written at each call
        self.args = array("Q", [int(dtype is torch.float64), self.count,
                                self.sizes.buffer_info()[0], ptrs.buffer_info()[0],
                                0, 0, 0, 0, 0])
        self.args_address = self.args.buffer_info()[0]
        self.grad_ptrs: array | None = None
        self.flat = [t for column in columns for t in column]  # in the order of stable
        self.storages = [t.untyped_storage() for t in self.flat]
        self.tables: _Tables | None = None  # set by tensor_norms

    @classmethod
    def build(cls, lib: ctypes.CDLL, columns: tuple) -> NormsPlan | None:
        """The plan of ``columns`` = ``(weights, init, prev, copy_to)`` (empty sequences
        for the missing ones), or None when they do not fit (warned once)."""
        weights = columns[0]
        dtype = weights[0].dtype
        if dtype not in _DTYPES:
            unfit("param_norms", f"dtype {dtype}")
            return None
        k = len(weights)
        numels = [t.numel() for t in weights]
        ptrs = array("Q", bytes(8 * 5 * k))
        stable: list[int] = []
        for column, tensors in zip(_COLUMN.values(), columns):
            if not tensors:
                continue
            column_ptrs = _pointers(tensors, dtype, numels)
            if column_ptrs is None:
                unfit("param_norms", "tensors not all contiguous CPU tensors of one dtype "
                      "and of their parameters' sizes")
                return None
            ptrs[column::5] = array("Q", column_ptrs)
            stable += column_ptrs
        return cls(lib.trainlab_norms_packed, dtype, tuple(tuple(c) for c in columns),
                   numels, ptrs, stable)

    def same_weights(self, weights: list[torch.Tensor]) -> bool:
        """Whether the plan's weights are the objects ``weights``, at the same data
        pointers (else the plan can never be used again)."""
        kept = self.columns[0]
        return (len(kept) == len(weights) and all(map(operator.is_, kept, weights))
                and list(map(_DATA_PTR, weights)) == self.stable[:self.count])

    def matches(self, columns: tuple) -> bool:
        """Whether ``columns`` (as :meth:`build` takes them) are this plan's tensors: the
        same objects, at the same data pointers."""
        for column in (3, 2, 1, 0):  # the copy buffers and previous parameters first: they
            kept, now = self.columns[column], columns[column]  # tell two plans of a
            if len(kept) != len(now) or not all(map(operator.is_, kept, now)):  # monitor apart
                return False
        return list(map(_DATA_PTR, self.flat)) == self.stable

    def run(self, grads: list[torch.Tensor] | tuple, want: tuple[str, ...],
            init_norms: torch.Tensor | None = None, prev_norms: torch.Tensor | None = None
            ) -> torch.Tensor | None:
        """The table of :func:`tensor_norms` for the plan's tensors and ``grads`` (empty:
        none), a new tensor; None when the gradients do not fit (warned once)."""
        grad_ptrs = None
        if grads:
            pointers = _pointers(grads, self.dtype, self.numels)
            if pointers is None:
                unfit("param_norms", "tensors not all contiguous CPU tensors of one dtype "
                      "and of their parameters' sizes")
                return None
            grad_ptrs = array("Q", pointers)
        tables = self.tables
        if tables is None:  # a plan built by hand: a table of its own at each call
            tables = self.tables = _Tables(self.count, self.dtype, 1)
        mask = _mask(want, init_norms is not None, prev_norms is not None,
                     bool(self.columns[1]), bool(self.columns[2]), bool(grads))
        a0 = None if init_norms is None else tables.known(init_norms)
        b0 = None if prev_norms is None else tables.known(prev_norms)
        if a0 == 0 or b0 == 0:
            unfit("param_norms", "known norms not contiguous 1-D CPU vectors of the "
                  "weights' dtype, one entry per weight (or tables of this plan's shape)")
            return None
        out, address = tables.take()  # every row written (zeros or values)
        args = self.args
        self.grad_ptrs = grad_ptrs  # kept while args names it (until the next call)
        args[4] = 0 if grad_ptrs is None else grad_ptrs.buffer_info()[0]
        args[5], args[6], args[7], args[8] = mask, address, a0 or 0, b0 or 0
        self.fn(self.args_address)
        return out


def _known(t: torch.Tensor, dtype: torch.dtype, count: int) -> int:
    """The address of known norms (:func:`tensor_norms`): a contiguous 1-D CPU vector of
    ``dtype`` with ``count`` entries, or an earlier ``(8, count)`` result table (its weight
    row, row 1); 0 when ``t`` is neither."""
    if t.dtype is not dtype or not t.is_cpu or not t.is_contiguous():
        return 0
    shape = t.shape
    if shape == (count,):
        return t.data_ptr()
    if shape == (8, count):
        return t.data_ptr() + count * t.element_size()
    return 0


@lru_cache(maxsize=256)
def _mask(want: tuple[str, ...], init_known: bool, prev_known: bool, init: bool, prev: bool,
          grads: bool) -> int:
    """The C function's ``want`` bits for ``want``; ValueError for a family whose tensors
    (or known norms) are missing, or a known family also asked to be computed."""
    have = {"grad": grads, "weight": True, "init_dist": init, "init": init and not init_known,
            "prev_dist": prev, "prev": prev and not prev_known,
            "rotation": init and {"weight", "init_dist"} <= set(want)
            and ("init" in want or init_known),
            "update_ratio": prev and "prev_dist" in want and ("prev" in want or prev_known)}
    missing = [f for f in want if not have[f]]
    if missing or (init_known and not init) or (prev_known and not prev):
        raise ValueError(f"tensor_norms: cannot give {missing or 'the known norms'} with "
                         f"these tensors (init {init}, prev {prev}, grads {grads}; known "
                         f"init norms {init_known}, prev norms {prev_known})")
    return sum(1 << ROWS.index(f) for f in want)


def gsnr_sums(flat_sum: torch.Tensor, flat_sq: torch.Tensor,
              segments: list[tuple[int, int, torch.Tensor | None, float]],
              sq_factor: float, n: float) -> tuple[float, float, int] | None:
    """``(sum_j s_j^2, sum_j [v_j > 0] s_j^2 / max(v_j, tiny), count of v_j > 0)`` with
    ``v = flat_sq * sq_factor * n - s^2`` (the factor skipped when 1) and ``s`` the entries
    of ``flat_sum``, except on each segment ``(offset, size, source, factor)`` (sorted,
    disjoint), where ``s = source * factor`` (``source`` None: ``flat_sum * factor``): the
    elementwise operations of :func:`~trainlab.probes.gradient_noise._noise`, in the
    vectors' dtype, with the sums in float64. Nothing is written. None when the fused path
    is off or unavailable or the tensors do not fit (warned once)."""
    lib = library()
    if lib is None:
        return None
    dtype, size, end = flat_sum.dtype, flat_sum.numel(), 0
    for off, length, source, _ in segments:
        if off < end or length < 0 or off + length > size or (
                source is not None and source.numel() != length):
            raise ValueError("gsnr_sums: segments must be sorted, disjoint, inside the "
                             "vectors, each source of its segment's size")
        end = off + length
    sources = [s for _, _, s, _ in segments if s is not None]
    if (dtype not in _DTYPES or flat_sq.numel() != size
            or not _fits([flat_sum, flat_sq, *sources], dtype)):
        unfit("gsnr", "vectors not contiguous CPU float32/float64 of one dtype and size")
        return None
    suffix, scalar = _DTYPES[dtype]
    segs = array("q", [v for off, size, _, _ in segments for v in (off, size)])
    srcs = array("Q", [0 if s is None else s.data_ptr() for _, _, s, _ in segments])
    factors = (scalar * max(len(segments), 1))(*(f for _, _, _, f in segments))
    out = (ctypes.c_double * 3)()
    getattr(lib, f"trainlab_gsnr_{suffix}")(
        flat_sum.data_ptr(), flat_sq.data_ptr(), flat_sum.numel(), len(segments),
        segs.buffer_info()[0] if segments else None,
        srcs.buffer_info()[0] if segments else None, factors, int(sq_factor != 1),
        sq_factor, n, torch.finfo(dtype).tiny, 1, out)
    return out[0], out[1], int(out[2])


def example_rows(layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                    torch.Tensor | None]],
                 factor: float, scratch: torch.Tensor, out: torch.Tensor) -> bool:
    """For Linear layers given as ``(a, d, a_sq, d_sq, bias_sq)`` (inputs ``B x I``, output
    gradients ``B x O``, all of one dtype, contiguous, on the CPU): writes ``d * d`` into
    ``d_sq`` and ``a * a`` into ``a_sq`` (the eager path's bits), the column sums of
    ``d * d`` into ``bias_sq`` (when given), and into ``out`` (``B``) the per-example squared
    gradient norms :math:`\\sum_l \\|d_{l,i}\\|^2 (\\|a_{l,i}\\|^2 [+ 1])` times ``factor``; sums in
    float64 (lanes as :func:`tensor_norms`), each result rounded once. ``scratch``: float64,
    at least ``B`` + the largest ``O`` entries. False (nothing written) when the fused path
    is off or unavailable or the tensors do not fit (warned once)."""
    lib = library()
    if lib is None or not layers:
        return False
    dtype = out.dtype
    tensors = [t for layer in layers for t in layer if t is not None]
    if dtype not in _DTYPES or not _fits([out, *tensors], dtype):
        unfit("per-example rows", "layer records not contiguous CPU tensors of one dtype")
        return False
    batch = out.numel()
    for a, d, a_sq, d_sq, bias_sq in layers:
        if (a.dim() != 2 or d.dim() != 2 or a.shape[0] != batch or d.shape[0] != batch
                or a_sq.shape != a.shape or d_sq.shape != d.shape
                or (bias_sq is not None and bias_sq.numel() != d.shape[1])):
            raise ValueError("example_rows: each layer needs a (B x I), d (B x O), squares of "
                             "their shapes and bias_sq of O entries, B = out's size")
    if (scratch.dtype != torch.float64 or not scratch.is_contiguous() or not scratch.is_cpu
            or scratch.numel() < batch + max(d.shape[1] for _, d, _, _, _ in layers)):
        raise ValueError("example_rows: scratch must be a contiguous float64 CPU tensor of "
                         "at least B + the largest O entries")
    dims = array("q", [v for a, d, _, _, _ in layers for v in (d.shape[1], a.shape[1])])
    ptrs = array("Q", [0 if t is None else t.data_ptr() for layer in layers
                       for t in (layer[1], layer[0], layer[3], layer[2], layer[4])])
    getattr(lib, f"trainlab_rows_{_DTYPES[dtype][0]}")(
        len(layers), batch, dims.buffer_info()[0], ptrs.buffer_info()[0],
        scratch.data_ptr() + 8 * batch, scratch.data_ptr(), factor, 3, out.data_ptr())
    return True


def norm_spread(sq_norms: torch.Tensor) -> tuple[float, float] | None:
    """Mean and standard deviation (Bessel-corrected, as ``Tensor.std``) of the norms
    :math:`r_i = \\sqrt{s_i}` of the squared norms ``sq_norms`` (a contiguous float32/float64
    CPU vector), each root rounded to the vector's dtype as ``Tensor.sqrt`` rounds it, in
    one call: the sums of the roots and of their squared deviations from the mean in
    float64 (index order), the two results rounded once to the dtype (as Python floats).
    ``Tensor.mean`` and ``Tensor.std`` sum in their own order and precision: the two
    differ in the last bits, both within :data:`RTOL` of a float64 computation (tested).
    NaN and infinite entries give NaN or infinite results as torch's do; fewer than two
    entries a NaN deviation. None when the fused path is off or unavailable or the vector
    does not fit (warned once)."""
    lib = library()
    if lib is None:
        return None
    dtype = sq_norms.dtype
    if dtype not in _DTYPES or sq_norms.dim() != 1 or not _fits([sq_norms], dtype):
        unfit("norm spread", "not a contiguous float32/float64 CPU vector")
        return None
    out = (ctypes.c_double * 2)()
    count = sq_norms.numel()
    getattr(lib, f"trainlab_spread_{_DTYPES[dtype][0]}")(sq_norms.data_ptr(), count, out)
    return spread_values(out[0], out[1], count, dtype)


def spread_values(total: float, deviations: float, count: int, dtype: torch.dtype
                  ) -> tuple[float, float]:
    """``(mean, std)`` from the two sums of :func:`norm_spread`'s C function, each rounded
    once to ``dtype`` (float32: as ``torch.tensor`` rounds a float)."""
    mean = total / count if count else math.nan
    std = math.sqrt(deviations / (count - 1)) if count > 1 else math.nan
    if dtype == torch.float32:
        mean, std = array("f", (mean, std))
    return mean, std


def entry(kind: str, dtype: torch.dtype) -> Callable[..., None] | None:
    """The C function behind :func:`gsnr_sums` (``kind`` ``"gsnr"``), :func:`example_rows`
    (``"rows"``) or :func:`norm_spread` (``"spread"``) for tensors of ``dtype``, for a
    caller that keeps its pointer arrays from call to call and checks every tensor it
    passes itself (dtype, CPU, contiguous, the sizes the arguments state: the C code reads
    and writes that memory unchecked), as
    :class:`~trainlab.probes.noise_plan.NoisePlan` does; the arguments are those the
    functions above pass. None when the fused path is off or unavailable (warned once) or
    ``dtype`` is not float32/float64."""
    if kind not in ("gsnr", "rows", "spread"):
        raise ValueError(f"fused.entry: kind must be 'gsnr', 'rows' or 'spread', got {kind!r}")
    lib = library()
    if lib is None or dtype not in _DTYPES:
        return None
    return getattr(lib, f"trainlab_{kind}_{_DTYPES[dtype][0]}")
