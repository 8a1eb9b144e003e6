#pragma once
// The hdf5 prompt export: the prompt [P, d] f32 alone with its metadata
// (model fingerprint, task, step...); docs/export.md gives the layout.
#include <string>

#include "sptrain/prompt/stored_prompt.hpp"

namespace sptrain::h5 {
class File;
}

namespace sptrain {

inline constexpr const char* kHdf5PromptFormat = "sptrain-prompt";  // its `format` attribute

// Writes `out` atomically (overwriting it).
ExportResult export_hdf5(const StoredPrompt& prompt, const std::string& out);

// Reads an open file whose `format` is kHdf5PromptFormat.
StoredPrompt read_hdf5_export(h5::File& f);

}  // namespace sptrain
