#!/usr/bin/env python3
"""Run a command and report its peak memory, split the way Linux accounts it: peak VmRSS (what
`/usr/bin/time` calls maximum resident set size), and the peaks of RssAnon (heap, stacks:
memory the process owns) and RssFile (pages of mapped files, i.e. page cache shared with the
kernel and reclaimable). Polls /proc/<pid>/status every 5 ms. The command's standard output is
passed through; the memory report goes to standard error as one JSON line.

    python3 tools/bench/peak_rss.py -- target/release/lifted stream DIR --epochs 50 --json
"""
import json
import subprocess
import sys
import time


def status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    fields[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return fields


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    proc = subprocess.Popen(argv)
    peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0, "VmHWM": 0}
    while proc.poll() is None:
        for key, value in status(proc.pid).items():
            peak[key] = max(peak[key], value)
        time.sleep(0.005)
    print(json.dumps({"peak_rss_mib": round(peak["VmHWM"] / 1024, 1), "peak_anon_mib": round(peak["RssAnon"] / 1024, 1),
                      "peak_file_mib": round(peak["RssFile"] / 1024, 1), "exit": proc.returncode}), file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
