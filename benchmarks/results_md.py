"""Turn benchmark JSON lines into a markdown report (tables per benchmark) on stdout.

Run: ``python benchmarks/results_md.py bench.jsonl [--title T] [--preamble FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Columns shown per bench (when present), in order; other fields are left out.
COLUMNS: dict[str, tuple[str, ...]] = {
    "cuba": (
        "engine",
        "precision",
        "neurons",
        "duration_s",
        "setup_s",
        "run_s",
        "wall_per_sim_s",
        "us_per_step",
        "rate_hz",
        "syn_events_per_s",
        "skipped",
    ),
    "cuba-overhead": (
        "engine",
        "variant",
        "neurons",
        "monitor",
        "steps",
        "us_per_step",
        "goal_us_per_step",
        "meets_goal",
    ),
    "cobahh": (
        "engine",
        "precision",
        "neurons",
        "synapses_per_neuron",
        "duration_s",
        "setup_s",
        "connectivity_s",
        "run_s",
        "wall_per_sim_s",
        "us_per_step",
        "rate_hz",
        "syn_events_per_s",
        "gpu_pool_bytes",
        "meets_goal",
        "anchor_brian2cuda_h200_wall_per_sim_s",
        "skipped",
    ),
    "construction": (
        "engine",
        "neurons",
        "p",
        "synapses",
        "build_s",
        "synapses_per_s",
        "goal_s_for_1e8",
        "anchor_brian2cuda_host_per_s",
        "skipped",
    ),
    "ratio": (
        "bench",
        "engine",
        "peer",
        "neurons",
        "precision",
        "speedup_run",
        "speedup_setup",
        "speedup_synapses_per_s",
        "rate_hz_gpuspike",
        "rate_hz_brian2",
        "rate_rel_diff",
    ),
    "train_shd": ("framework", "engine", "device", "dt_ms", "n_steps", "hidden", "batch_size",
                  "batch_time_s", "epoch_time_s", "peak_mem_mib", "peak_mem_source",
                  "spikes_per_hidden_neuron", "updates_skipped_nonfinite"),
    "train_shd_ratio": ("peer", "dt_ms", "speedup", "memory_ratio", "meets_goal"),
    "other": ("bench", "engine", "error", "failed", "wall_s"),
}


def _fmt(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v).replace("|", "/")


def table(rows: list[dict], columns: tuple[str, ...]) -> str:
    cols = [c for c in columns if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def render(records: list[dict], title: str) -> str:
    groups: dict[str, list[dict]] = {}
    for r in records:
        b = str(r.get("bench", "?"))
        key = "ratio" if b.endswith("-ratio") else (b if b in COLUMNS else "other")
        if "error" in r:
            key = "other"
        groups.setdefault(key, []).append(r)
    out = [f"# {title}", ""]
    devices = sorted({str(r["device"]) for r in records if r.get("device")})
    dates = sorted({str(r["date"]) for r in records if r.get("date")})
    if devices:
        out += ["Devices: " + "; ".join(devices), ""]
    if dates:
        out += [f"Measured: {dates[0]} .. {dates[-1]}", ""]
    for key in ("cuba", "cuba-overhead", "cobahh", "construction", "ratio", "train_shd",
                "train_shd_ratio", "other"):
        if key in groups:
            out += [f"## {key}", "", table(groups[key], COLUMNS[key]), ""]
    notes = sorted({str(r[k]) for r in records for k in ("anchor_note", "note") if r.get(k)})
    if notes:
        out += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def read_jsonl(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("jsonl", type=Path)
    p.add_argument("--title", default="gpuspike benchmark results")
    p.add_argument("--preamble", type=Path, default=None, help="markdown put after the title")
    args = p.parse_args(argv)
    text = render(read_jsonl(args.jsonl), args.title)
    if args.preamble and args.preamble.exists():
        head, _, rest = text.partition("\n\n")
        text = head + "\n\n" + args.preamble.read_text().rstrip() + "\n\n" + rest
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
