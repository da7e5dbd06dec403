"""Every code block of the README runs as written, or says why it cannot.

Each ``bash`` or ``python`` block is preceded by an HTML comment that says how it is tested:

* ``<!-- readme-test: run ... -->``: in the default suite, in README order, in one scratch copy of
  the repository root (so later blocks see what earlier ones wrote). Python blocks run as a script
  (``python block.py``: the way a newcomer runs them, with no ``__main__`` guard); bash blocks
  with ``bash -e`` (every line must succeed), with this environment's ``skysift`` on ``PATH`` and
  ``.venv`` pointing at it.
* ``<!-- readme-test: slow ... -->``: the same, in ``pytest -m slow`` (minutes: real data, the demo).
* ``... needs ../shared/data``: skipped when the public data are not beside the checkout.
* ``<!-- readme-test: not run: REASON -->``: never run (e.g. needs the network); the reason is required.

Blocks in other languages (``text``, ``console``, or none) are examples of output or layout.
Sizes: the README gives realistic sizes; the default suite runs the same commands on fewer objects
and epochs, by the exact substitutions of :data:`SMALL` (nothing else is changed).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
FENCE = re.compile(r"^\s*```(\w*)\s*$")
RUNNABLE = {"bash", "python"}

#: exact text of the README → what the tests run instead (fewer objects and epochs, so that training
#: takes seconds, not an hour); the demo and the real-data blocks run as written
SMALL = {
    "simulate transits --out data/ --n 3000": "simulate transits --out data/ --n 300",
    "simulate transits --out test/ --n 1000": "simulate transits --out test/ --n 100",
    "simulate transients --out sim/ --n 3000": "simulate transients --out sim/ --n 600",
    "simulate transients --out sim_test/ --n 1000": "simulate transients --out sim_test/ --n 200",
    "--epochs 30": "--epochs 1",
    'skysift.simulate("transits", "data/", n=3000, seed=0)': 'skysift.simulate("transits", "data/", n=300, seed=0)',
    'skysift.simulate("transits", "test/", n=1000, seed=1)': 'skysift.simulate("transits", "test/", n=100, seed=1)',
    "epochs=30": "epochs=1",
    "simulate('survey/', n=1_000_000, seed=2": "simulate('survey/', n=25_000, seed=2",
    "objects_per_partition=100_000)": "objects_per_partition=10_000)",
}

#: text a block must print (a block is named by a piece of its first command line)
EXPECT = {
    "skysift --version": ["skysift ", "were seen in training", "unseen", "model card"],
    "simulate transients --out sim/": ["wrote "],
    "skysift datasets list": ["plasticc", "galaxyzoo1"],
    'skysift.simulate("transits"': ["ROC-AUC"],
    'model.predict("../shared/data/kepler/kepler90")': ["p_planet"],
}


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None

    @property
    def mode(self) -> str:
        m = (self.marker or "").lower()
        if m.startswith("not run"):
            return "not run"
        if m.startswith("slow"):
            return "slow"
        if m.startswith("run"):
            return "run"
        return "unmarked"

    @property
    def needs_shared(self) -> bool:
        return "needs ../shared/data" in (self.marker or "")

    @property
    def name(self) -> str:
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
        return f"L{self.line}-{self.lang}-{first[:40]}"


def readme_blocks(text: str | None = None) -> list[Block]:
    lines = (text if text is not None else README.read_text(encoding="utf-8")).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.search(prev)
        indent = len(lines[start]) - len(lines[start].lstrip())
        code = "\n".join(ln[indent:] for ln in lines[start + 1:j])
        blocks.append(Block(start + 1, lang, code + "\n", marker.group(1) if marker else None))
        i = j + 1
    return blocks


BLOCKS = [b for b in readme_blocks() if b.lang in RUNNABLE]


def _small(code: str) -> str:
    for old, new in SMALL.items():
        code = code.replace(old, new)
    return code


def _shared_data() -> Path | None:
    for p in (os.environ.get("SKYSIFT_SHARED_DATA"), ROOT.parent / "shared" / "data"):
        if p and Path(p).is_dir():
            return Path(p)
    return None


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A scratch 'repository root': ``../shared/data`` and ``.venv`` lead where the real ones do."""
    base = tmp_path_factory.mktemp("readme")
    repo = base / "repo"
    repo.mkdir()
    shared = _shared_data()
    if shared is not None:
        (base / "shared").mkdir()
        (base / "shared" / "data").symlink_to(shared)
    (repo / ".venv").symlink_to(Path(sys.prefix))
    return repo


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    src = str(ROOT / "src")  # this checkout's code, also for a child python3
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("SKYSIFT_DEBUG", "")
    return env


def run_block(block: Block, cwd: Path, *, small: bool, timeout: float) -> str:
    code = _small(block.code) if small else block.code
    if block.lang == "python":
        script = cwd / f"readme_block_{block.line}.py"
        script.write_text(code, encoding="utf-8")
        cmd = [sys.executable, script.name]
    else:
        # job control (set -m) so that `cmd &` ... `kill %1` works as in an interactive shell
        cmd = ["bash", "-e", "-o", "pipefail", "-c", "set -m\n" + code]
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"README block at line {block.line} ran over {timeout} s:\n{out[-4000:]}")
    finally:
        try:  # a server a block started and did not stop
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"README block at line {block.line} failed ({proc.returncode}):\n{out[-6000:]}"
    for key, wanted in EXPECT.items():
        if key in block.code:
            for w in wanted:
                assert w in out, f"README block at line {block.line} did not print {w!r}:\n{out[-4000:]}"
    return out


def test_every_runnable_block_says_how_it_is_tested():
    unmarked = [b.name for b in BLOCKS if b.mode == "unmarked"]
    assert not unmarked, f"README blocks without a <!-- readme-test: ... --> line: {unmarked}"
    for b in BLOCKS:
        if b.mode == "not run":
            reason = b.marker.split(":", 1)[1].strip() if ":" in (b.marker or "") else ""
            assert reason, f"{b.name}: 'not run' needs a reason"
    assert any(b.mode == "run" and b.lang == "python" for b in BLOCKS)
    assert all(old in README.read_text(encoding="utf-8") for old in SMALL), "a SMALL key no longer in the README"


def test_parser_reads_markers_and_fences():
    text = "x\n<!-- readme-test: not run: needs the network -->\n```bash\nskysift datasets download a\n```\n" \
           "```text\nout\n```\n  ```python\n  print(1)\n  ```\n"
    blocks = readme_blocks(text)
    assert [(b.lang, b.mode) for b in blocks] == [("bash", "not run"), ("text", "unmarked"), ("python", "unmarked")]
    assert blocks[2].code == "print(1)\n" and blocks[0].line == 3


def _check_outputs(block: Block, cwd: Path) -> None:
    if "submission.csv" in block.code and "transients" in block.code:
        header = (cwd / "submission.csv").read_text().splitlines()[0]
        assert header.startswith("object_id,class_6,") and header.endswith(",class_95,class_99")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode == "run"], ids=lambda b: b.name)
def test_readme_block_runs(block, checkout):
    if block.needs_shared and _shared_data() is None:
        pytest.skip("needs ../shared/data")
    run_block(block, checkout, small=True, timeout=600)
    _check_outputs(block, checkout)


@pytest.mark.slow
def test_readme_slow_blocks(tmp_path):
    """The demo, then every runnable block in README order, in one scratch root (~20 min on 2 cores)."""
    (tmp_path / "repo").mkdir()
    shared = _shared_data()
    if shared is not None:
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "data").symlink_to(shared)
    repo = tmp_path / "repo"
    (repo / ".venv").symlink_to(Path(sys.prefix))
    demo = Block(0, "bash", "skysift demo --out demo_out\n", "slow")
    run_block(demo, repo, small=False, timeout=3600)
    # every block in README order (a slow block may build on a fast one); simulated sizes reduced as
    # in the default suite (the README's sizes train for an hour), real data and the demo as written
    for block in (b for b in BLOCKS if b.mode in ("run", "slow")):
        if block.needs_shared and shared is None:
            continue
        run_block(block, repo, small=True, timeout=3600)
        _check_outputs(block, repo)
    shutil.rmtree(repo / "demo_out", ignore_errors=True)
