// Mamba's selective scan (forward and reverse mode) as a Node-API addon.
// onnxruntime has no fused kernel for it: as ONNX ops every time step makes several passes over
// [B,E,N] tensors, which dominate a Mamba forward. Here each (row, channel) keeps its N-vector of
// state in registers and the loop over n vectorises. Shapes (row-major, float32):
//   dt, u, y: [B,T,E]   Bm, Cm: [B,T,N]   A: [E,N]   h0, last: [B,E,N]   states: [B,T,E,N]
// The TypeScript side (src/graph/native-scan.ts) allocates every output and checks every size.
#include <node_api.h>
#include "malloc.h"
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

// exp(x) for the decays exp(Δ·A) (x ≤ 0): Cephes' expf polynomial after range reduction, written
// inline so the loops vectorise without a libm call per vector. Relative error ≈ 1e-7 (tested
// against the ONNX scan to 1e-5). Below −87 the result saturates at ≈1e-38, where the true value
// is a denormal that changes nothing downstream.
inline float fastExp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)k + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

struct Dims { int B, T, E, N; };

struct Forward {
  const float *dt, *A, *u, *Bm, *Cm, *h0;
  float *y, *last, *states;  // states may be null
  Dims d;
};

struct Backward {
  const float *dt, *A, *u, *Bm, *Cm, *h0, *gy, *gLast;  // gLast may be null
  float *gDt, *gA, *gU, *gB, *gC, *gH0;
  Dims d;
};

// The state of channels [e0, e1) is kept transposed, h[n][e], so every inner loop runs over
// contiguous channels (long, branch-free, vectorised) instead of over the N = 16 state dims.

// Channels [e0, e1) of every row.
void forwardRange(const Forward& f, int e0, int e1) {
  const int T = f.d.T, E = f.d.E, N = f.d.N, W = e1 - e0;
  std::vector<float> At((size_t)N * W), h((size_t)N * W), a(W), du(W), acc(W);
  for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) At[(size_t)n * W + e] = f.A[(size_t)(e0 + e) * N + n];
  for (int b = 0; b < f.d.B; b++) {
    for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) h[(size_t)n * W + e] = f.h0[((size_t)b * E + e0 + e) * N + n];
    for (int t = 0; t < T; t++) {
      const size_t bt = (size_t)b * T + t;
      const float* dt = f.dt + bt * E + e0;
      const float* u = f.u + bt * E + e0;
      for (int e = 0; e < W; e++) { du[e] = dt[e] * u[e]; acc[e] = 0.f; }
      for (int n = 0; n < N; n++) {
        const float Bn = f.Bm[bt * N + n], Cn = f.Cm[bt * N + n];
        float* hn = h.data() + (size_t)n * W;
        const float* An = At.data() + (size_t)n * W;
        for (int e = 0; e < W; e++) {
          hn[e] = fastExp(dt[e] * An[e]) * hn[e] + du[e] * Bn;
          acc[e] += hn[e] * Cn;
        }
      }
      std::memcpy(f.y + bt * E + e0, acc.data(), W * sizeof(float));
      if (f.states) {
        for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) f.states[(bt * E + e0 + e) * N + n] = h[(size_t)n * W + e];
      }
    }
    for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) f.last[((size_t)b * E + e0 + e) * N + n] = h[(size_t)n * W + e];
  }
}

#if defined(__AVX512F__)
// exp(x) on 16 lanes: fastExp's polynomial with AVX-512 intrinsics.
inline __m512 fastExp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x));
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(k), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

// The forward scan for N = 16 on blocks of 16 channels: the block's 16 state vectors stay in
// registers for the whole sequence (no state loads or stores per step). Channels [e0, e1) with
// (e1 − e0) a multiple of 16.
void forwardRange16(const Forward& f, int e0, int e1) {
  constexpr int N = 16, L = 16;
  const int T = f.d.T, E = f.d.E;
  alignas(64) float tmp[N][L];
  for (int eb = e0; eb < e1; eb += L) {
    alignas(64) float At[N][L];
    for (int n = 0; n < N; n++) for (int l = 0; l < L; l++) At[n][l] = f.A[(size_t)(eb + l) * N + n];
    for (int b = 0; b < f.d.B; b++) {
      __m512 h[N];
      for (int n = 0; n < N; n++) for (int l = 0; l < L; l++) tmp[n][l] = f.h0[((size_t)b * E + eb + l) * N + n];
      for (int n = 0; n < N; n++) h[n] = _mm512_load_ps(tmp[n]);
      for (int t = 0; t < T; t++) {
        const size_t bt = (size_t)b * T + t;
        const __m512 dt = _mm512_loadu_ps(f.dt + bt * E + eb);
        const __m512 du = _mm512_mul_ps(dt, _mm512_loadu_ps(f.u + bt * E + eb));
        const float* Bt = f.Bm + bt * N;
        const float* Ct = f.Cm + bt * N;
        __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int n = 0; n < N; n++) {
          const __m512 dA = fastExp16(_mm512_mul_ps(dt, _mm512_load_ps(At[n])));
          h[n] = _mm512_fmadd_ps(dA, h[n], _mm512_mul_ps(du, _mm512_set1_ps(Bt[n])));
          acc = _mm512_fmadd_ps(h[n], _mm512_set1_ps(Ct[n]), acc);
        }
        _mm512_storeu_ps(f.y + bt * E + eb, acc);
        if (f.states) {
          for (int n = 0; n < N; n++) _mm512_store_ps(tmp[n], h[n]);
          for (int l = 0; l < L; l++) for (int n = 0; n < N; n++) f.states[(bt * E + eb + l) * N + n] = tmp[n][l];
        }
      }
      for (int n = 0; n < N; n++) _mm512_store_ps(tmp[n], h[n]);
      for (int l = 0; l < L; l++) for (int n = 0; n < N; n++) f.last[((size_t)b * E + eb + l) * N + n] = tmp[n][l];
    }
  }
}
#endif

// Channels [e0, e1) by the fastest path this build has.
void forwardChannels(const Forward& f, int e0, int e1) {
#if defined(__AVX512F__)
  if (f.d.N == 16) {
    const int split = e0 + (e1 - e0) / 16 * 16;
    forwardRange16(f, e0, split);
    if (split < e1) forwardRange(f, split, e1);
    return;
  }
#endif
  forwardRange(f, e0, e1);
}

// Channels [e0, e1): writes gDt, gU, gH0 and gA for those channels; adds into its own gB, gC.
void backwardRange(const Backward& k, int e0, int e1, float* gB, float* gC) {
  const int T = k.d.T, E = k.d.E, N = k.d.N, W = e1 - e0;
  const size_t NW = (size_t)N * W;
  std::vector<float> At(NW), gAt(NW, 0.f), hs((size_t)(T + 1) * NW), g(NW), du(W), gDt(W), gDu(W), a(W);
  for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) At[(size_t)n * W + e] = k.A[(size_t)(e0 + e) * N + n];
  for (int b = 0; b < k.d.B; b++) {
    // hs[t+1] = state after token t, hs[0] = h0 (all [N][W])
    for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) hs[(size_t)n * W + e] = k.h0[((size_t)b * E + e0 + e) * N + n];
    for (int t = 0; t < T; t++) {
      const size_t bt = (size_t)b * T + t;
      const float* dt = k.dt + bt * E + e0;
      const float* u = k.u + bt * E + e0;
      for (int n = 0; n < N; n++) {
        const float Bn = k.Bm[bt * N + n];
        const float* prev = hs.data() + (size_t)t * NW + (size_t)n * W;
        float* cur = hs.data() + (size_t)(t + 1) * NW + (size_t)n * W;
        const float* An = At.data() + (size_t)n * W;
        for (int e = 0; e < W; e++) cur[e] = fastExp(dt[e] * An[e]) * prev[e] + dt[e] * u[e] * Bn;
      }
    }
    for (int n = 0; n < N; n++) {
      for (int e = 0; e < W; e++) g[(size_t)n * W + e] = k.gLast ? k.gLast[((size_t)b * E + e0 + e) * N + n] : 0.f;
    }
    for (int t = T - 1; t >= 0; t--) {
      const size_t bt = (size_t)b * T + t;
      const float* dt = k.dt + bt * E + e0;
      const float* u = k.u + bt * E + e0;
      const float* gy = k.gy + bt * E + e0;
      for (int e = 0; e < W; e++) { du[e] = dt[e] * u[e]; gDt[e] = 0.f; gDu[e] = 0.f; }
      for (int n = 0; n < N; n++) {
        const float Bn = k.Bm[bt * N + n], Cn = k.Cm[bt * N + n];
        const float* h = hs.data() + (size_t)(t + 1) * NW + (size_t)n * W;
        const float* hp = hs.data() + (size_t)t * NW + (size_t)n * W;
        const float* An = At.data() + (size_t)n * W;
        float* gn = g.data() + (size_t)n * W;
        float* gAn = gAt.data() + (size_t)n * W;
        float sumC = 0.f, sumB = 0.f;
        for (int e = 0; e < W; e++) {
          const float an = fastExp(dt[e] * An[e]);
          const float gh = gn[e] + gy[e] * Cn;     // ∂L/∂h_t
          sumC += gy[e] * h[e];
          const float gArg = gh * hp[e] * an;     // ∂L/∂(Δ_t A)
          gDt[e] += gArg * An[e];
          gAn[e] += gArg * dt[e];
          gDu[e] += gh * Bn;
          sumB += gh * du[e];
          gn[e] = gh * an;                         // carried to h_{t-1}
        }
        gC[bt * N + n] += sumC;
        gB[bt * N + n] += sumB;
      }
      float* gDtOut = k.gDt + bt * E + e0;
      float* gUOut = k.gU + bt * E + e0;
      for (int e = 0; e < W; e++) { gDtOut[e] = gDt[e] + gDu[e] * u[e]; gUOut[e] = gDu[e] * dt[e]; }
    }
    for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) k.gH0[((size_t)b * E + e0 + e) * N + n] = g[(size_t)n * W + e];
  }
  for (int n = 0; n < N; n++) for (int e = 0; e < W; e++) k.gA[(size_t)(e0 + e) * N + n] = gAt[(size_t)n * W + e];
}

int threadsFor(const Dims& d) {
  const double work = (double)d.B * d.T * d.E * d.N;
  const int hw = (int)std::thread::hardware_concurrency();
  return work < (1 << 20) || hw < 2 || d.E < 2 ? 1 : (hw < d.E ? hw : d.E);
}

template <typename F>
void parallelChannels(int E, int threads, F fn) {
  if (threads <= 1) return fn(0, 0, E);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; i++) pool.emplace_back(fn, i, (int)((long)E * i / threads), (int)((long)E * (i + 1) / threads));
  for (auto& th : pool) th.join();
}

// ---- Node-API plumbing ---------------------------------------------------------------

bool floats(napi_env env, napi_value v, float** out, size_t* len) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) return false;
  napi_typedarray_type type;
  void* data;
  napi_value buf;
  size_t off;
  napi_get_typedarray_info(env, v, &type, len, &data, &buf, &off);
  if (type != napi_float32_array) return false;
  *out = static_cast<float*>(data);
  return true;
}

napi_value fail(napi_env env, const char* msg) {
  napi_throw_type_error(env, nullptr, msg);
  return nullptr;
}

bool readDims(napi_env env, napi_value* args, Dims* d) {
  int32_t v[4];
  for (int i = 0; i < 4; i++) if (napi_get_value_int32(env, args[i], &v[i]) != napi_ok || v[i] < 1) return false;
  *d = {v[0], v[1], v[2], v[3]};
  return true;
}

// scanForward(B, T, E, N, dt, A, u, Bm, Cm, h0, y, last, states|null)
napi_value ScanForward(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value args[13];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  if (argc != 13) return fail(env, "scanForward: expected 13 arguments");
  Forward f{};
  if (!readDims(env, args, &f.d)) return fail(env, "scanForward: bad dims");
  float* p[9];
  size_t len[9];
  for (int i = 0; i < 8; i++) if (!floats(env, args[4 + i], &p[i], &len[i])) return fail(env, "scanForward: expected Float32Arrays");
  napi_valuetype st;
  napi_typeof(env, args[12], &st);
  p[8] = nullptr;
  if (st != napi_null && !floats(env, args[12], &p[8], &len[8])) return fail(env, "scanForward: states must be a Float32Array or null");
  const size_t B = f.d.B, T = f.d.T, E = f.d.E, N = f.d.N;
  const size_t want[9] = {B * T * E, E * N, B * T * E, B * T * N, B * T * N, B * E * N, B * T * E, B * E * N, B * T * E * N};
  for (int i = 0; i < 9; i++) if (p[i] && len[i] != want[i]) return fail(env, "scanForward: an array has the wrong length");
  f.dt = p[0]; f.A = p[1]; f.u = p[2]; f.Bm = p[3]; f.Cm = p[4]; f.h0 = p[5]; f.y = p[6]; f.last = p[7]; f.states = p[8];
  parallelChannels(f.d.E, threadsFor(f.d), [&](int, int e0, int e1) { forwardChannels(f, e0, e1); });
  return nullptr;
}

// scanBackward(B, T, E, N, dt, A, u, Bm, Cm, h0, gy, gLast|null, gDt, gA, gU, gB, gC, gH0)
napi_value ScanBackward(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value args[18];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  if (argc != 18) return fail(env, "scanBackward: expected 18 arguments");
  Backward k{};
  if (!readDims(env, args, &k.d)) return fail(env, "scanBackward: bad dims");
  float* p[14];
  size_t len[14];
  for (int i = 0; i < 14; i++) {
    napi_valuetype t;
    napi_typeof(env, args[4 + i], &t);
    if (i == 7 && t == napi_null) { p[i] = nullptr; continue; }
    if (!floats(env, args[4 + i], &p[i], &len[i])) return fail(env, "scanBackward: expected Float32Arrays");
  }
  const size_t B = k.d.B, T = k.d.T, E = k.d.E, N = k.d.N;
  const size_t want[14] = {B * T * E, E * N, B * T * E, B * T * N, B * T * N, B * E * N, B * T * E, B * E * N,
                           B * T * E, E * N, B * T * E, B * T * N, B * T * N, B * E * N};
  for (int i = 0; i < 14; i++) if (p[i] && len[i] != want[i]) return fail(env, "scanBackward: an array has the wrong length");
  k.dt = p[0]; k.A = p[1]; k.u = p[2]; k.Bm = p[3]; k.Cm = p[4]; k.h0 = p[5]; k.gy = p[6]; k.gLast = p[7];
  k.gDt = p[8]; k.gA = p[9]; k.gU = p[10]; k.gB = p[11]; k.gC = p[12]; k.gH0 = p[13];
  std::fill(k.gA, k.gA + E * N, 0.f);
  std::fill(k.gB, k.gB + B * T * N, 0.f);
  std::fill(k.gC, k.gC + B * T * N, 0.f);
  const int threads = threadsFor(k.d);
  // gB and gC sum over channels: each thread accumulates its own copy, summed at the end.
  std::vector<std::vector<float>> partB(threads), partC(threads);
  for (int i = 1; i < threads; i++) { partB[i].assign(B * T * N, 0.f); partC[i].assign(B * T * N, 0.f); }
  parallelChannels(k.d.E, threads, [&](int i, int e0, int e1) {
    backwardRange(k, e0, e1, i == 0 ? k.gB : partB[i].data(), i == 0 ? k.gC : partC[i].data());
  });
  for (int i = 1; i < threads; i++) {
    for (size_t j = 0; j < B * T * N; j++) { k.gB[j] += partB[i][j]; k.gC[j] += partC[i][j]; }
  }
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"scanForward", nullptr, ScanForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"scanBackward", nullptr, ScanBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"keepLargeBuffers", nullptr, KeepLargeBuffers, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
