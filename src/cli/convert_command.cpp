// `sptrain convert --from gguf|safetensors SRC --out FILE [--dtype f32|bf16]`:
// checks the options, converts, prints a summary line on stdout. Errors are
// thrown as sptrain::Error (the CLI prints them).
#include <chrono>
#include <cstdio>

#include "sptrain/cli/commands.hpp"
#include "sptrain/convert/convert.hpp"
#include "sptrain/core/error.hpp"
#include "sptrain/io/file.hpp"

namespace sptrain {

int run_convert(const ConvertOptions& o) {
  SPT_CHECK(!o.src.empty(), "convert: no source given");
  SPT_CHECK(!o.out.empty(), "convert: no output file given (--out)");
  SPT_CHECK(o.dtype == "f32" || o.dtype == "bf16", "convert: --dtype must be f32 or bf16, not '",
            o.dtype, "'");
  refuse_overwrite(o.out, o.src, "convert");
  const DType dtype = dtype_from_name(o.dtype);
  const auto start = std::chrono::steady_clock::now();
  convert::ConvertResult r;
  if (o.from == "gguf") {
    r = convert::convert_gguf(o.src, o.out, dtype);
  } else if (o.from == "safetensors") {
    r = convert::convert_safetensors(o.src, o.out, dtype);
  } else {
    fail("convert: --from must be gguf or safetensors, not '", o.from, "'");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& h = r.header;
  std::printf("wrote %s: %s (%s), %lld layers, d_model %lld, %lld heads (%lld kv), d_ffn %lld, "
              "vocab %lld, %.1fM parameters, %s, fingerprint %s, %.1f s\n",
              o.out.c_str(), h.name.c_str(), h.family.c_str(), (long long)h.n_layers,
              (long long)h.d_model, (long long)h.n_heads, (long long)h.n_kv_heads,
              (long long)h.d_ffn, (long long)h.vocab_size, double(r.stats.parameters) / 1e6,
              o.dtype.c_str(), r.stats.fingerprint.c_str(), seconds);
  return 0;
}

}  // namespace sptrain
