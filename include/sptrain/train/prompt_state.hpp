#pragma once
// A prompt method's parameters across the ranks that hold them: their start
// (prompt.init), and their state in a checkpoint (docs/methods.md). Every
// function is collective: every rank of the session calls it.
#include "sptrain/io/checkpoint.hpp"
#include "sptrain/optim/optimizer.hpp"
#include "sptrain/prompt/stored_prompt.hpp"
#include "sptrain/train/session.hpp"

namespace sptrain {

// Sets the parameters as prompt.init says (rng: seeded with train.seed).
// prompt_tuning takes the initial rows; p_tuning makes them the encoder's
// input; a deep prompt starts from the keys and values those rows produce
// at every layer (one forward pass), or from a deep prompt's file.
void start_prompt(Session& s, Rng& rng);

// The keys and values `rows` [P, d] (input rows, first stage) produce at
// each of this rank's layers and kv heads: [num_layers, P, 2 * kv_heads * D].
std::vector<float> capture_prefix(Session& s, const std::vector<float>& rows);

// Makes the model read a stored prompt (sptrain eval --prompt): its input
// rows, or its keys and values (the session's method must match: deep for a
// deep prompt, prompt_tuning otherwise).
void set_stored_prompt(Session& s, const StoredPrompt& stored);

// Fills the checkpoint's prompt_method, prompt or prefix, parameters and
// optimizer state on world rank 0 (the others send their share).
void save_prompt(Session& s, const Optimizer& optimizer, Checkpoint& c);

// Restores this rank's share and its optimizer state (and step count) from
// a checkpoint every rank has read. Errors name the checkpoint and what differs.
void restore_prompt(Session& s, Optimizer& optimizer, const Checkpoint& c, const std::string& path);

// True when the replicas of every share agree (a checksum per share).
bool replicas_agree(Session& s);

}  // namespace sptrain
