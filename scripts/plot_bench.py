#!/usr/bin/env python3
"""Log-log plot of latency vs sequence length from a `lighthouse bench --device cuda` JSON.

usage: scripts/plot_bench.py RESULT.json [OUT.png]   (default: RESULT.png beside the JSON)
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [  # (case, label, style)
    ("dense_cudnn_fwdbwd", "dense cuDNN fwd+bwd", "C0-o"),
    ("dense_flash_fwdbwd", "dense flash fwd+bwd", "C1-s"),
    ("lh_cudnn_fwdbwd", "Lighthouse fwd+bwd (cuDNN inner)", "C2-o"),
    ("lh_flash_fwdbwd", "Lighthouse fwd+bwd (flash inner)", "C3-s"),
    ("dense_cudnn_fwd", "dense cuDNN fwd", "C0:o"),
    ("lh_cudnn_fwd", "Lighthouse fwd (cuDNN inner)", "C2:o"),
]


def main() -> None:
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else src.with_suffix(".png")
    r = json.loads(src.read_text())
    pts = r["points"]
    ns = [p["N"] for p in pts]
    fig, ax = plt.subplots(figsize=(7, 5))
    for case, label, style in SERIES:
        xs = [p["N"] for p in pts if case in p["cases"]]
        ys = [p["cases"][case]["median_ms"] for p in pts if case in p["cases"]]
        if xs:
            ax.plot(xs, ys, style, label=label, mfc="none" if ":" in style else None)
    for p in pts:
        x = p.get("speedup_fwdbwd")
        if x:
            ax.annotate(f"{x:.1f}x", (p["N"], p["cases"]["lh_cudnn_fwdbwd"]["median_ms"]),
                        textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([f"{n // 2**20}M" if n >= 2**20 else f"{n // 1024}K" for n in ns])
    c = r["config"]
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("latency (ms, median)")
    ax.set_title(f"{r['device']} {r['date']}: B={c['B']} H={c['H']} D={c['D']} {c['dtype']}, "
                 f"L={c['L']} p={c['p']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=130)
    print(dst)


if __name__ == "__main__":
    main()
