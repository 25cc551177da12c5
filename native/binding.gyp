{
  "targets": [
    {
      "target_name": "factlens_scan",
      "sources": ["scan.cc", "malloc.cc"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-ffast-math", "-std=c++17"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffast-math", "-std=c++17"],
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES"
      },
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags_cc": ["-march=native", "-mprefer-vector-width=512", "-Wno-maybe-uninitialized"]
        }]
      ]
    }
  ]
}
