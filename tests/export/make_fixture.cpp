// Writes the inputs of the Python export check (check_exports.py) into a
// folder: model.h5 (a tiny random model), step_000042.h5 (a checkpoint of it
// with a prompt full of awkward values) and prompt.f32, the checkpoint's
// prompt as raw little-endian float32 bytes, written from memory (not read
// back through sptrain), for numpy to compare the exports with.
#include <cstdio>
#include <exception>
#include <fstream>

#include "export_fixture.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FOLDER ROWS COLS\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1];
    const int rows = std::stoi(argv[2]), cols = std::stoi(argv[3]);
    const std::string model = sptrain::test::write_fixture_model(dir + "/model.h5", cols);
    const sptrain::Checkpoint c = sptrain::test::fixture_checkpoint(model, rows, cols);
    sptrain::write_checkpoint(dir + "/step_000042.h5", c);
    std::ofstream raw(dir + "/prompt.f32", std::ios::binary);
    raw.write(reinterpret_cast<const char*>(c.prompt.data()), std::streamsize(c.prompt.size() * 4));
    return raw ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fixture: %s\n", e.what());
    return 1;
  }
}
