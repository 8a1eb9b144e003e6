#!/usr/bin/env python3
"""Runs a command and writes how disturbed its run was: the cores that other
processes kept busy meanwhile (the machine's busy time from /proc/stat, less
the command's own CPU time, over the wall time).

  python3 bench/peft/run_measured.py REPORT.json -- build/bin/sptrain bench ...

The command's output passes through; its exit status is returned. REPORT.json
gets {"wall_s", "cpu_s", "other_processes_cores"}. Plain Python, no packages.
"""

import json
import os
import subprocess
import sys
import time


def busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print("usage: run_measured.py REPORT.json -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    report, cmd = sys.argv[1], sys.argv[3:]
    b0, t0 = busy_seconds(), time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    other = max(0.0, (busy_seconds() - b0 - cpu) / wall) if wall > 0 else 0.0
    tmp = report + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"wall_s": wall, "cpu_s": cpu, "other_processes_cores": other}, f)
    os.replace(tmp, report)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
