"""Numbers in a lesson's prose match its stored outputs (COURSE.md section 7: every number in prose comes from
the stored outputs of a clean run).

In every notebook's markdown, each decimal number (``170.9``, ``2.524``, ``0.379``) and each number introduced
with "about", "roughly", "≈" or "~" must appear, rounded to the precision it is written with, among

- the numbers printed in the same notebook's stored outputs,
- the numbers in the same notebook's code (settings such as a standard deviation of 0.3, thresholds of asserts),
- the stored outputs of any lesson the same cell names ("lesson 03", "lessons 01-03"), for cross-references,

or be on the small allow-list below (mathematical constants, and entries naming the cell and the reason).
A range ``A-B`` passes when some printed value lies in it. Not checked: section, equation and figure numbers
(``§9.3.3``, ``Eq. 9.7``, headings ``### 4.1``), years, inline code, links, and durations and sizes in the title
cell and the "Instructor notes" cell (run times and file sizes cannot be stored outputs). One test per notebook,
so each lesson's result stands alone.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Set, Tuple

import pytest

from deepgen_helpers.config import repo_root

NOTEBOOK_DIR = repo_root() / "notebooks"
LESSONS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))

#: Constants written in prose, as (regular expression around the number, why it needs no output).
CONSTANTS: List[Tuple[str, str]] = [
    (r"(\\ln|\\log|ln|log)\s*10\s*(\\approx|≈|=)\s*2\.3", "ln 10 = 2.302..."),
    (r"(\\ln|\\log|ln|log)\s*2\s*(\\approx|≈|=)\s*0\.69", "ln 2 = 0.693..."),
    (r"\\pi\s*(\\approx|≈)\s*3\.14", "pi"),
    (r"\be\s*(\\approx|≈)\s*2\.718", "Euler's number"),
    (r"\\sqrt\s*\{?\d+\}?\s*(\\approx|≈)\s*\d", "a square root, written out"),
]

#: Per-notebook exceptions: {notebook stem: {(cell id, number as written): reason}}. Keep it short; prefer
#: printing the number in the notebook so that it is checked.
ALLOWED = {
    "04_gans_from_scratch": {
        ("c04-062", v): "the lesson's stored run at its earlier budget of 2,000 generator steps (set gan_steps "
                        "= 2000 to repeat it), which the solutions notebook compares with" for v in ("0.96", "0.77")
    },
    "04_gans_from_scratch_solutions": {
        ("c04s-011", v): "lesson 04's plain GAN and WGAN-GP at 2,000 generator steps, the budget these remedies "
                         "use (lesson 04's Instructor notes; set gan_steps = 2000 there to repeat it)"
        for v in ("14.3", "3.2", "0.386", "0.118", "0.957", "7.7", "5.1")
    },
    "02_autoencoders": {
        ("c02-013", "543"): "784 ln 2, a constant derived in the sentence itself, not a measurement",
    },
    "05_dcgan_and_conditional_gans": {
        ("c05-072", "99.7"): "the earlier (batch-norm) shipped checkpoint's class accuracy, in its manifest entry",
        ("c05-072", "98.5"): "printed by scripts/train_lesson05.py cgan --curve 6000 (36,000 steps), not the lesson",
        ("c05-072", "99.2"): "printed by scripts/train_lesson05.py cgan --curve 6000 (36,000 steps), not the lesson",
        ("c05-072", "98.8"): "the earlier (one-hot generator) shipped checkpoint's class accuracy, its manifest entry",
        **{("c05-072", v): "printed by scripts/train_lesson05.py cgan --g-cond batchnorm --curve 6000, not the "
                           "lesson" for v in ("15.9", "14.9", "13.9", "97.3", "99.4", "99.1")},
    },
    "05_dcgan_and_conditional_gans_solutions": {
        ("c05s-005", "0.5"): "an example truncation setting in a formula (2 Phi(0.5) - 1 = 0.383)",
    },
}

ABOUT = r"(?:about|around|roughly|approximately|nearly|almost|≈|\\approx|~|\\sim)"
REFERENCE = (r"(?:§|\bEqs?\.|\bEquations?|\bSections?|\bsections?|\bTables?|\bFigs?\.|\bFigures?|\bAlgorithm|"
             r"\b[Cc]hapters?|\bTheorem|\bLemma|\bDefinition|\bProp\.|\bpp?\.|\barXiv:|\bv(?=\d))")
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
RANGE_SEP = r"\s*(?:-|–|—|to)\s*"
UNITS = r"\s*(?:s\b|seconds?|min\b|minutes?|h\b|hours?|ms\b|MB|GB|kB|KB|MiB|GiB)"


def _text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _clean_markdown(text: str) -> str:
    """Markdown with what is not prose blanked out (keeping positions roughly intact is not needed)."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)                      # code blocks
    text = re.sub(r"`[^`]*`", " ", text)                                    # inline code
    text = re.sub(r"\]\([^)]*\)", "] ", text)                              # link targets
    text = re.sub(r"https?://\S+", " ", text)                               # bare addresses
    text = re.sub(r"^#+\s*[\d.]+", "#", text, flags=re.M)                   # heading numbers
    text = re.sub(r"\*\*\d+(?:\.\d+)+\s", "** ", text)                         # bold run-in headings
    text = re.sub(REFERENCE + r"\s*\d[\d.]*(?:\s*(?:-|–|,|and|&)\s*\d[\d.]*)*", " ", text)
    text = re.sub(r"\b\d+(?:\.\d+){2,}\b", " ", text)                       # 9.3.3, 2.13.0
    text = re.sub(r"\b(?:1[89]|20)\d\d[a-z]?\b(?!\.\d)", " ", text)          # years
    return text


def _numbers(text: str) -> List[Decimal]:
    """Every number printed in ``text`` (outputs or code), unsigned, commas removed, with scientific form."""
    found = []
    for m in re.finditer(r"(\d+(?:,\d{3})*(?:\.\d+)?)(?:[eE]([-+]?\d+))?", text):
        digits = m.group(1).replace(",", "")
        value = Decimal(digits) * (Decimal(10) ** int(m.group(2)) if m.group(2) else 1)
        found.append(value)
        if "%" in text[m.end():m.end() + 2]:
            found.append(value / 100)
    return found


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", [])))
            parts.append("".join(out.get("data", {}).get("text/plain", [])))
            parts.append("".join(out.get("data", {}).get("text/markdown", [])))
    return "\n".join(parts)


@lru_cache(maxsize=None)
def _load(path: str):
    return json.loads(Path(path).read_text())


@lru_cache(maxsize=None)
def _values(path: str, with_code: bool) -> Tuple[Decimal, ...]:
    nb = _load(path)
    text = _outputs_text(nb)
    if with_code:
        text += "\n".join(_text(c) for c in nb["cells"] if c["cell_type"] == "code")
    return tuple(_numbers(text))


def _lesson_path(number: str) -> Optional[Path]:
    hits = [p for p in LESSONS if p.stem.startswith(f"{int(number):02d}_")]
    return hits[0] if hits else None


def _named_lessons(text: str) -> Set[Path]:
    """Lessons a cell names: "lesson 03", "lessons 01-03", "lessons 01 and 02"."""
    paths = set()
    for m in re.finditer(r"[Ll]essons?\s+(\d{1,2})(?:\s*(?:-|–|to)\s*(\d{1,2}))?((?:\s*(?:,|and)\s*\d{1,2})*)",
                         text):
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        numbers = list(range(first, last + 1)) + [int(n) for n in re.findall(r"\d+", m.group(3) or "")]
        paths.update(p for p in map(lambda n: _lesson_path(str(n)), numbers) if p)
    return paths


def _matches(written: str, values, unit_percent: bool = False) -> bool:
    """Does some value round to ``written`` at its precision?  Integers ending in zeros are taken at the
    precision of their last non-zero digit ("about 160" is 155 to 165; "about 850,000" 845,000 to 855,000)."""
    w = Decimal(written.replace(",", ""))
    if "." in written:
        step = Decimal(1).scaleb(-len(written.split(".")[1]))
    else:
        digits = written.replace(",", "")
        zeros = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
        step = Decimal(10) ** zeros
    half = step / 2
    targets = [w] + ([w / 100] if unit_percent else [])
    for target in targets:
        scale = half if target == w else half / 100
        if any(abs(v - target) <= scale for v in values):
            return True
    return False


def _in_range(low: str, high: str, values) -> bool:
    lo, hi = Decimal(low.replace(",", "")), Decimal(high.replace(",", ""))
    if lo > hi:
        return False
    return any(lo <= v <= hi for v in values)


def _claims(text: str):
    """(number or range as written, context, kind) for each checked number of a markdown cell."""
    clean = _clean_markdown(text)
    seen = set()
    pattern = re.compile(rf"(?P<about>{ABOUT}\s*\$?\s*)?(?P<a>{NUMBER})(?:(?P<sep>{RANGE_SEP})(?P<b>{NUMBER}))?")
    for m in pattern.finditer(clean):
        a, b = m.group("a"), m.group("b")
        start = m.start("a")
        if start > 0 and (clean[start - 1].isalnum() or clean[start - 1] in "_^{"):
            continue                                                       # x2, 10^6, _{1}: not a quantity
        sci = re.match(r"\s*(?:\\times|\\cdot|×)\s*10\^\{?([-−]?\d+)\}?", clean[m.end():m.end() + 20])
        if sci and b is None:                                              # 1.5 \times 10^{-4}
            if "." not in a and not m.group("about"):
                continue                                       # 2 \cdot 10^{-4}: a setting, as an integer
            exponent = int(sci.group(1).replace("−", "-"))
            a = format(Decimal(a.replace(",", "")).scaleb(exponent), "f")
        after = clean[m.end():m.end() + 3]
        if not sci and (after.startswith("^") or re.match(r"\s*[×x]\s*\d", after)):
            continue                                                       # exponents, 32x32 sizes
        is_decimal = "." in a or (b is not None and "." in b)
        if not (is_decimal or m.group("about")):
            continue
        lo = max(0, m.start() - 40)
        context = " ".join(clean[lo:m.end() + 25].split())
        percent = clean[m.end():m.end() + 3].lstrip().startswith("%")
        key = (a, b, context)
        if key in seen:
            continue
        seen.add(key)
        yield a, b, context, percent, bool(re.match(UNITS, clean[m.end():m.end() + 12]))


def _problems(path: Path) -> List[str]:
    nb = _load(str(path))
    own = _values(str(path), True)
    stem = path.stem
    allowed = ALLOWED.get(stem, {})
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = _text(cell)
        is_title = i == 0
        is_notes = bool(re.match(r"#+\s*Instructor notes", text.lstrip()))
        cross = tuple(v for p in _named_lessons(text) for v in _values(str(p), False))
        for a, b, context, percent, has_unit in _claims(text):
            if any(re.search(rx, context) for rx, _ in CONSTANTS):
                continue
            if (cell.get("id"), a) in allowed:
                continue
            if (is_title or is_notes) and has_unit:
                continue                         # run times and sizes in the title and instructor notes
            values = own + cross
            if b is not None:
                ok = _in_range(a, b, values) or (_matches(a, values, percent) and _matches(b, values, percent))
                shown = f"{a}-{b}"
            else:
                ok = _matches(a, values, percent)
                shown = a
            if not ok:
                problems.append(f"cell {cell.get('id')}: {shown!r} is in no stored output: ...{context}...")
    return problems


#: Notebooks whose prose still quotes numbers from runs outside their stored outputs (exploratory runs in
#: instructor notes, earlier versions). Each is a known defect, listed so that it stays visible: the mark is
#: strict, so the entry must be removed as soon as the notebook passes.
KNOWN_STALE: dict = {}


#: Lessons still being built (issue notes say which): their default-mode outputs may not be stored yet.
IN_PROGRESS: dict = {}


def _marked(path):
    reason = KNOWN_STALE.get(path.stem)
    if reason:
        return pytest.param(path, marks=pytest.mark.xfail(strict=True, reason=reason))
    if path.stem in IN_PROGRESS:
        return pytest.param(path, marks=pytest.mark.xfail(strict=False, reason=IN_PROGRESS[path.stem]))
    return path


@pytest.mark.parametrize("path", [_marked(p) for p in LESSONS + SOLUTIONS], ids=lambda p: p.stem)
def test_prose_numbers_match_stored_outputs(path):
    problems = _problems(path)
    assert not problems, (f"{path.relative_to(repo_root())}: {len(problems)} number(s) in the prose do not match "
                          "the stored outputs (re-run the notebook and update the text, print the number, or "
                          "add a reasoned entry to ALLOWED in tests/test_prose_numbers.py):\n  "
                          + "\n  ".join(problems))


# ----------------------------------------------------------------------------------------------------------
# The checker itself
# ----------------------------------------------------------------------------------------------------------
def test_rounding_and_precision():
    values = [Decimal("170.92"), Decimal("2.5187"), Decimal("0.3789")]
    assert _matches("170.9", values) and _matches("2.519", values) and _matches("0.379", values)
    assert _matches("171", values) and _matches("170", values)
    assert not _matches("160", values)                    # "about 160" vs a printed 170.9: the reviewer's case
    assert not _matches("170.8", values)
    assert _matches("15", [Decimal("0.15")], unit_percent=True)
    assert _in_range("75", "90", [Decimal("80.2")]) and not _in_range("75", "90", [Decimal("91")])


def test_claims_skip_references_and_find_results():
    md = ("### 4.1 Likelihood\nBishop §9.3.3 and Eq. 9.7 (2006); Eqs. 5.58-5.61. The class mixture scores "
          "about 160 nats, a test NLL of 2.524, and `lr=0.05`. See [x](a/b1.5.ipynb). A 32x32 image, 10^6 points.")
    claims = [(a, b) for a, b, *_ in _claims(md)]
    assert claims == [("160", None), ("2.524", None)]
    assert [a for a, *_ in _claims("**8.1 The holes** are about 3.5 nats deep")] == ["3.5"]
    assert [a for a, *_ in _claims(r"fell to $1.5 \times 10^{-4}$")] == ["0.00015"]
    assert [a for a, *_ in _claims(r"learning rate $2 \cdot 10^{-4}$")] == []
    assert _matches("0.00015", [Decimal("1.46E-4")]) and not _matches("0.00015", [Decimal("1.4E-4")])


def test_named_lessons():
    names = {p.stem[:2] for p in _named_lessons("as in lesson 03; lessons 01-02")}
    assert names == {p.stem[:2] for p in LESSONS if p.stem[:2] in {"01", "02", "03"}}
