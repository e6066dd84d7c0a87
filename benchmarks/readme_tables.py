"""Regenerate the benchmark tables of README.md from the committed results in benchmarks/results/.

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->`` markers in README.md and is
rewritten from the JSON of the benchmark that made it, so the README never holds a number that is
not in a results file.

    python benchmarks/readme_tables.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

RESULTS = common.RESULTS_DIR
README = common.REPO_ROOT / "README.md"


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


QUALITY_COLUMNS = [("method", "method", ""), ("hole_psnr", "hole-PSNR dB", ".2f"),
                   ("ssim", "SSIM", ".4f"), ("grad_ratio", "gradient ratio", ".3f"),
                   ("crack_psnr", "crack dB", ".2f"), ("crack_grad_ratio", "crack ratio", ".3f"),
                   ("lacuna_psnr", "lacuna dB", ".2f"),
                   ("lacuna_grad_ratio", "lacuna ratio", ".3f"),
                   ("lacuna_echo", "lattice echo", ".3f"),
                   ("seconds", "s / image", ".2f")]


def quality() -> str:
    return common.markdown_table(load("quality")["summary"], QUALITY_COLUMNS)


def unseen() -> str:
    return common.markdown_table(load("unseen")["summary"], QUALITY_COLUMNS)


#: the 16x16 RGB VAE descriptors on the quality benchmark: (results folder, row label)
VAE16 = (("vae16_builtin", "vae, built-in (scikit-image)"),
         ("vae16_corpus", "vae, retrained on scikit-image + data/paper"),
         ("vae16_pixel", "pixel mode, 16x16 patches"))


#: quality.py's scikit-image textures: training images of every built-in descriptor
TRAINING_TEXTURES = ("brick", "grass", "gravel")


def _with_paintings(data: dict, method: str, label: str) -> dict:
    """``method``'s summary row of a quality.json, labelled, plus its mean hole-PSNR and
    gradient ratio over the painting images alone (no training texture)."""
    row = next(r for r in data["summary"] if r["method"] == method)
    paintings = [im["scores"][method] for im in data["images"]
                 if im["image"] not in TRAINING_TEXTURES]
    return {**row, "method": label,
            "paintings_psnr": sum(s["hole_psnr"] for s in paintings) / len(paintings),
            "paintings_grad_ratio": sum(s["grad_ratio"] for s in paintings) / len(paintings)}


def vae16() -> str:
    rows = []
    for folder, label in VAE16:
        data = load(f"variants/{folder}/quality")
        rows += [_with_paintings(data, r["method"], label) for r in data["summary"]]
    rows.append(_with_paintings(load("quality"), "v128", "v128 (default run, 9x9 patches)"))
    columns = QUALITY_COLUMNS[:-1] + [("paintings_psnr", "paintings dB", ".2f"),
                                      ("paintings_grad_ratio", "paintings ratio", ".3f")]
    return common.markdown_table(rows, columns)


def weights() -> str:
    rows = load("weights_report")["rows"]
    return common.markdown_table(rows, [
        ("name", "name", ""), ("arch", "arch", ""), ("dim", "dim", "d"),
        ("padding", "padding", ""), ("patches", "patches", "d"),
        ("epochs", "epochs (chen: L-BFGS its)", "d"), ("train_seconds", "train s", ".0f"),
        ("held_out_psnr", "held-out PSNR dB", ".2f"), ("held_out_ssim", "SSIM", ".3f")])


def ir_throughput() -> str:
    rows = load("ir_throughput")["results"]
    return common.markdown_table(rows, [
        ("arch", "arch", ""), ("megapixels", "MP", ".1f"), ("ir_mps", "IR MP/s", ".2f"),
        ("dense_mps", "dense MP/s", ".2f"), ("ir_plus_dense_mps", "IR + dense MP/s", ".2f"),
        ("naive_mps_extrapolated", "naive MP/s", ".4f"),
        ("speedup", "speed-up vs naive", ".0f")])


def memory() -> str:
    data = load("memory")
    by_size: dict[float, dict] = {}
    for row in data["rows"]:
        by_size.setdefault(row["megapixels"], {"megapixels": row["megapixels"]})[row["item"]] = \
            row["bytes"] / 1e6
    items = [("ir_v32", "IR v32 MB"), ("ir_v128", "IR v128 MB"), ("desc_v32", "all v32 MB"),
             ("desc_v128", "all v128 MB"), ("desc_chen", "all Chen MB")]
    rows = [r for r in by_size.values() if r["megapixels"] in (0.25, 1, 4, 16, 64, 100)]
    return common.markdown_table(rows, [("megapixels", "MP", "g")] +
                                 [(k, h, ",.0f") for k, h in items])


def robustness() -> str:
    rows = load("robustness")["medians"]
    levels = [k for k in rows[0] if k.endswith("%")]
    return common.markdown_table(rows, [("method", "method", "")] +
                                 [(lvl, lvl, ",.0f") for lvl in levels])


def vae() -> str:
    data = load("vae_tables")
    paper, pixels = data["paper"], data["pixel_search_retrieval"]

    def pair(psnr, ssim) -> str:
        return f"{psnr:.1f} / {ssim:.2f}"

    rows = []
    for model in ("ae", "vae"):
        f, p = data["figures"][model], paper[model]
        rows.append({"model": model.upper(),
                     "grid": pair(f["retrieval_grid_psnr"], f["retrieval_grid_ssim"]),
                     "fast_all": pair(f["retrieval_fast_all_psnr"], f["retrieval_fast_all_ssim"]),
                     "paper_retrieval": f"{p['retrieval_psnr']} / {p['retrieval_ssim']}",
                     "reconstruction": pair(f["reconstruction_psnr"], f["reconstruction_ssim"]),
                     "heldout": pair(f["heldout_reconstruction_psnr"],
                                     f["heldout_reconstruction_ssim"]),
                     "paper_reconstruction": f"{p['reconstruction_psnr']} / "
                                             f"{p['reconstruction_ssim']}"})
    rows.append({"model": "pixel search", "grid": pair(pixels["grid"]["psnr"],
                                                       pixels["grid"]["ssim"]),
                 "fast_all": pair(pixels["fast_all"]["psnr"], pixels["fast_all"]["ssim"]),
                 "paper_retrieval": "-", "reconstruction": "-", "heldout": "-",
                 "paper_reconstruction": "-"})
    return common.markdown_table(rows, [
        ("model", "model", ""), ("grid", "retrieval, grid protocol (ours)", ""),
        ("fast_all", "retrieval, FAST-all protocol (paper's)", ""),
        ("paper_retrieval", "paper", ""), ("reconstruction", "reconstruction, test split", ""),
        ("heldout", "reconstruction, held-out photos", ""),
        ("paper_reconstruction", "paper", "")])


def vae_curve() -> str:
    rows = load("vae_curve")["rows"]
    return common.markdown_table(rows, [
        ("patches", "patches", ",d"), ("epochs", "epochs", "d"),
        ("best_val_loss", "best validation loss", ".1f"),
        ("reconstruction_psnr", "test PSNR", ".2f"), ("reconstruction_ssim", "test SSIM", ".3f"),
        ("heldout_reconstruction_psnr", "held-out PSNR", ".2f"),
        ("heldout_reconstruction_ssim", "held-out SSIM", ".3f")])


def scaling() -> str:
    rows = [r for r in load("scaling")["rows"] if "error" not in r]
    return common.markdown_table(rows, [
        ("megapixels", "MP", "g"), ("descriptor", "descriptor", ""), ("wall_s", "wall s", ".0f"),
        ("context_s", "context", ".0f"), ("field_s", "IR", ".0f"), ("search_s", "search", ".0f"),
        ("pruning_s", "pruning", ".0f"), ("inference_s", "NCMP", ".0f"),
        ("compose_s", "compose", ".0f"), ("peak_rss_gb", "peak GB", ".2f"),
        ("predicted_peak_gb", "predicted GB", ".2f"), ("nodes", "nodes", ",d")])


def detection() -> str:
    rows = load("detection")["summary"]
    return common.markdown_table(rows, [
        ("method", "method", ""), ("precision", "P", ".3f"), ("recall", "R", ".3f"),
        ("f1", "F1", ".3f"), ("iou", "IoU", ".3f"), ("f1_craquelure", "F1 craquelure (3)", ".3f"),
        ("f1_fresco", "F1 fresco (1)", ".3f"), ("f1_manuscript", "F1 manuscripts (5)", ".3f"),
        ("seconds_per_mp", "s / MP", ".2f")])


TABLES = {"detection": detection, "quality": quality, "unseen": unseen,
          "weights": weights, "ir_throughput": ir_throughput,
          "memory": memory, "robustness": robustness, "vae": vae, "vae_curve": vae_curve,
          "vae16": vae16, "scaling": scaling}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report whether README is current")
    args = p.parse_args()
    text = README.read_text()
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table -->)", re.S)
        if not pattern.search(text):
            continue
        try:
            table = make()
        except (FileNotFoundError, KeyError) as exc:
            print(f"{name}: skipped ({exc})")
            continue
        text = pattern.sub(lambda m, t=table: m.group(1) + t.rstrip("\n") + "\n" + m.group(2),
                           text)
    if args.check:
        print("README tables are current" if text == README.read_text() else "README is stale")
        sys.exit(0 if text == README.read_text() else 1)
    README.write_text(text)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
