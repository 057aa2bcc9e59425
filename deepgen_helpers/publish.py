"""Publishing chores: lesson code exported to the package, Colab badges and setup cells, clean
stored outputs.

    python -m deepgen_helpers.publish sync
        # export lesson code, rewrite badges and Colab blocks
    python -m deepgen_helpers.publish sync --check
        # exit 1, saying what and why, if anything is out of date
    python -m deepgen_helpers.publish execute notebooks/01_generative_modelling_basics.ipynb
        [--mode default]

**One source for lesson code.** A lesson's code cells tagged ``export`` (cell metadata ``tags``; in
JupyterLab: the gear icon, "Cell Tags") are the only copy of the models, losses and loops that
tests, training scripts and later lessons reuse. ``sync`` writes them, in order, to
``deepgen_helpers/models/<module>.py`` (the table :data:`EXPORTS`), under a header naming the
notebook; edits belong in the notebook, never in the module. Exported cells only define things (no
training, no data loading), and may use the names every setup cell imports
(:data:`EXPORT_IMPORTS`); anything else they import themselves.

``execute`` runs a notebook top to bottom in a fresh kernel and stores its outputs without widget
state, timing metadata or widget views (which GitHub cannot show), so readers see the results of a
clean run.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from .config import MODE_ENV, REPO_BRANCH, REPO_URL, repo_root
from .training import PLAIN_PROGRESS_ENV

#: Notebook stem -> (module in ``deepgen_helpers/models/``, one line on what it holds).
EXPORTS: Dict[str, Tuple[str, str]] = {
    "01_generative_modelling_basics": (
        "basics",
        "Lesson 01's models: a Gaussian mixture in 2-D and independent Bernoulli pixels.",
    ),
    "02_autoencoders": (
        "autoencoders",
        "Lesson 02's autoencoders (MLP and convolutional), their loss and training loop.",
    ),
    "03_variational_autoencoders": (
        "vae",
        "Lesson 03's variational autoencoder, conditional VAE, ELBO terms, IWAE and training loop.",
    ),
    "04_gans_from_scratch": (
        "gan2d",
        "Lesson 04's 2-D GAN: G and D, GAN and WGAN-GP losses, training steps and loop.",
    ),
    "05_dcgan_and_conditional_gans": ("dcgan", "Lesson 05's DCGAN, conditional GAN and training loop."),
    "06_image_to_image_gans": (
        "image2image",
        "Lesson 06's super-resolution CNN and pix2pix (U-Net, PatchGAN): data, losses, training.",
    ),
    "07_diffusion_fundamentals": (
        "diffusion",
        "Lesson 07's diffusion basics: noise schedules, q(x_t | x_0), eps loss, DDPM sampler, MLP.",
    ),
    "08_diffusion_on_images": (
        "unet",
        "Lesson 08's U-Net, eps/x0/v targets, min-SNR loss, EMA, DDIM and respaced DDPM, training.",
    ),
    "09_guidance_inpainting_editing": (
        "guidance",
        "Lesson 09's classifier-free guidance, inpainting (naive and RePaint) and SDEdit.",
    ),
    "10_rnn_text_generation": (
        "rnn",
        "Lesson 10's character language models: vocabulary, n-gram, RNN/LSTM/GRU, training, sampling.",
    ),
    "11_rnn_music_generation": (
        "music_rnn",
        "Lesson 11's piano-roll LSTM: frame NLL, independent and MADE outputs, training, sampling.",
    ),
    "12_attention_and_transformers": (
        "transformer",
        "Lesson 12's attention: scaled dot-product, masks, multi-head, positions, pre-LN block.",
    ),
    "13_gpt_from_scratch": (
        "gpt",
        "Lesson 13's GPT: model, AdamW training, evaluation, KV-cache sampling, BPE tokeniser.",
    ),
    "14_bert_masked_language_models": (
        "bert",
        "Lesson 14's BERT: encoder, 80/10/10 masking, MLM pre-training and evaluation, fine-tuning.",
    ),
    "15_seq2seq_translation": (
        "seq2seq",
        "Lesson 15's encoder-decoder Transformer: model, teacher forcing, greedy and beam search.",
    ),
}
EXPORT_TAG = "export"
#: What every lesson's setup cell imports; exported cells may use these names without importing
#: them.
EXPORT_IMPORTS = """import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn"""

BADGE_RE = re.compile(r"\[!\[Open In Colab\]"
                      r"\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
                      r"\([^)]*\)")
BLOCK_START = ("# --- Colab only: fetch the course and install its helpers "
               "(does nothing elsewhere) ---")
BLOCK_END = "# --- end of Colab block ---"


def _github_path() -> str:
    return REPO_URL.rstrip("/").split("github.com/")[-1]


COLAB_URL_RE = re.compile(r"https://colab\.research\.google\.com/github/"
                          r"[^)\s]*?/blob/[^/)\s]+/(notebooks/[^)\s]+\.ipynb)")


def colab_url(relpath: str) -> str:
    """The Colab address that opens the notebook at ``relpath`` (relative to the repo root)
    from GitHub."""
    return f"https://colab.research.google.com/github/{_github_path()}/blob/{REPO_BRANCH}/{relpath}"


def colab_badge(relpath: str) -> str:
    """Markdown for the "Open in Colab" badge of the notebook at ``relpath`` (relative to
    the repo root)."""
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(relpath)})")


def colab_block() -> str:
    """The lines at the top of every setup cell that install the course on Colab, and only there."""
    return "\n".join([
        BLOCK_START,
        "import os, subprocess, sys",
        'if "google.colab" in sys.modules:',
        '    if not os.path.isdir("/content/deepgen"):',
        f'        url = "{REPO_URL}"',
        ('        subprocess.run(["git", "clone", "-q", "--depth", "1", url, '
         '"/content/deepgen"], check=True)'),
        ("        # Installs only what is missing: Colab's torch, numpy and matplotlib "
         "satisfy the ranges."),
        '        pip = [sys.executable, "-m", "pip", "install", "-q"]',
        '        subprocess.run(pip + ["-e", "/content/deepgen"], check=True)',
        '    sys.path.insert(0, "/content/deepgen")',
        BLOCK_END,
    ])


#: The kernelspec JupyterLab writes for the standard ipykernel. Stored notebooks carry exactly this,
#: so that opening a lesson in JupyterLab does not mark it changed (Colab reads it and keeps its own
#: copy).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _notebooks() -> List[Path]:
    return sorted(p for p in (repo_root() / "notebooks").rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def _src(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source


def exported_module(nb_path: Path) -> str:
    """The text of the module that ``sync`` writes from the ``export`` cells of the
    notebook ``nb_path``."""
    import nbformat

    if nb_path.stem not in EXPORTS:
        raise ValueError(f"{nb_path.name} is not in publish.EXPORTS; add an entry "
                         f'"{nb_path.stem}": ("<module>", "<what it holds>") to export its cells.')
    module, about = EXPORTS[nb_path.stem]
    nb = nbformat.read(str(nb_path), as_version=4)
    cells = [c for c in nb.cells
             if c.cell_type == "code" and EXPORT_TAG in c.metadata.get("tags", [])]
    if not cells:
        raise ValueError(f"{nb_path.name} has no code cell tagged {EXPORT_TAG!r}, but "
                         "publish.EXPORTS lists it; tag the cells to export or remove the entry.")
    rel = nb_path.relative_to(repo_root()).as_posix()
    parts = [f'"""{about}\n\nGenerated from {rel} (its cells tagged "{EXPORT_TAG}") by\n'
             "`python -m deepgen_helpers.publish sync`. "
             "Do not edit this file: edit those cells in the notebook,\n"
             'then run that command. The notebook explains every line.\n"""', EXPORT_IMPORTS]
    for cell in cells:
        parts.append(f"# --- {rel}, cell {cell.get('id')} ---\n" + _src(cell).strip("\n"))
    return "\n\n\n".join(parts) + "\n"


def _export_problems(write: bool) -> List[str]:
    """Export every notebook of :data:`EXPORTS`; return "<file>: <why>" for each
    module that differed."""
    problems = []
    models = repo_root() / "deepgen_helpers" / "models"
    expected = {}
    for stem, (module, _) in EXPORTS.items():
        nb_path = repo_root() / "notebooks" / f"{stem}.ipynb"
        if not nb_path.exists():
            problems.append(f"notebooks/{stem}.ipynb: listed in publish.EXPORTS but missing")
            continue
        expected[f"{module}.py"] = exported_module(nb_path)
    for name, text in expected.items():
        target = models / name
        rel = target.relative_to(repo_root()).as_posix()
        if not target.exists():
            problems.append(f"{rel}: missing (it is generated from the notebook's export cells)")
        elif target.read_text() != text:
            problems.append(f"{rel}: differs from the export cells of its notebook (edit the "
                            "notebook, not the module)")
        else:
            continue
        if write:
            target.write_text(text)
    for path in sorted(models.glob("*.py")):
        if path.name != "__init__.py" and path.name not in expected:
            problems.append(f"{path.relative_to(repo_root()).as_posix()}: not generated from any "
                            "notebook (add its notebook to publish.EXPORTS, or delete it)")
    return problems


def sync(check: bool = False) -> List[str]:
    """Export lesson code to ``models/``, rewrite badges, Colab blocks and the README's Colab links.

    Returns one ``"<file>: <what was out of date>"`` line per file that changed (with
    ``check=True``: that would change; nothing is written).
    """
    import nbformat

    changed = _export_problems(write=not check)
    for path in _notebooks():
        nb = nbformat.read(str(path), as_version=4)
        rel = path.relative_to(repo_root()).as_posix()
        why = set()
        if dict(nb.metadata.get("kernelspec", {})) != KERNELSPEC:
            nb.metadata["kernelspec"] = dict(KERNELSPEC)
            why.add("kernelspec")
        for cell in nb.cells:
            src = _src(cell)
            if cell.cell_type == "markdown" and BADGE_RE.search(src):
                new, what = BADGE_RE.sub(lambda _: colab_badge(rel), src), "Colab badge"
            elif cell.cell_type == "code" and BLOCK_START in src and BLOCK_END in src:
                a, b = src.index(BLOCK_START), src.index(BLOCK_END) + len(BLOCK_END)
                new, what = src[:a] + colab_block() + src[b:], "Colab setup block"
            else:
                continue
            if new != src:
                cell.source = new
                why.add(what)
        if why:
            changed.append(f"{rel}: {' and '.join(sorted(why))} out of date")
            if not check:
                nbformat.write(nb, str(path))
    readme = repo_root() / "README.md"
    if readme.exists():
        text = readme.read_text()
        new = COLAB_URL_RE.sub(lambda m: colab_url(m.group(1)), text)
        if new != text:
            changed.append("README.md: Colab links out of date (config.REPO_URL changed?)")
            if not check:
                readme.write_text(new)
    return changed


def clean_outputs(nb) -> None:
    """Drop widget state, timing metadata and widget views (keeping their text); set the
    kernelspec, in place."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
                data["text/plain"] = "(interactive widget: run the notebook to use it)"


def execute(path: Path, mode: str = "default", timeout: int = 1800) -> float:
    """Run ``path`` in a fresh kernel with ``DEEPGEN_MODE=mode`` and store its clean outputs;
    return seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    os.environ[MODE_ENV] = mode
    os.environ[PLAIN_PROGRESS_ENV] = "1"
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    clean_outputs(nb)
    nbformat.write(nb, str(path))
    return time.time() - start


def _notebook_arg(text: str) -> Path:
    """``execute``'s notebook argument: an existing ``.ipynb`` file."""
    path = Path(text)
    if path.suffix != ".ipynb" or not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a notebook file (.ipynb) "
                                         "that exists here")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Colab badges and stored outputs.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sync")
    s.add_argument("--check", action="store_true")
    e = sub.add_parser("execute")
    from .config import MODES  # the run modes execute accepts

    e.add_argument("notebooks", nargs="+", type=_notebook_arg)
    e.add_argument("--mode", default="default", choices=MODES)
    args = parser.parse_args(argv)
    if args.cmd == "sync":
        changed = sync(check=args.check)
        if not changed:
            print("exported modules, badges and Colab blocks are up to date")
            return 0
        print("\n".join(changed))
        if args.check:
            print("Out of date. Run `python -m deepgen_helpers.publish sync` "
                  "and commit the result.", file=sys.stderr)
            return 1
        return 0
    for nb in args.notebooks:
        print(f"{nb}: executed in {execute(nb.resolve(), args.mode):.0f} s ({args.mode} mode)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
