{
  "targets": [
    {
      "target_name": "factlens_scan",
      "sources": ["scan.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-march=native", "-ffast-math", "-mprefer-vector-width=512", "-std=c++17"],
      "ldflags": ["-pthread"]
    }
  ]
}
