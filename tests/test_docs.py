"""Docs that run (issue 14, item 12): every code block of README.md and docs/*.md is executed,
and every repository path the docs mention exists.

Conventions (what a doc author needs to know):

* The blocks of one Markdown file run in order, like a notebook, in one temporary folder that is
  both the working directory and ``$HOME``; ``python`` blocks share one namespace per file.  A
  ``python`` block with ``>>>`` lines is run as a doctest (its printed output is compared).
* ``bash``/``sh``/``console`` blocks: each line (``\\`` continues a line; ``console`` lines start
  with ``$``) is a ``&&``-chain of commands.  ``convnet ...`` runs as ``python -m convnet ...``
  (no shell: quotes are honoured, a leading ``~`` is expanded, ``VAR=value`` prefixes set the
  environment) and must exit 0, or exactly N when the line ends with the comment ``# exits N``.
  A few other commands are skipped on purpose (:data:`SKIPPED_COMMANDS`, with the reason); any
  other command fails the test, so a new kind of command needs a decision here.
* The data sets the docs name by path exist in ``$HOME`` as tiny stand-ins (:func:`_stand_ins`):
  ``~/data/mnist`` (IDX, 28×28), ``~/data/cifar-10-batches-bin`` (binary batches) and
  ``~/photos`` (an image folder ``train/``/``test/`` × ``cat``/``dog``, images of mixed sizes).
* ``<!-- docs-test: skip (REASON) -->`` on the line(s) just before a fence skips that block; the
  reason is required and shows in the test report.  Blocks in any other language (``text``,
  none, listings of output or signatures) are not run.
* Each test id is ``FILE:LINE`` of the block's opening fence.
"""
from __future__ import annotations

import doctest
import io
import os
import re
import shlex
import struct
import subprocess
import sys
import traceback
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUN_LANGS = {"python", "bash", "sh", "console"}
COMMAND_TIMEOUT_S = 120

#: commands in shell blocks that are deliberately not run: (first words, reason)
SKIPPED_COMMANDS = (
    (("pip", "install"), "installs packages; the test runs the checkout as installed"),
    (("python", "-m", "pytest"), "runs the whole test suite, this test included"),
    (("python", "-m", "benchmarks.run"), "a benchmark: minutes of timing, never part of the tests"),
)

#: paths the docs name that are outputs (git-ignored), not files of the repository
GENERATED_PATHS = {
    "benchmarks/results/latest.md": "written by `python -m benchmarks.run`",
    "benchmarks/results/latest.json": "written by `python -m benchmarks.run`",
    "benchmarks/results/latest.*": "written by `python -m benchmarks.run`",
    "benchmarks/results/latest.{md,json}": "written by `python -m benchmarks.run`",
}


# -- blocks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None = None  # the reason given by a docs-test directive

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)")
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with the docs-test directive just before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, lang = m.group(1), m.group(2), m.group(3).lower()
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(ticks):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path.relative_to(ROOT)}:{start + 1}: a code fence is never closed")
        i += 1
        out.append(Block(path, start + 1, lang, "\n".join(body) + "\n", _directive(path, lines, start)))
    return out


def _directive(path: Path, lines: list[str], fence: int) -> str | None:
    """The reason of a ``<!-- docs-test: skip (REASON) -->`` on the non-blank line before line ``fence``."""
    j = fence - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    m = _DIRECTIVE.search(lines[j]) if j >= 0 else None
    if m is None:
        return None
    skip = re.fullmatch(r"skip\s*\((.+)\)", m.group(1))
    if skip is None or not skip.group(1).strip():
        raise AssertionError(f"{path.relative_to(ROOT)}:{j + 1}: unknown docs-test directive {m.group(0)!r}; "
                             f"expected <!-- docs-test: skip (REASON) -->")
    return skip.group(1).strip()


ALL_BLOCKS = {p: fenced_blocks(p) for p in DOC_FILES}
RUNNABLE = [b for blocks in ALL_BLOCKS.values() for b in blocks if b.lang in RUN_LANGS]


# -- a file's shared state ------------------------------------------------------------------------
@dataclass
class FileState:
    home: Path
    namespace: dict = field(default_factory=dict)
    done: set = field(default_factory=set)  # lines of the blocks already run
    failed: str | None = None  # where an earlier block failed


_STATES: dict[Path, FileState] = {}


def _state(path: Path, factory) -> FileState:
    if path not in _STATES:
        home = factory.mktemp(re.sub(r"\W", "_", path.stem))
        _stand_ins(home)
        _STATES[path] = FileState(home, {"__name__": "__docs__"})
    return _STATES[path]


def _stand_ins(home: Path) -> None:
    """Tiny versions of the data sets the docs name by path, with learnable patterns."""
    rng = np.random.default_rng(0)
    mnist = home / "data" / "mnist"
    mnist.mkdir(parents=True)
    for split, n in (("train", 100), ("t10k", 20)):
        y = np.arange(n, dtype=np.uint8) % 10
        x = np.zeros((n, 28, 28), np.uint8)
        for i, c in enumerate(y):  # a bright square whose place encodes the class
            r, q = divmod(int(c), 4)
            x[i, 2 + 8 * r : 8 + 8 * r, 2 + 6 * q : 6 + 6 * q] = 255
        (mnist / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + x.tobytes())
        (mnist / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + y.tobytes())
    cifar = home / "data" / "cifar-10-batches-bin"
    cifar.mkdir(parents=True)
    for name, n in (("data_batch_1.bin", 100), ("test_batch.bin", 20)):
        y = (np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 256, (n, 3 * 32 * 32)).astype(np.uint8)
        (cifar / name).write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())
    from PIL import Image

    for split, n in (("train", 8), ("test", 3)):
        for c, name in enumerate(("cat", "dog")):
            folder = home / "photos" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = (40 + 4 * i, 48) if c == 0 else (48, 36 + 4 * i)
                a = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
                a[:, :, c] += 180  # cats are red, dogs are green
                Image.fromarray(a).save(folder / f"{name}{i}.png")


def _run_block(block: Block, state: FileState) -> None:
    if block.lang == "python":
        _run_python(block, state.namespace)
    else:
        _run_shell(block, state.home)


# -- python ---------------------------------------------------------------------------------------
def _run_python(block: Block, namespace: dict) -> None:
    if any(line.lstrip().startswith(">>>") for line in block.text.splitlines()):
        test = doctest.DocTestParser().get_doctest(block.text, namespace, block.where, str(block.path), block.line)
        out = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=out.write, clear_globs=False)
        namespace.update(test.globs)  # DocTest works on a copy; later blocks see what this one defined
        assert runner.failures == 0, f"{block.where}: doctest failed\n{out.getvalue()}"
        return
    # padded so that a traceback's line numbers are the Markdown file's
    with redirect_stdout(io.StringIO()):
        try:
            exec(compile("\n" * block.line + block.text, str(block.path), "exec"), namespace)
        except Exception:
            pytest.fail(f"{block.where}: the python block raised\n{traceback.format_exc()}", pytrace=False)


# -- shell ----------------------------------------------------------------------------------------
def _shell_lines(block: Block) -> list[tuple[int, str]]:
    """``(line number, command line)`` with continuations joined; console output lines dropped."""
    out, pending, first = [], "", 0
    for k, raw in enumerate(block.text.splitlines(), start=block.line + 1):
        if block.lang == "console" and not pending:
            if not raw.lstrip().startswith("$"):
                continue
            raw = raw.lstrip()[1:]
        if not pending:
            first = k
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append((first, line))
    return out


def _split_comment(line: str) -> tuple[str, str]:
    """``(command, comment)``: the comment starts at the first ``#`` outside quotes after a space."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line, ""


def _skip_reason(words: list[str]) -> str | None:
    for prefix, reason in SKIPPED_COMMANDS:
        if tuple(words[: len(prefix)]) == prefix or (
                prefix[0] == "python" and words[:1] == ["python3"] and tuple(words[1 : len(prefix)]) == prefix[1:]):
            return reason
    return None


def _run_shell(block: Block, home: Path) -> None:
    env = dict(os.environ, HOME=str(home), MPLBACKEND="Agg", COLUMNS="100")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    for lineno, line in _shell_lines(block):
        command, comment = _split_comment(line)
        m = re.match(r"exits (\d+)\b", comment)
        expected = int(m.group(1)) if m else 0
        words = shlex.split(command)
        if any(w in {"|", "||", ";", ">", ">>", "<", "&"} for w in words):
            pytest.fail(f"{block.path.relative_to(ROOT)}:{lineno}: shell syntax other than && is not run by this test: "
                        f"{line!r}", pytrace=False)
        segments, cur = [], []
        for w in words + ["&&"]:
            if w == "&&":
                segments.append(cur)
                cur = []
            else:
                cur.append(w)
        for seg in segments:
            seg_env = dict(env)
            while seg and re.fullmatch(r"[A-Za-z_]\w*=.*", seg[0]):
                k, v = seg.pop(0).split("=", 1)
                seg_env[k] = v
            if not seg:
                continue
            if seg[0] != "convnet":
                if _skip_reason(seg) is None:
                    pytest.fail(f"{block.path.relative_to(ROOT)}:{lineno}: the docs test does not know how to run "
                                f"{' '.join(seg)!r}; run it as `convnet ...` or add a rule to SKIPPED_COMMANDS",
                                pytrace=False)
                continue
            args = [os.path.expanduser(w) if w.startswith("~") else w for w in seg[1:]]
            proc = subprocess.run([sys.executable, "-m", "convnet", *args], cwd=home, env=seg_env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
            if proc.returncode != expected:
                pytest.fail(f"{block.path.relative_to(ROOT)}:{lineno}: `{' '.join(seg)}` exited {proc.returncode}, "
                            f"expected {expected}\n--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n"
                            f"{proc.stderr[-3000:]}", pytrace=False)


# -- the tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_code_block_runs(block, tmp_path_factory, monkeypatch):
    state = _state(block.path, tmp_path_factory)
    monkeypatch.chdir(state.home)
    monkeypatch.setenv("HOME", str(state.home))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    earlier = [b for b in ALL_BLOCKS[block.path] if b.lang in RUN_LANGS and b.line < block.line and b.skip is None]
    for b in earlier:  # blocks share state: a block selected alone needs the ones before it
        if state.failed:
            pytest.skip(f"an earlier block of this file failed ({state.failed})")
        if b.line not in state.done:
            _run_marked(b, state)
    if state.failed:
        pytest.skip(f"an earlier block of this file failed ({state.failed})")
    if block.skip is not None:
        pytest.skip(f"docs-test: skip ({block.skip})")
    _run_marked(block, state)


def _run_marked(block: Block, state: FileState) -> None:
    try:
        _run_block(block, state)
    except BaseException:
        state.failed = block.where
        raise
    finally:
        state.done.add(block.line)


# -- paths the docs mention -----------------------------------------------------------------------
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\s]+)`")
_TOP = ("docs/", "src/", "tests/", "benchmarks/", "../", "./")
#: where a short path such as `zoo/blocks.py` or `kernels/parallel.py` may live
_BASES = (ROOT, SRC, SRC / "convnet", SRC / "convnet" / "ops")


def mentioned_paths(path: Path) -> list[tuple[int, str]]:
    """``(line, path)`` of Markdown links and backticked repository paths outside code blocks."""
    out, in_code = [], False
    for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in _LINK.findall(line):
            if not re.match(r"[a-z]+:|#", target):  # not a URL or an anchor
                out.append((k, target.split("#")[0]))
        for text in _CODE.findall(line):
            text = text.split("::")[0]
            if "/" not in text or text.startswith("/") or re.search(r"[<>…|()=·]", text):
                continue
            if text.startswith(_TOP) or text.endswith((".py", ".md", ".toml")):
                out.append((k, text))
    return out


def _exists(doc: Path, target: str) -> bool:
    if target in GENERATED_PATHS:
        return True
    bases = (doc.parent,) if target.startswith(("../", "./")) else (doc.parent, *_BASES)
    for base in bases:
        p = (base / target).resolve()
        inside = p == ROOT or ROOT in p.parents
        if inside and (glob(str(p)) if "*" in target else p.exists()):
            return True
    return False


@pytest.mark.parametrize("doc", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_docs_mention_only_files_in_the_repository(doc):
    missing = [f"{doc.relative_to(ROOT)}:{k}: {t}" for k, t in mentioned_paths(doc) if not _exists(doc, t)]
    assert not missing, "paths that are not files of the repository:\n" + "\n".join(missing)


def test_the_path_check_sees_paths():
    """The path finder is not vacuous: it finds links and backticked paths, and refuses outside ones."""
    found = dict((t, k) for k, t in mentioned_paths(ROOT / "README.md"))
    assert "docs/training.md" in found
    assert not _exists(ROOT / "docs" / "architecture.md", "../shared/guides/architecture.md")
    assert not _exists(ROOT / "README.md", "docs/no-such-file.md")


def test_shell_lines_are_parsed_as_documented():
    block = Block(ROOT / "README.md", 1, "bash", 'convnet summary "A -> B" \\\n  --batch 2  # exits 5: over\n# note\n')
    [(line, text)] = _shell_lines(block)
    assert line == 2 and shlex.split(_split_comment(text)[0]) == ["convnet", "summary", "A -> B", "--batch", "2"]
    assert _split_comment(text)[1] == "exits 5: over"
    assert _skip_reason(["pip", "install", "-e", "."]) and _skip_reason(["convnet", "train"]) is None


def test_doctest_blocks_compare_their_output():
    namespace = {}
    _run_python(Block(ROOT / "README.md", 1, "python", ">>> x = 2\n>>> x * 21\n42\n"), namespace)
    assert namespace["x"] == 2
    with pytest.raises(AssertionError, match="doctest failed"):
        _run_python(Block(ROOT / "README.md", 1, "python", ">>> 1 + 1\n3\n"), {})


def test_skip_directives_need_a_reason():
    doc = ROOT / "docs" / "probe.md"  # only named in messages
    text = "<!-- docs-test: skip (needs the CIFAR-10 download) -->\n```bash\nconvnet train\n```\n"
    lines = text.splitlines()
    assert _directive(doc, lines, 1) == "needs the CIFAR-10 download"
    with pytest.raises(AssertionError, match="unknown docs-test directive"):
        _directive(doc, ["<!-- docs-test: skip -->", "```bash"], 1)
