#!/usr/bin/env python3
"""The include half of the layer check (src/CMakeLists.txt).

Every source and header of a library may include sptrain headers only of its
own concern, of `core` (tensors, dtypes, errors, the back-end op interface)
and of the libraries its sptrain_library() call USES. Reads the calls from
src/CMakeLists.txt, so the dependency graph is written down once.

    python3 tools/layers/check_layers.py [REPO]      # exit 1 and a list on a violation
"""
import os
import re
import sys

repo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
cmake = open(os.path.join(repo, "src", "CMakeLists.txt")).read()

# name -> (folder, uses)
libraries = {}
for call in re.finditer(r"^\s*sptrain_library\((.*?)\)", cmake, re.S | re.M):
    words = call.group(1).split()
    name, fields, key = words[0], {}, None
    for w in words[1:]:
        if w.isupper():
            key = w
            fields.setdefault(key, [])
        elif key:
            fields[key].append(w)
    uses = [u for u in fields.get("USES", []) if not u.startswith("$")]
    if "${backends}" in fields.get("USES", []):
        uses += ["backend_cpu", "backend_cuda"]
    libraries[name] = (fields["FOLDER"][0], set(uses))
if not libraries:
    sys.exit("check_layers: no sptrain_library() calls found in src/CMakeLists.txt")

# The folder of a header or source (relative to include/sptrain or src) -> library.
by_folder = {folder: name for name, (folder, _) in libraries.items()}
by_folder["core"] = "core"
by_folder["comm/nccl"] = "comm"


def library_of(relpath):
    if relpath in ("backend/backend.hpp",):
        return "core"  # the op interface every back end implements
    parts = relpath.split("/")[:-1]
    while parts:
        folder = "/".join(parts)
        if folder in by_folder:
            return by_folder[folder]
        parts.pop()
    return None


include_re = re.compile(r'^\s*#\s*include\s+"sptrain/([^"]+)"', re.M)
problems, checked = [], 0
for top in ("src", os.path.join("include", "sptrain")):
    for root, _, files in os.walk(os.path.join(repo, top)):
        for f in files:
            if not f.endswith((".cpp", ".hpp", ".cu", ".cuh", ".h")):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, os.path.join(repo, top))
            owner = library_of(rel)
            if rel == "cli/main.cpp" or owner is None:
                continue  # the executable may use everything; files outside any library
            allowed = {owner, "core"} | (libraries[owner][1] if owner in libraries else set())
            checked += 1
            for inc in include_re.findall(open(path, encoding="utf-8").read()):
                lib = library_of(inc)
                if lib is None or lib not in allowed:
                    problems.append(f"{os.path.relpath(path, repo)}: includes sptrain/{inc} "
                                    f"({lib or 'no library'}), but {owner} uses only "
                                    f"{', '.join(sorted(allowed - {owner, 'core'})) or 'core'}")
if problems:
    print("\n".join(problems))
    print(f"check_layers: {len(problems)} include(s) across layers in {checked} files "
          "(declare the dependency in src/CMakeLists.txt, or move the code)")
    sys.exit(1)
print(f"check_layers: {checked} files of {len(libraries)} libraries include only what they use")
