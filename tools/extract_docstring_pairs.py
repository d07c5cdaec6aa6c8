"""Deterministic extractor of (document, summary) pairs from installed API docstrings.

summary  = the docstring's first paragraph (the author's one-line summary), one sentence,
           4-40 words
document = the rest of the docstring with sections, code, doctests and directives removed
           (>= 30 words)

Usage:  python tools/extract_docstring_pairs.py OUT_DIR
Writes  OUT_DIR/pairs.jsonl(.gz) (sorted by source, id) and OUT_DIR/meta.json (versions, counts).
Only reads installed packages; writes nothing outside OUT_DIR (Keras / Matplotlib homes are
redirected).
"""
import collections
import gzip
import hashlib
import importlib
import importlib.metadata as md
import inspect
import json
import os
import pkgutil
import platform
import re
import sys
import types
import warnings

OUT = "docstring_pairs"


def setup(out):
    """Output folder; keep TF quiet and Keras / Matplotlib from writing to ~ (call before
    collect)."""
    global OUT
    OUT = out
    os.makedirs(OUT, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_HOME", os.path.join(OUT, ".keras"))
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(OUT, ".mpl"))
    os.environ.setdefault("MPLBACKEND", "Agg")


warnings.simplefilter("ignore")

STDLIB = set(sys.stdlib_module_names)
# Not walked: side effects on import, GUI/test tooling, platform-specific, or removed from
# Python 3.12/3.13 (PEP 594 "dead batteries", distutils, imp, asyncore...), so the stdlib
# part stays the same on the Python 3.12 that Colab runs.
STDLIB_SKIP = {
    "antigravity", "this", "idlelib", "test", "turtledemo", "pydoc_data", "lib2to3", "ensurepip",
    "distutils", "imp", "asynchat", "asyncore", "smtpd", "aifc", "audioop", "cgi", "cgitb",
    "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes",
    "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib", "msvcrt", "winreg", "winsound", "nt",
    "encodings", "tkinter", "turtle",
}
SKIP_COMPONENTS = {"python", "src", "tests", "testing", "f2py", "core", "distutils", "conftest",
                   "setup", "externals", "tools", "__main__"}
API_COMPONENTS = {"_api", "_tf_keras"}  # TF/Keras keep their generated public API under these

# ----------------------------------------------------------------------------------------------
# walking


def _public_module(name, owners):
    parts = name.split(".")
    if parts[0] not in owners:
        return False
    for p in parts[1:]:
        if p in API_COMPONENTS:
            continue
        if p.startswith("_") or p in SKIP_COMPONENTS:
            return False
    return True


def _origin(obj, default):
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        oc = getattr(obj, "__objclass__", None)
        mod = getattr(oc, "__module__", None)
    if not isinstance(mod, str):
        s = getattr(obj, "__self__", None)
        mod = s.__name__ if isinstance(s, types.ModuleType) else None
    return mod.split(".")[0] if isinstance(mod, str) else default


def _own_doc(obj):
    """The object's own docstring (no inheritance from bases or from its type), cleaned."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
    else:
        doc = getattr(obj, "__doc__", None)
        if doc is not None and doc == getattr(type(obj), "__doc__", None):
            doc = None
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)  # == inspect.getdoc(obj) without the fallback to bases


def _is_routine(obj):
    if inspect.isroutine(obj):
        return True
    # numpy ufuncs and similar callables carrying their own docstring
    return callable(obj) and not inspect.isclass(obj) and not isinstance(obj, types.ModuleType) \
        and getattr(obj, "__doc__", None) not in (None, getattr(type(obj), "__doc__", None))


class Walker:
    def __init__(self):
        self.seen = set()        # id() of every object already collected or walked
        self.keep = []           # objects alive while walking (ids stay unique)
        self.items = []          # (source, kind, path, module, doc)
        self.import_errors = []

    def add(self, source, kind, path, obj, module):
        doc = _own_doc(obj)
        if doc:
            self.items.append((source, kind, path, module, doc))

    def walk(self, roots, owners, recurse_modules=True):
        """BFS over public attributes. roots: [(path, module)]; owners: top-level packages whose
        objects are collected here (others are left to their own walk)."""
        queue = collections.deque(roots)
        while queue:
            path, obj = queue.popleft()
            if isinstance(obj, types.ModuleType):
                if id(obj) in self.seen:
                    continue
                self.seen.add(id(obj))
                self.keep.append(obj)
                try:
                    names = sorted(dir(obj))
                except Exception:
                    continue
                for n in names:
                    if n.startswith("_"):
                        continue
                    try:
                        v = getattr(obj, n)
                    except Exception:
                        continue
                    if isinstance(v, types.ModuleType):
                        try:
                            mname = v.__name__
                        except Exception:  # TF lazy loaders for legacy Keras 2 / estimator
                            continue
                        if recurse_modules and _public_module(mname, owners):
                            queue.append((f"{path}.{n}", v))
                        continue
                    if id(v) in self.seen:
                        continue
                    src = _origin(v, None)
                    if src not in owners:
                        continue
                    if inspect.isclass(v):
                        queue.append((f"{path}.{n}", v))
                    elif _is_routine(v):
                        self.seen.add(id(v))
                        self.keep.append(v)
                        self.add(src, "function", f"{path}.{n}", v, getattr(v, "__module__", None))
            elif inspect.isclass(obj):
                if id(obj) in self.seen:
                    continue
                self.seen.add(id(obj))
                self.keep.append(obj)
                src = _origin(obj, None)
                self.add(src, "class", path, obj, obj.__module__)
                for n in sorted(obj.__dict__):
                    if n.startswith("_"):
                        continue
                    v = obj.__dict__[n]
                    if isinstance(v, (staticmethod, classmethod)):
                        v = v.__func__
                    if inspect.isclass(v):
                        if _origin(v, None) in owners:
                            queue.append((f"{path}.{n}", v))
                        continue
                    if not inspect.isroutine(v) or id(v) in self.seen:
                        continue
                    self.seen.add(id(v))
                    self.keep.append(v)
                    self.add(src, "method", f"{path}.{n}", v, obj.__module__)


def stdlib_modules():
    names = []
    for top in sorted(STDLIB):
        if top.startswith("_") or top in STDLIB_SKIP:
            continue
        try:
            m = importlib.import_module(top)
        except Exception:
            continue
        names.append(top)
        if hasattr(m, "__path__"):
            for info in sorted(pkgutil.walk_packages(m.__path__, top + ".", onerror=lambda n: None),
                               key=lambda i: i.name):
                parts = info.name.split(".")
                if any(p.startswith("_") or p in ("test", "tests") for p in parts):
                    continue
                try:
                    importlib.import_module(info.name)
                except Exception:
                    continue
                names.append(info.name)
    return names


def collect():
    w = Walker()
    import numpy
    import scipy
    import skimage
    import sklearn
    import tensorflow as tf
    # 1. TensorFlow (and Keras, reached as tf.keras): dir() recursion from `tf` (no pkgutil walk).
    w.walk([("tf", tf)], {"tensorflow", "keras"})
    # 2. NumPy
    w.walk([("numpy", numpy)], {"numpy"})
    # 3. SciPy: its documented public submodules (scipy.__all__), recursing into public modules.
    sub = [n for n in scipy.__all__ if isinstance(getattr(scipy, n, None), types.ModuleType)]
    w.walk([(f"scipy.{n}", importlib.import_module(f"scipy.{n}")) for n in sorted(sub)], {"scipy"})
    # 4. scikit-learn: public submodules from sklearn.__all__ (lazy-loaded), plus top-level names.
    sk = []
    for n in sorted(sklearn.__all__):
        try:
            sk.append((f"sklearn.{n}", importlib.import_module(f"sklearn.{n}")))
        except Exception:
            pass
    w.walk([("sklearn", sklearn)] + sk, {"sklearn"})
    # 5. scikit-image (lazy_loader): public submodules from skimage.__all__.
    ski = []
    for n in sorted(skimage.__all__):
        if n.startswith("_"):
            continue
        try:
            ski.append((f"skimage.{n}", importlib.import_module(f"skimage.{n}")))
        except Exception:
            pass
    w.walk([("skimage", skimage)] + ski, {"skimage"})
    # 6. Python standard library: documented public modules (sys.stdlib_module_names + public
    #    submodules), walked without recursion so results do not depend on import side effects.
    mods = stdlib_modules()
    w.walk([(n, sys.modules[n]) for n in mods], STDLIB, recurse_modules=False)
    return w, mods


# ----------------------------------------------------------------------------------------------
# splitting and cleaning

SIG_RE = re.compile(r"^[A-Za-z_][\w.]*\(.*(\)|->.*)\s*$")
UNDERLINE_RE = re.compile(r"^\s*(-{3,}|={3,}|~{3,})\s*$")
GOOGLE_SECTIONS = (
    r"args|arguments|parameters|params|returns?|raises|yields?|examples?|example usage|usage|"
    r"notes?|attributes|input shape|output shape|call arguments|call args|references?|warnings?|"
    r"warns|see also|keyword args|keyword arguments|other parameters|methods|properties|"
    r"standalone usage|usage examples?|usage with `?compile\(\)`? api|returns and raises|todo|"
    r"inputs?|outputs?|"
    r"for example|e\.g\.|example use|examples? usage|sample usage|typical usage|"
    r"structural mapping to native tf2|migrate to tf2|raises errors|return value|"
    r"call signature|reference|source|note on the compatibility"
)
SECTION_RE = re.compile(rf"^({GOOGLE_SECTIONS})\s*:\s*$", re.I)
SHORT_HEADER_RE = re.compile(r"^[^.]{0,60}:\s*$")
DOCTEST_RE = re.compile(r"^\s*(>>>|\.\.\.)(\s|$)")
DIRECTIVE_RE = re.compile(r"^\s*\.\.\s+(\S+::|\[|_|\|)")
DEPRECATION_RE = re.compile(
    r"^(deprecated\b|(warning:\s*|deprecated:\s*)?"
    r"(this (function|class|method|property) is deprecated|"
    r"some arguments are deprecated|some argument values are deprecated|"
    r"instructions for updating))", re.I)
DEPRECATED_SUFFIX_RE = re.compile(
    r"\s*\((deprecated|deprecated arguments|deprecated argument values)\)\s*$", re.I)
ABBREV = {"e.g", "i.e", "etc", "vs", "eq", "eqs", "fig", "ref", "refs", "cf", "resp", "approx",
          "no", "dr", "mr", "al", "sec", "ch", "vol", "pp", "p", "ed", "eds", "min", "max", "std",
          "incl", "esp", "viz", "jr", "sr", "st"}


def clean_inline(text):
    t = text
    t = re.sub(r"<!--.*?-->", " ", t, flags=re.S)
    t = re.sub(r":(?:[\w-]+:)*[\w-]+:`~?([^`<]*?)\s*<[^`>]*>`", r"\1", t)        # :role:`text <t>`
    t = re.sub(r":(?:[\w-]+:)*[\w-]+:`~([\w.]*\.)?([^`]+)`", r"\2", t)          # :role:`~a.b.c`
    t = re.sub(r":(?:[\w-]+:)*[\w-]+:`([^`]+)`", r"\1", t)                      # :role:`x`
    t = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", t)                               # [text](url)
    t = re.sub(r"`([^`<]+?)\s*<https?://[^>]+>`_+", r"\1", t)                    # `text <url>`_
    t = re.sub(r"<[^>\n]+>", " ", t) if re.search(r"</?[a-zA-Z][^>\n]*>", t) else t  # html tags
    t = re.sub(r"``([^`]+)``", r"\1", t)
    t = re.sub(r"`([^`]+)`_*", r"\1", t)
    t = re.sub(r"\s*\[\d+\]_", "", t)                                            # [1]_
    t = re.sub(r"\*\*([^*]+)\*\*", r"\1", t)
    t = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"\1", t)
    t = re.sub(r"Read more in the User Guide\.?", "", t)
    t = re.sub(r"\s+", " ", t)
    return t.strip()


def split_sentences(text):
    """Rule-based sentence splitter (deterministic, no model downloads)."""
    out, start = [], 0
    for m in re.finditer(r"[.!?][\"')\]]*\s+(?=[\"'(\[`]?[A-Z0-9])", text):
        before = text[start:m.start()].split()
        last = before[-1].lower().rstrip(".") if before else ""
        if last in ABBREV or re.fullmatch(r"[a-z]", last) or re.fullmatch(r"([a-z]\.)+[a-z]", last):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _indent(line):
    return len(line) - len(line.lstrip())


def clean_body(lines):
    # numpydoc: everything from the first underlined section header on (Parameters, Returns,
    # See Also, Notes, References, Examples, ...) is dropped.
    for i in range(1, len(lines)):
        if UNDERLINE_RE.match(lines[i]) and lines[i - 1].strip() and \
                len(lines[i].strip()) >= 0.5 * len(lines[i - 1].strip()):
            lines = lines[:i - 1]
            break
    text = "\n".join(lines)
    text = re.sub(r"@compatibility\(.*?@end_compatibility", "\n\x00\n", text, flags=re.S)
    text = re.sub(r"<section.*?</section>", "\n\x00\n", text, flags=re.S | re.I)
    text = re.sub(r"^\s*(```|~~~).*?^\s*(```|~~~)[^\n]*$", "\n\x00\n", text, flags=re.S | re.M)
    lines = text.split("\n")
    out, i, n = [], 0, len(lines)

    def skip_block(j, base):
        """Skip blank lines and lines indented deeper than `base` starting at j."""
        while j < n and (not lines[j].strip() or _indent(lines[j]) > base):
            j += 1
        return j

    while i < n:
        line = lines[i]
        s = line.strip()
        ind = _indent(line)
        nxt = next((lines[k] for k in range(i + 1, n) if lines[k].strip()), "")
        if s == "\x00":
            out.append(s)
            i += 1
            continue
        if not s:
            out.append("")
            i += 1
            continue
        out_len = len(out)
        if DOCTEST_RE.match(line):                       # doctest and its output
            i += 1
            while i < n and lines[i].strip():
                i += 1
        elif DIRECTIVE_RE.match(line):                     # .. directive:: / .. [1] / .. _x:
            i = skip_block(i + 1, ind)
        elif SECTION_RE.match(s):                          # Args: / Returns: / Example: ...
            i = skip_block(i + 1, ind)
        elif SHORT_HEADER_RE.match(s) and nxt and _indent(nxt) > ind:   # "For example:" + block
            i = skip_block(i + 1, ind)
        elif s.endswith("::"):                              # reST literal block
            out.append(line.rstrip()[:-1].rstrip(": ") + ":" if s != "::" else "")
            out.append("\x00")
            i = skip_block(i + 1, ind)
        elif re.match(r"^#{1,6}\s", s) or s.startswith("|") or re.fullmatch(r"[=+\-| ]{3,}", s):
            i += 1                                          # markdown headers, tables
        else:
            out.append(line)
            i += 1
        if len(out) == out_len or not out[-1].strip():     # something was removed here
            out.append("\x00")
    # paragraphs; "\x00" stands for removed content (code, doctest, section, directive)
    paras, cur = [], []
    for line in out + [""]:
        if line.strip() and line != "\x00":
            cur.append(line)
            continue
        if cur:
            paras.append(cur)
            cur = []
        if line == "\x00":
            paras.append(None)
    kept = []
    for p in paras:
        if p is None:
            kept.append(None)
            continue
        if all(_indent(x) >= 2 for x in p):                 # indented block: code / quoted text
            kept.append(None)
            continue
        txt = clean_inline(" ".join(x.strip() for x in p))
        if not txt or DEPRECATION_RE.match(txt):
            continue
        toks = txt.split()
        wordy = sum(bool(re.fullmatch(r"[A-Za-z][A-Za-z'-]*[.,;:!?)]?", t)) for t in toks)
        if wordy < 0.5 * len(toks):                         # code-like line noise
            kept.append(None)
            continue
        kept.append(txt)
    # a paragraph ending in ':' that introduced removed content loses that last sentence
    final = []
    for j, txt in enumerate(kept):
        if txt is None:
            continue
        if txt.endswith(":") and (j + 1 == len(kept) or kept[j + 1] is None):
            sents = split_sentences(txt)[:-1]
            txt = " ".join(sents)
        if txt:
            final.append(txt)
    return "\n".join(final)


def split_doc(doc):
    """Return (summary, body, reason). reason is None when the pair is usable."""
    paras = re.split(r"\n\s*\n", doc.strip())
    k = 0
    while k < len(paras) and k < 3 and _is_signature(paras[k]):
        k += 1                                              # leading call-signature lines
    if k >= len(paras):
        return None, None, "signature only"
    first = paras[k]
    if DOCTEST_RE.match(first) or first.startswith(("..", "```")):
        return None, None, "no prose summary"
    summary = DEPRECATED_SUFFIX_RE.sub("", clean_inline(first))
    summary = DEPRECATED_SUFFIX_RE.sub("", summary)
    first_line_only = False
    if len(split_sentences(summary)) != 1:
        # No blank line after the summary (PEP 257 violated): accept the first line when it is
        # exactly one complete sentence, and move the rest of the paragraph to the body.
        line1 = DEPRECATED_SUFFIX_RE.sub("", clean_inline(first.splitlines()[0]))
        if not (line1.endswith(".") and len(split_sentences(line1)) == 1 and
                split_sentences(summary)[0] == line1):
            return None, None, "first paragraph not one sentence"
        summary, first_line_only = line1, True
        lines = first.splitlines()
        paras = paras[:k] + [lines[0], "\n".join(lines[1:])] + paras[k + 1:]
    if summary.endswith(":"):
        return None, None, "summary ends with ':'"
    if re.search(r"([,;(\-]|\b(and|or|of|the|a|an|to|with|in|for|by|that|is))$", summary):
        return None, None, "summary truncated mid-sentence"
    toks = summary.split()
    prose = sum(bool(re.fullmatch(r"[A-Za-z][A-Za-z'-]*[.,;:!?)]?", t)) for t in toks)
    if "->" in summary or " = " in summary or prose < 0.6 * len(toks):
        return None, None, "summary not prose"
    nw = len(summary.split())
    if not 4 <= nw <= 40:
        return None, None, "summary not 4-40 words"
    rest = "\n\n".join(paras[k + 1:])
    body = clean_body(rest.split("\n")) if rest else ""
    if len(body.split()) < 30:
        return summary, body, "body < 30 words"
    return summary, body, ("ok: summary is the first line of a longer paragraph"
                           if first_line_only else None)


def _is_signature(para):
    """A leading `name(args) -> result` paragraph (C functions, Argument Clinic, numpy)."""
    lines = [x.strip() for x in para.strip().splitlines()]
    if not lines or not re.match(r"^[A-Za-z_][\w.]*\(", lines[0]):
        return False
    if all(SIG_RE.match(x) or x == "--" for x in lines):
        return True
    joined = " ".join(x for x in lines if x != "--")
    return bool(re.fullmatch(r"[A-Za-z_][\w.]*\(.*\)\s*(->.*)?", joined)) and len(lines) <= 4


def norm(s):
    return re.sub(r"\s+", " ", s).strip().lower().rstrip(".")


def split_of(summary):
    """Group by normalised summary text; hash-based 80/10/10 assignment."""
    h = int(hashlib.sha256(norm(summary).encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("validation" if h < 90 else "test")


def main():
    setup(sys.argv[1] if len(sys.argv) > 1 else OUT)
    w, stdlib_mods = collect()
    stats = collections.defaultdict(collections.Counter)
    seen_doc, seen_pair, rows = set(), set(), []
    seen_body = set()
    for source, kind, path, module, doc in w.items:
        source = "stdlib" if source in STDLIB else source
        st = stats[source]
        st["objects with docstring"] += 1
        key = re.sub(r"\s+", " ", doc).strip()
        if key in seen_doc:
            st["dropped: duplicate docstring text"] += 1
            continue
        seen_doc.add(key)
        summary, body, reason = split_doc(doc)
        if reason and reason.startswith("ok: "):
            st[reason] += 1
            reason = None
        if reason:
            st["dropped: " + reason] += 1
            continue
        if (summary, body) in seen_pair:
            st["dropped: duplicate pair after cleaning"] += 1
            continue
        seen_pair.add((summary, body))
        name = path.split(".")[-1]
        templ = re.sub(rf"\b{re.escape(name)}\b", "NAME", body)
        if templ in seen_body:       # same (templated) document as an earlier pair
            st["dropped: duplicate document (same text up to the object name)"] += 1
            continue
        seen_body.add(templ)
        st["kept"] += 1
        rows.append({"id": path, "source": source, "kind": kind, "module": module,
                     "summary": summary, "document": body,
                     "summary_in_document": norm(summary) in norm(body),
                     "split": split_of(summary)})
    rows.sort(key=lambda r: (r["source"], r["id"]))
    with open(os.path.join(OUT, "pairs.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    with open(os.path.join(OUT, "pairs.jsonl"), "rb") as f, \
            gzip.GzipFile(os.path.join(OUT, "pairs.jsonl.gz"), "wb", mtime=0) as g:
        g.write(f.read())
    versions = {"python": platform.python_version()}
    for d in ("tensorflow", "keras", "numpy", "scipy", "scikit-learn", "scikit-image"):
        versions[d] = md.version(d)
    meta = {"versions": versions, "stdlib_modules_walked": len(stdlib_mods),
            "stats": {k: dict(v) for k, v in sorted(stats.items())}, "pairs": len(rows)}
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    print(json.dumps(meta, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
