"""The architecture pattern language of the notes, with hyperparameters.

``parse(text) -> Net`` reads the notation of the CS231n notes and of the VGG
paper's configuration table, e.g.::

    INPUT[32x32x3] -> [[CONV3-64 -> RELU]*2 -> POOL2]*3 -> [FC-512 -> RELU]*2 -> FC-10

Grammar (keywords are case-insensitive; spaces are free between tokens)::

    pattern   := [input SEP] sequence
    input     := "INPUT" [":"] "[" dims "]"          dims: HxWxC (height first) or D
    sequence  := term (SEP term)*
    SEP       := "->" | "→" | "," | newline          (any run of them)
    term      := layer ["*" N] | "[" sequence "]" ["*" N]       N >= 0 repeats

    layer     := conv | deconv | pool | fc | "RELU" | "RELU6" | lrelu | "SIGMOID" | "IDENTITY" | "LRN"
               | "BN" | "AFFINE" | dropout | "FLATTEN" | "GAP" | "GMP" | glp | shuffle | prob | softmax
    conv      := "CONV" [F] "-" K options            F: 3 or 3x5 (kh x kw), default 3
    deconv    := ("DECONV" | "CONVT") [F] "-" K options   a transposed convolution, padding default 0
    pool      := ("POOL" | "MAXPOOL" | "AVGPOOL" | "L2POOL") [F] options     default F = 2
               | "LPPOOL" [F] ["-" p] options        Lp pooling (p default 2)
    glp       := "GLPPOOL" ["-" p]                    global Lp pooling
    shuffle   := "SHUFFLE-" groups                    channel shuffle (ShuffleNet)
    prob      := "SOFTMAX-" axes | "LOGSOFTMAX" ["-" axes] | "PROB"   axes: C, HW, ... (a layer)
    fc        := "FC-" units ["/NOBIAS"]
    lrelu     := ("LRELU" | "LEAKYRELU") ["-" slope]  default slope 0.01
    dropout   := "DROPOUT" ["-" rate]                 default rate 0.5
    softmax   := "SOFTMAX" | "SOFT-MAX"               only as the last layer
    options   := ("/" option)*
    option    := "S" n | "P" n | "G" n | "D" n | "SAME" | "NOBIAS" | "FLOOR" | "CEIL"
                 n: an integer or HxW (e.g. S2, P1, P1x2)

Meaning and defaults (the notes' rules and the VGG paper):

* ``CONVF-K``: K filters of F×F, stride ``/S`` (default 1), zero padding ``/P``
  (default ``(F-1)//2`` on each side: "same" for odd F, as VGG's ``conv3-64``);
  ``/SAME`` asks for TensorFlow-style "same" padding, ``/G`` groups (AlexNet's
  split conv2/4/5 is ``CONV5-256/G2``), ``/D`` dilation, ``/NOBIAS`` no bias.
  ``conv1-256`` (the VGG C configuration) is a 1×1 convolution.
* ``POOLF`` / ``MAXPOOL F``: max pooling, stride ``/S`` (default F), padding
  ``/P`` (default 0); bare ``POOL`` and VGG's ``maxpool`` are 2×2/2;
  ``AVGPOOL`` and ``L2POOL`` likewise.  ``GAP`` is global average pooling.
* ``/FLOOR`` and ``/CEIL`` choose what to do when a CONV/POOL geometry does not
  divide evenly (``fit="crop"`` / ``fit="pad"`` in :mod:`convnet.ops.geometry`);
  without them such a geometry is an error, whose advice names the layer's text
  with ``/FLOOR`` and ``/CEIL`` (each layer keeps its text as ``layer.pattern_text``).
* Each option is given at most once per layer; ``/FLOOR`` with ``/CEIL`` and ``/P``
  with ``/SAME`` contradict each other, and ``/SAME`` (which always fits) takes no
  rounding.  A pattern expands to at most :data:`MAX_LAYERS` layers, checked before a
  repetition is expanded, and nests ``[...]`` at most :data:`MAX_DEPTH` deep.
* ``FC-N``: a fully connected layer of N units; it flattens an image volume by
  itself (Caffe InnerProduct), so ``POOL2 -> FC-10`` needs no FLATTEN.
* ``LRN``: local response normalization with AlexNet's constants (n=5,
  α=1e-4, β=0.75, k=2); ``NORM`` is accepted as a synonym.
* ``SOFTMAX``/``soft-max`` is the loss, not a layer: the net outputs logits
  and remembers ``net.head = "softmax"`` for the trainer.

A mistake raises :class:`~convnet.errors.PatternSyntaxError` with the text, a
caret under the offending column and what was expected.  The exception also
carries ``.text``, ``.line``, ``.column`` (1-based) and ``.expected``.

Layers get names by kind and count: ``conv1, relu1, pool1, fc1, norm1, bn1,
drop1``.  :func:`to_pattern` writes a sequential net back as text that parses
to the same architecture.

The layers spell themselves: this module owns the grammar (tokens, sequences,
repetition, the input, the options' syntax), and finds the class of each layer
token in the registry :data:`convnet.layers.LAYERS` by its words
(``cls.pattern_words``); the class turns the token's parts into its constructor's
arguments (``cls.pattern_args``) and writes itself back (``layer.to_pattern()``) —
see :mod:`convnet.layers.spelling`.  A new layer class with a word is parsed and
written without a change here.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .errors import ConfigError, PatternSyntaxError
from .layers import LAYERS
from .layers.spelling import OPTIONS, Spelling
from .net import Net

__all__ = ["LayerSpec", "PatternSpec", "parse", "parse_spec", "to_pattern"]


# ---------------------------------------------------------------------------------------------
# tokens
# ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<arrow>->|→)
  | (?P<comma>,)
  | (?P<lbrack>\[)
  | (?P<rbrack>\])
  | (?P<star>\*)
  | (?P<colon>:)
  | (?P<qmark>\?)
  | (?P<word>[A-Za-z0-9_.×]+(?:-(?!>)[A-Za-z0-9_.×]*)*(?:/[A-Za-z0-9_.×=]*)*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int  # 0-based offset in the whole text


def _tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}", "a layer, '->', '[', ']' or '*'")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _error(text: str, pos: int, message: str, expected: str) -> PatternSyntaxError:
    """A PatternSyntaxError showing the line of ``text`` with a caret under ``pos``."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end == -1 else line_end
    line_no = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    where = f"column {column}" if "\n" not in text.strip("\n") else f"line {line_no}, column {column}"
    shown = text[line_start:line_end].replace("\t", " ")
    err = PatternSyntaxError(
        f"Invalid pattern at {where}: {message}; expected {expected}.\n    {shown}\n    {' ' * (column - 1)}^"
    )
    err.text, err.line, err.column, err.expected = text, line_no, column, expected
    return err


# ---------------------------------------------------------------------------------------------
# the syntax tree
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSpec:
    """One layer of a parsed pattern: its kind (the layer class's, ``CONV``, ``MAXPOOL``...;
    ``SOFTMAX`` for the head), its constructor's arguments and where it was written."""

    kind: str
    args: dict = field(default_factory=dict, hash=False, compare=True)
    pos: int = field(default=0, compare=False)
    text: str = field(default="", compare=False)


@dataclass
class PatternSpec:
    """A parsed pattern: the input shape (or None), the layers in order, and the head (``"softmax"``)."""

    input_shape: tuple[int, ...] | None
    layers: list[LayerSpec]
    head: str | None = None


_LAYER_EXPECTED = "a layer such as CONV3-64, POOL2, FC-10, RELU, LRN, BN, DROPOUT, GAP or SOFTMAX"
#: what may follow a layer's word: a size F or FxF, then "-" and an argument
_TAIL = re.compile(r"(\d+(?:[X×]\d+)?)?(?:-(.*))?$")
_OPTION = re.compile(r"(S|P|G|D)(\d+)(?:[X×](\d+))?$|(SAME|NOBIAS|FLOOR|CEIL)$")
#: the classes written with a word, longest word first (so that a word is never read as a shorter
#: one plus a tail), and the class of each kind
_SPELLED = sorted(((w, cls) for cls in LAYERS for w in cls.pattern_words), key=lambda wc: -len(wc[0]))
_CLASS_OF_KIND = {cls.kind: cls for cls in LAYERS}
#: candidates for "did you mean": each layer's words
_KEYWORDS = ["INPUT", "CONV3-64", "POOL2", "FC-10", *dict.fromkeys(w for w, _ in _SPELLED), "SOFTMAX"]


#: the most layers a pattern may expand to; checked before a repetition is expanded, so
#: ``[CONV3-8]*99999999`` is refused at once instead of building a list of 10⁸ layers
MAX_LAYERS = 10_000
#: the deepest nesting of ``[...]`` (the parser recurses once per level)
MAX_DEPTH = 100

#: what each option sets: two options setting the same thing repeat or contradict each other
_SETS = {"S": "stride", "P": "padding", "SAME": "padding", "G": "groups", "D": "dilation", "NOBIAS": "bias",
         "FLOOR": "fit", "CEIL": "fit"}


def _pair(text: str) -> tuple[int, int]:
    parts = re.split(r"[X×]", text)
    return (int(parts[0]), int(parts[-1]))


def _allowed(options) -> str:
    """``("S", "P", "FLOOR", "CEIL")`` -> ``"/S<stride>, /P<padding>, /FLOOR or /CEIL"``."""
    names = [OPTIONS[o] for o in options]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- token helpers ---------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def error(self, tok: Token | int, message: str, expected: str) -> PatternSyntaxError:
        pos = tok if isinstance(tok, int) else tok.pos
        return _error(self.text, pos, message, expected)

    def skip_newlines(self) -> None:
        while self.tok.kind == "nl":
            self.i += 1

    def at_separator(self) -> bool:
        return self.tok.kind in ("arrow", "comma", "nl")

    def skip_separators(self) -> bool:
        """Consume one separator: newlines around at most one '->' or ','.  True if one was there."""
        seen, arrow = False, None
        while self.at_separator():
            if self.tok.kind != "nl":
                if arrow is not None:
                    raise self.error(self.tok, f"'{self.tok.text}' follows '{arrow.text}' with no layer between",
                                     _LAYER_EXPECTED)
                arrow = self.tok
            self.i += 1
            seen = True
        return seen

    # -- grammar -------------------------------------------------------------------------
    def pattern(self) -> PatternSpec:
        self.skip_newlines()
        input_shape = None
        if self.tok.kind == "word" and self.tok.text.upper() == "INPUT":
            input_shape = self.input()
            if self.tok.kind == "eof":
                return PatternSpec(input_shape, [])
            if not self.skip_separators():
                raise self.error(self.tok, f"unexpected {self._describe(self.tok)} after the input", "'->'")
        if self.tok.kind == "eof":
            raise self.error(self.tok, "the pattern is empty", _LAYER_EXPECTED)
        layers = self.sequence(top=True)
        self.skip_separators()
        if self.tok.kind != "eof":
            raise self.error(self.tok, f"unexpected {self._describe(self.tok)}", "'->' between layers")
        head = None
        for j, spec in enumerate(layers):
            if spec.kind == "SOFTMAX":
                if j != len(layers) - 1:
                    raise self.error(spec.pos, "soft-max must be the last layer (it is the loss on the logits)",
                                     "SOFTMAX only at the end")
                head = "softmax"
        if head:
            layers = layers[:-1]
        return PatternSpec(input_shape, layers, head)

    def input(self) -> tuple[int, ...]:
        self.take()
        if self.tok.kind == "colon":
            self.take()
        if self.tok.kind != "lbrack":
            raise self.error(self.tok, "INPUT needs its shape", "a shape in brackets, e.g. INPUT[32x32x3]")
        self.take()
        tok = self.tok
        m = re.fullmatch(r"(\d+)[xX×](\d+)[xX×](\d+)|(\d+)", tok.text) if tok.kind == "word" else None
        if m is None:
            raise self.error(tok, f"{self._describe(tok)} is not a shape", "HxWxC (height first), e.g. 224x224x3, or D")
        self.take()
        dims = tuple(int(g) for g in m.groups() if g is not None)
        if any(d < 1 for d in dims):
            raise self.error(tok, f"the input shape {tok.text!r} has a zero size", "positive sizes")
        if self.tok.kind != "rbrack":
            raise self.error(self.tok, f"unexpected {self._describe(self.tok)} in the input shape", "']'")
        self.take()
        return dims

    def sequence(self, *, top: bool = False) -> list[LayerSpec]:
        layers = self.term()
        while True:
            save = self.i
            if not self.skip_separators():
                break
            if self.tok.kind in ("eof", "rbrack"):
                if self.tokens[save].kind in ("arrow", "comma"):
                    raise self.error(self.tok, f"'{self.tokens[save].text}' is not followed by a layer", _LAYER_EXPECTED)
                break
            start = self.tok
            more = self.term()
            if len(layers) + len(more) > MAX_LAYERS:
                raise self.error(start, f"the layers up to here expand to {len(layers) + len(more):,} layers, more "
                                        f"than the limit of {MAX_LAYERS:,}", f"a net of at most {MAX_LAYERS:,} layers")
            layers.extend(more)
        return layers

    def term(self) -> list[LayerSpec]:
        tok = self.tok
        if tok.kind == "lbrack":
            if self.depth == MAX_DEPTH:
                raise self.error(tok, f"the groups '[...]' nest more than {MAX_DEPTH} deep",
                                 f"at most {MAX_DEPTH} levels of '['")
            self.take()
            self.skip_newlines()
            if self.tok.kind == "rbrack":
                raise self.error(self.tok, "the group '[ ]' is empty", _LAYER_EXPECTED)
            self.depth += 1
            body = self.sequence()
            self.depth -= 1
            self.skip_newlines()
            if self.tok.kind != "rbrack":
                raise self.error(self.tok, f"unexpected {self._describe(self.tok)} inside '[...]'", "'->' or ']'")
            self.take()
        elif tok.kind == "word":
            self.take()
            body = [self.layer(tok)]
        else:
            raise self.error(tok, f"unexpected {self._describe(tok)}", _LAYER_EXPECTED)
        if self.tok.kind == "qmark":
            raise self.error(self.tok, "'?' marks an optional layer in the notes' generic pattern",
                             "a concrete net: write the layer, or leave it out")
        if self.tok.kind == "star":
            self.take()
            count = self.tok
            if count.kind != "word" or not count.text.isdigit():
                raise self.error(count, f"'*' is followed by {self._describe(count)}", "a repeat count, e.g. *3")
            self.take()
            if any(s.kind == "SOFTMAX" for s in body):
                raise self.error(tok, "soft-max cannot be repeated", "SOFTMAX only once, at the end")
            # the size is checked before anything is expanded (a count of thousands of digits is
            # not even converted: it can only be too many)
            digits = count.text.lstrip("0")
            total = len(body) * int(digits or 0) if len(digits) <= 12 else None
            if body and (total is None or total > MAX_LAYERS):
                shown = f"{total:,}" if total is not None else f"a number of {len(digits)} digits"
                raise self.error(count, f"'*{count.text if len(count.text) <= 20 else count.text[:17] + '...'}' "
                                        f"would expand {len(body):,} layer(s) to {shown}, more than the limit of "
                                        f"{MAX_LAYERS:,} layers", f"a net of at most {MAX_LAYERS:,} layers")
            return body * (total // len(body)) if body else []
        return body

    def layer(self, tok: Token) -> LayerSpec:
        head, *opts = tok.text.split("/")
        word = head.upper()
        opt_pos = tok.pos + len(head) + 1
        options = []
        for o in opts:
            options.append((o.upper(), opt_pos))
            opt_pos += len(o) + 1
        if word == "INPUT":
            raise self.error(tok, "INPUT can only come first", _LAYER_EXPECTED)
        if word in ("SOFTMAX", "SOFT-MAX"):
            self._no_options(tok, word, options)
            return LayerSpec("SOFTMAX", {}, tok.pos, tok.text)
        for keyword, cls in _SPELLED:
            m = _TAIL.match(word, len(keyword)) if word.startswith(keyword) else None
            if m is None or (m.group(1) and not cls.pattern_size) or (m.group(2) is not None and not cls.pattern_arg):
                continue
            spelling = Spelling(tok.text, head, keyword, _pair(m.group(1)) if m.group(1) else None, m.group(2),
                                self.options(tok, keyword, cls.pattern_options, options),
                                fail=self._failure(tok, head, keyword))
            return LayerSpec(cls.kind, cls.pattern_args(spelling), tok.pos, tok.text)
        close = difflib.get_close_matches(word, _KEYWORDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise self.error(tok, f"unknown layer {tok.text!r}{hint}", _LAYER_EXPECTED)

    def _failure(self, tok: Token, head: str, keyword: str):
        """``fail(message, expected, at_arg=False)`` for a layer class: the error at the token, or
        at its argument (where it should be when there is none)."""
        def fail(message: str, expected: str, *, at_arg: bool = False) -> PatternSyntaxError:
            dash = head.find("-", len(keyword))
            pos = tok.pos + (len(head) if dash < 0 else dash + 1) if at_arg else tok.pos
            return self.error(pos, message, expected)

        return fail

    def options(self, tok: Token, keyword: str, allowed: tuple, options) -> dict:
        """The ``/OPTION`` values of one layer token, checked: each one the layer takes, given once,
        none contradicting another; S, G and D positive."""
        if not allowed:
            self._no_options(tok, keyword, options)
            return {}
        values: dict = {}
        seen: dict = {}
        for o, pos in options:
            om = _OPTION.match(o)
            key = om and (om.group(1) or om.group(4))
            if key not in allowed:
                raise self.error(pos, f"unknown option '/{o}' for {keyword}", _allowed(allowed))
            self._once(seen, key, o, pos)
            if om.group(1):
                val = (int(om.group(2)), int(om.group(3) or om.group(2)))
                if key != "P" and min(val) < 1:
                    raise self.error(pos, f"'/{o}' must be positive", _allowed(allowed))
                values[key] = val
            else:
                values[key] = True
        return values

    def _once(self, seen: dict, key: str, option: str, pos: int) -> None:
        """Refuse an option that sets what an earlier one of the same layer set (``/S2/S1``,
        ``/FLOOR/CEIL``, ``/P1/SAME``), or a rounding with ``/SAME`` (which always fits).
        ``seen`` maps what was set ("stride", "fit"...) to (option, key, as written)."""
        what = _SETS[key]
        written = self.text[pos : pos + len(option)]  # as the user wrote it (options are matched upper-cased)
        if what in seen:
            first, first_key, first_written = seen[what]
            if option == first:
                raise self.error(pos, f"'/{written}' is given twice", "each option at most once per layer")
            if first_key == key:
                raise self.error(pos, f"'/{written}' gives the {what} a second time (after '/{first_written}')",
                                 "each option at most once per layer")
            raise self.error(pos, f"'/{written}' contradicts '/{first_written}' before it",
                             "/FLOOR or /CEIL, not both" if what == "fit" else "/P<padding> or /SAME, not both")
        same = seen.get("padding") if what == "fit" else None
        rounding = seen.get("fit") if key == "SAME" else None
        if rounding is not None or (same is not None and same[1] == "SAME"):
            raise self.error(pos, f"'/{rounding[2] if rounding else written}' has no effect with '/SAME', whose "
                                  "padding always fits", "/SAME alone, or /P<padding> with /FLOOR or /CEIL")
        seen[what] = (option, key, written)

    def _no_options(self, tok: Token, word: str, options) -> None:
        if options:
            raise self.error(options[0][1] - 1, f"{word} takes no options", f"{word} alone")

    @staticmethod
    def _describe(tok: Token) -> str:
        return "end of the pattern" if tok.kind == "eof" else "a line break" if tok.kind == "nl" else repr(tok.text)


def parse_spec(text: str) -> PatternSpec:
    """Parse ``text`` into a :class:`PatternSpec` (no layers are created)."""
    if not isinstance(text, str):
        raise ConfigError(f"Argument `text` must be a pattern string; received {type(text).__name__}.")
    return _Parser(text).pattern()


# ---------------------------------------------------------------------------------------------
# building and writing back
# ---------------------------------------------------------------------------------------------
def parse(text: str, *, name: str | None = None) -> Net:
    """Parse a pattern into an (unbuilt) :class:`~convnet.net.Net`; see the module docstring."""
    spec = parse_spec(text)
    net = Net(name=name, input_shape=spec.input_shape)
    for s in spec.layers:
        layer = _CLASS_OF_KIND[s.kind](**s.args)
        # how the layer was written: Net.shapes words a geometry error's advice in this
        # language (CONV3-4/S2/FLOOR, not fit='crop')
        layer.pattern_text = s.text
        net.add(layer)  # named by kind and count: conv1, relu1, pool1...
    net.head = spec.head
    if spec.input_shape is not None:
        net.shapes()  # geometry errors surface now, naming the layer
    return net


def _compress(items: list[str]) -> list[str]:
    """Fold runs of a repeated block into ``[A -> B]*n`` (greedy, one level)."""
    out, i = [], 0
    while i < len(items):
        best = (1, 1)  # (block length, repeats)
        for size in range(1, 7):
            block = items[i : i + size]
            if len(block) < size:
                break
            reps = 1
            while items[i + reps * size : i + (reps + 1) * size] == block:
                reps += 1
            if reps > 1 and size * reps > best[0] * best[1]:
                best = (size, reps)
        size, reps = best
        if reps > 1:
            out.append(f"[{' -> '.join(items[i : i + size])}]*{reps}")
        else:
            out.append(items[i])
        i += size * reps
    return out


def to_pattern(net: Net, *, compress: bool = True) -> str:
    """Write a sequential net as pattern text; ``parse(to_pattern(net))`` rebuilds the same architecture."""
    if not net.is_sequential:
        raise ConfigError(
            f"to_pattern: net {net.name or ''} has branches (residual or Inception); only chains can be written as patterns."
        )
    items = [layer.to_pattern() for layer in net.layers]
    if compress:
        items = _compress(items)
    if net.input_shape is not None:
        items.insert(0, "INPUT[" + "x".join(str(d) for d in net.input_shape) + "]")
    if net.head == "softmax":
        items.append("SOFTMAX")
    return " -> ".join(items)
