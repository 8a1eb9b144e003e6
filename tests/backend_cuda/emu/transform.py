#!/usr/bin/env python3
"""Rewrites the CUDA back end's sources (src/backend/cuda) into plain C++ for
the CPU emulation (emu.hpp): kernel launches become emu::Launch calls, extern
__shared__ arrays point at the emulated dynamic shared memory, and
internal.cuh includes emu.hpp after the CUDA headers.

usage: transform.py SRC_DIR OUT_DIR
"""
import pathlib
import re
import sys

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
LAUNCH = re.compile(r'(\b[A-Za-z_]\w*(?:<[^<>()]*>)?)<<<(.*?)>>>\(')
SHARED = re.compile(r'extern __shared__ float (\w+)\[\];')
for f in sorted(list(src.glob('*.cu')) + list(src.glob('*.cuh'))):
    s = f.read_text()
    if f.name == 'internal.cuh':
        s = s.replace('#include <cuda_runtime.h>\n', '#include <cuda_runtime.h>\n#include "emu.hpp"\n', 1)
        assert '"emu.hpp"' in s, 'internal.cuh no longer includes <cuda_runtime.h> on its own line'
    s = SHARED.sub(r'float* \1 = ::emu::dynamic_shared<float>();', s)
    s = LAUNCH.sub(r'::emu::Launch(\2)(\1, ', s)
    if '<<<' in s or 'extern __shared__' in s:
        sys.exit(f'transform.py: {f.name}: a launch or shared array it cannot rewrite '
                 '(keep each launch configuration on one line, kernels named explicitly)')
    name = f.stem + '.cpp' if f.suffix == '.cu' else f.name
    target = out / name
    if not target.exists() or target.read_text() != s:
        target.write_text(s)
