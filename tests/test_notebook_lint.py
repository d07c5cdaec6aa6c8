"""A lint over the notebooks' text: what a learner reads must be true of the course itself.

For every notebook and chapter README:

- **control characters**: markdown holds no control character but the newline (a lost
  backslash turns `\\frac` into a form feed and `\\text` into a tab);
- **library names**: every `course_lib` name written in backticks exists;
- **cross-references**: every "chapter N" / "notebook N" points at a chapter or notebook that
  exists, and where the reference names a topic, at the notebook that teaches it.

How a name in backticks is resolved (anything else in backticks is not a course_lib name and
is left alone, so `keras.ops.mean` or `model.fit` of a plain Keras model raise nothing):

- `course_lib.a.b` is imported and looked up attribute by attribute;
- a short form starts with a name the notebook imports from course_lib (`metrics.psnr` after
  `from course_lib import metrics`), a module, class or function that course_lib defines
  (`inpainting.naive_fill`, `DiffusionModel.sample`), or a variable the notebook assigns from
  a course_lib class (`model.sample` after `model = DiffusionModel(...)`);
- an attribute of a class exists if the class has it or its code assigns `self.<name>`;
- a bare name after "override(s)" must be a method of the course_lib class named just
  before it in the sentence ("a subclass of `Pix2Pix` that overrides `_l1`").

How a reference is parsed: "chapter N" is the chapter whose titles read `# Chapter N · ...`;
"notebook N" is notebook `0N_*.ipynb` of the chapter the text is in, or of chapter M in
"notebook N of chapter M"; "exercise E of notebook N" and "(notebook N, section S)" need that
exercise or section heading there. A reference names a topic when a term of `TOPICS` stands
next to it in its sentence ("the digit judge of chapter 3"); the notebook that teaches a
topic is the first, in course order, whose headings or "What you will learn" list name it
(within the chapter for "notebook N", in the course for "chapter N"); a learn-list line that
itself points elsewhere ("the v-prediction of notebook 2") teaches nothing.
"""

import ast
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

import course_lib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)  # JupyterLab's autosaves
READMES = sorted(NOTEBOOK_DIR.glob("*/README.md"))
DOCUMENTS = NOTEBOOKS + READMES

# Topics a reference can name: how a referring sentence names it, and how the notebook that
# teaches it names it in a heading or its learn list. Add a topic when a new reference needs it.
TOPICS = {
    "the digit judge": (r"\bjudge\b|digit classifier", r"\bjudg(e|ing)\b"),
    "v-prediction": (r"v-prediction|\$v\$", r"\$?v\$?-prediction"),
    "noise schedules": (r"\bschedules?\b|\bbeta from\b", r"\bschedules?\b"),
    "the posterior mean": (r"posterior mean|\\tilde\\mu", r"posterior|\\tilde\\mu"),
    "the denoising U-Net": (r"U-Net", r"U-Net"),
    "copying and nearest neighbours": (r"nearest|copy|copied|copying|memoris",
                                       r"nearest|copied|copying|memoris"),
    "resuming a crashed run": (r"crash|resum|interrupt|BackupAndRestore",
                               r"crash|resum|interrupt"),
    "set-up and fast mode": (r"setup\(\)|fast mode", r"setup\(\)|fast mode"),
    "image enhancement": (r"enhancement", r"enhancement"),
    "flow matching": (r"flow matching", r"flow matching"),
    "label conditioning": (r"label-conditioned|conditional model|class-conditional",
                           r"condition"),
}
TOPIC_WINDOW = 40  # characters between a topic's name and the reference it belongs to

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
BACKTICKED = re.compile(r"`([^`\n]+)`")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
OVERRIDE = re.compile(r"overrid(?:e|es|ing)\s+`([A-Za-z_]\w*)`")
REFERENCE = re.compile(
    r"\b(?P<kind>[Cc]hapter|[Nn]otebook)s?\s+(\d+)"
    + r"(?P<more>(?:\s*(?:,|and|or)\s*\d+)*)"
    + r"(?:\s+of\s+chapter\s+(?P<of_chapter>\d+))?")
EXERCISE_OF = re.compile(r"[Ee]xercise\s+(\d+)\s+of\s+notebook\s+(\d+)")
NOTEBOOK_DETAIL = re.compile(r"\(notebook\s+(\d+),\s+(section|exercise)\s+(\d+)")
TITLE = re.compile(r"^# Chapter (\d+) · ", re.M)


@dataclass
class Finding:
    cell: str  # "cell 12 (markdown)", or "README"
    text: str  # the words at fault
    why: str  # what is wrong and what to do

    def __str__(self):
        return f"{self.cell}: {self.text!r}\n    {self.why}"


# ---------------------------------------------------------------------------------------
# The documents
# ---------------------------------------------------------------------------------------

def cells_of(path):
    """[(label, cell_type, source)] of a notebook, or one markdown "cell" for a README."""
    if path.suffix == ".md":
        return [("README", "markdown", path.read_text())]
    nb = nbformat.read(path, as_version=4)
    return [(f"cell {i} ({c.cell_type})", c.cell_type, c.source) for i, c in enumerate(nb.cells)]


def notebook_number(path):
    return int(path.name.split("_")[0])


def chapters():
    """{chapter number: folder}, from the `# Chapter N · ` titles of each folder's files."""
    found = {}
    for path in DOCUMENTS:
        text = "\n".join(s for _, t, s in cells_of(path) if t == "markdown")
        match = TITLE.search(text)
        if match:
            found.setdefault(int(match.group(1)), path.parent)
    return found


def headings_and_learn_list(path):
    """The lines of a notebook that say what it teaches (headings, "What you will learn")."""
    lines = []
    for _, cell_type, source in cells_of(path):
        if cell_type != "markdown":
            continue
        # What a notebook defines: its bold terms and displayed formulas.
        lines += [m.group(0) for m in re.finditer(r"\*\*[^*\n]+\*\*|\$\$.+?\$\$", source, re.S)
                  if not REFERENCE.search(source[max(0, m.start() - 60):m.end() + 60])]
        in_list = False
        for line in source.splitlines():
            if line.startswith("#"):
                lines.append(line)
                in_list = False
            elif "What you will learn" in line:
                in_list = True
            elif in_list and line.startswith("- "):
                if not REFERENCE.search(line):  # "the v-prediction of notebook 2" defers
                    lines.append(line)
            elif in_list and line.strip():
                in_list = False
    return lines


def course_order():
    return sorted(NOTEBOOKS, key=lambda p: (p.parent.name, p.name))


def teaches(path, topic):
    pattern = TOPICS[topic][1]
    return any(re.search(pattern, line, re.I) for line in headings_and_learn_list(path))


def first_teacher(topic, within=None):
    """The first notebook (of the chapter folder `within`, or of the course) teaching `topic`."""
    for path in course_order():
        if (within is None or path.parent == within) and teaches(path, topic):
            return path
    return None


# ---------------------------------------------------------------------------------------
# course_lib's names
# ---------------------------------------------------------------------------------------

def _library_index():
    """{short name: [objects]}: every course_lib module (by its last name) and every class
    and function a course_lib module defines."""
    index = {}
    modules = [course_lib]
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        modules.append(importlib.import_module(info.name))
    for module in modules:
        index.setdefault(module.__name__.rsplit(".", 1)[-1], []).append(module)
        for name, value in vars(module).items():
            if ((inspect.isclass(value) or inspect.isfunction(value))
                    and getattr(value, "__module__", "") == module.__name__):
                index.setdefault(name, []).append(value)
    return index


LIBRARY = _library_index()


def _is_library(value):
    module = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "")
    return (module or "").split(".")[0] == "course_lib"


def _code_namespace(code_cells):
    """{name: [course_lib objects]} bound by the notebook's imports and assignments; a name
    the notebook binds to anything else maps to [] (so the notebook's `vae` variable is not
    mistaken for the module `course_lib.models.vae`)."""
    namespace = {}
    for source in code_cells:
        source = "\n".join(line for line in source.splitlines()
                           if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    value = getattr(module, alias.name, None)
                    if value is None:
                        value = importlib.import_module(f"{node.module}.{alias.name}")
                    namespace.setdefault(alias.asname or alias.name, []).append(value)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("course_lib"):
                        module = importlib.import_module(alias.name)
                        if alias.asname:
                            namespace.setdefault(alias.asname, []).append(module)
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                  and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                callee = node.value.func
                name = (callee.id if isinstance(callee, ast.Name)
                        else callee.attr if isinstance(callee, ast.Attribute) else None)
                classes = [c for c in namespace.get(name, []) + LIBRARY.get(name, [])
                           if inspect.isclass(c) and _is_library(c)]
                if classes:
                    namespace.setdefault(node.targets[0].id, []).extend(classes)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                namespace.setdefault(node.id, [])
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                namespace.setdefault(node.name, [])
            elif isinstance(node, ast.arg):
                namespace.setdefault(node.arg, [])
    return namespace


def _has(value, attribute):
    if hasattr(value, attribute):
        return True
    if inspect.ismodule(value):
        try:
            importlib.import_module(f"{value.__name__}.{attribute}")
            return True
        except ImportError:
            return False
    if inspect.isclass(value):  # an instance attribute set in the class's code
        for klass in value.__mro__:
            try:
                source = inspect.getsource(klass)
            except (OSError, TypeError):
                continue
            if re.search(rf"\bself\.{re.escape(attribute)}\s*(=|:)", source):
                return True
    return False


def _lookup(value, attribute):
    if hasattr(value, attribute):
        return getattr(value, attribute)
    if inspect.ismodule(value):
        try:
            return importlib.import_module(f"{value.__name__}.{attribute}")
        except ImportError:
            pass
    return None  # an instance attribute: exists, but nothing to look further into


def resolve(dotted, namespace):
    """None if `dotted` is not a course_lib name; else (True, "") or (False, why)."""
    head, *rest = dotted.split(".")
    if head == "course_lib":
        candidates = [course_lib]
    else:
        bound = namespace[head] if head in namespace else LIBRARY.get(head, [])
        candidates = [v for v in bound if _is_library(v)]
    if not candidates:
        return None
    best_why = ""
    for value in candidates:
        path = [head]
        for part in rest:
            if not _has(value, part):
                where = ".".join(path)
                best_why = f"`{where}` has no attribute `{part}`"
                break
            path.append(part)
            value = _lookup(value, part)
            if value is None:
                break
        else:
            return True, ""
        if value is None and len(path) == len(rest) + 1:
            return True, ""
    return False, best_why


# ---------------------------------------------------------------------------------------
# The lint
# ---------------------------------------------------------------------------------------

def _sentence_around(text, start, end):
    marks = (". ", "\n", "; ", ": ")
    left = max(text.rfind(mark, 0, start) for mark in marks)
    rights = [i for i in (text.find(mark, end) for mark in marks) if i >= 0]
    return left + 1, min(rights) if rights else len(text)


def _named_topic(text, start, end):
    """The topic whose name stands closest to the reference text[start:end], if any."""
    lo, hi = _sentence_around(text, start, end)
    best = None
    for topic, (mention, _) in TOPICS.items():
        for match in re.finditer(mention, text[lo:hi], re.I):
            a, b = match.start() + lo, match.end() + lo
            gap = start - b if b <= start else a - end if a >= end else 0
            if 0 <= gap <= TOPIC_WINDOW and (best is None or gap < best[0]):
                best = (gap, topic)
    return best[1] if best else None


def _exercises(path):
    """{number: text} of a notebook's exercises: its `### Exercise N` headings and the
    numbered items of its closing `## Exercises` list."""
    found = {}
    for _, cell_type, source in cells_of(path):
        if cell_type != "markdown":
            continue
        for m in re.finditer(r"^#+ Exercise (\d+)(.*)$", source, re.M):
            found.setdefault(int(m.group(1)), "")
            found[int(m.group(1))] += m.group(2)
        if "## Exercises" in source:
            closing = source[source.index("## Exercises"):]
            for m in re.finditer(r"^(\d+)\. (.*)$", closing, re.M):
                found.setdefault(int(m.group(1)), "")
                found[int(m.group(1))] += " " + m.group(2)
    return found


def _section_numbers(path):
    return {int(m.group(1)) for line in headings_and_learn_list(path)
            for m in [re.match(r"## (\d+)\.", line)] if m}


def _notebook(folder, number):
    found = [p for p in folder.glob("*.ipynb") if notebook_number(p) == number]
    return found[0] if found else None


def _check_references(path, label, text, chapter_folders, findings):
    here = path.parent
    for match in REFERENCE.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if TITLE.match(text, line_start) and line_start + 2 == match.start():
            continue  # the title that defines the chapter number
        kind = match["kind"].lower()
        numbers = [int(match.group(2))] + [int(n) for n in re.findall(r"\d+", match["more"])]
        snippet = text[max(0, match.start() - 40):match.end() + 20].replace("\n", " ")
        for number in numbers:
            if kind == "chapter":
                folder = chapter_folders.get(number)
                if folder is None or not list(folder.glob("*.ipynb")):
                    known = ", ".join(f"{n} = {f.name}" for n, f in sorted(chapter_folders.items()))
                    findings.append(Finding(label, snippet, (
                        f"chapter {number} has no notebooks (chapters: {known})")))
                    continue
                target, scope = folder, None
            else:
                folder = here
                if match["of_chapter"]:
                    folder = chapter_folders.get(int(match["of_chapter"]))
                target = _notebook(folder, number) if folder else None
                if target is None:
                    findings.append(Finding(label, snippet, (
                        f"notebook {number} does not exist in "
                        f"{folder.relative_to(ROOT) if folder else 'that chapter'}")))
                    continue
                scope = folder
            detailed = (NOTEBOOK_DETAIL.match(text, max(0, match.start() - 1))
                        or re.search(r"[Ee]xercise\s+\d+\s+of\s+$", text[:match.start()]))
            topic = _named_topic(text, match.start(), match.end())
            if topic is None or detailed:
                continue  # a section or exercise reference is checked below
            teacher = first_teacher(topic, within=scope)
            if teacher is None:
                findings.append(Finding(label, snippet, (
                    f"no notebook{' of ' + scope.name if scope else ''} names {topic} in its "
                    "headings or learn list: point the reference elsewhere, or extend TOPICS")))
                continue
            right = teacher.parent == target if kind == "chapter" else teacher == target
            if not right:
                where = (f"chapter {int(teacher.parent.name.split('_')[0])}"
                         if kind == "chapter" else f"notebook {notebook_number(teacher)}")
                findings.append(Finding(label, snippet, (
                    f"{topic} is taught in {teacher.relative_to(NOTEBOOK_DIR)}: "
                    f"write \"{where}\", not \"{kind} {number}\"")))
    details = [(m, int(m.group(2)), "exercise", int(m.group(1)))
               for m in EXERCISE_OF.finditer(text)]
    details += [(m, int(m.group(1)), m.group(2), int(m.group(3)))
                for m in NOTEBOOK_DETAIL.finditer(text)]
    for match, number, what, detail in details:
        target = _notebook(here, number)
        if target is None:
            continue  # reported above
        if what == "section":
            if detail not in _section_numbers(target):
                findings.append(Finding(label, match.group(0), (
                    f"{target.name} has no section {detail} (its sections: "
                    f"{sorted(_section_numbers(target))})")))
            continue
        exercises = _exercises(target)
        if detail not in exercises:
            findings.append(Finding(label, match.group(0), (
                f"{target.name} has no exercise {detail} (its exercises: {sorted(exercises)})")))
            continue
        topic = _named_topic(text, match.start(), match.end())
        if topic and not re.search(TOPICS[topic][0], exercises[detail], re.I):
            findings.append(Finding(label, match.group(0), (
                f"exercise {detail} of {target.name} is not about {topic}: "
                f"{exercises[detail].strip()[:80]!r}")))


def _check_names(label, text, namespace, findings):
    for match in BACKTICKED.finditer(text):
        token = match.group(1).split("(")[0].strip()
        if not DOTTED.fullmatch(token):
            continue
        result = resolve(token, namespace)
        if result is not None and not result[0]:
            findings.append(Finding(label, f"`{match.group(1)}`", (
                f"{result[1]}: name something course_lib has, or add it to the library")))
    for match in OVERRIDE.finditer(text):
        lo, _ = _sentence_around(text, match.start(), match.end())
        before = [m.group(1).split("(")[0] for m in BACKTICKED.finditer(text, lo, match.start())]
        classes = [c for name in before
                   for c in (namespace[name] if name in namespace else LIBRARY.get(name, []))
                   if inspect.isclass(c) and _is_library(c)]
        if classes and not any(hasattr(c, match.group(1)) for c in classes[-1:]):
            findings.append(Finding(label, text[lo:match.end()].strip(), (
                f"`{classes[-1].__name__}` has no method `{match.group(1)}` to override")))


def lint(path, cells=None):
    """Every finding in one notebook or chapter README (`cells`: lint this text, as
    `cells_of` gives it, as if it were at `path`)."""
    cells = cells_of(path) if cells is None else cells
    namespace = _code_namespace([s for _, t, s in cells if t == "code"])
    chapter_folders = chapters()
    findings = []
    for label, cell_type, source in cells:
        if cell_type == "markdown":
            for match in CONTROL.finditer(source):
                findings.append(Finding(
                    label, source[max(0, match.start() - 20):match.end() + 20],
                    f"control character {match.group()!r} in markdown: a backslash was lost "
                    "(\\f, \\t, \\b, \\r in a Python string); write the LaTeX with its backslash"))
        if cell_type in ("markdown", "code"):
            _check_names(label, source, namespace, findings)
            _check_references(path, label, source, chapter_folders, findings)
    return findings


def _id(path):
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOCUMENTS, ids=_id)
def test_notebook_text(path):
    findings = lint(path)
    assert not findings, f"{len(findings)} problem(s) in {_id(path)}:\n" + "\n".join(
        str(f) for f in findings)


def test_chapter_titles_match_their_folders():
    for path in DOCUMENTS:
        text = "\n".join(s for _, t, s in cells_of(path) if t == "markdown")
        match = TITLE.search(text)
        assert match, f"{_id(path)} has no '# Chapter N · Topic' title"
        assert int(match.group(1)) == int(path.parent.name.split("_")[0]), (
            f"{_id(path)} says chapter {match.group(1)} but lives in {path.parent.name}")


# The lint itself, on text written to fail it.

def test_lint_finds_a_lost_backslash(tmp_path):
    path = _notebook_with(tmp_path, "MSE = \x0crac{1}{N}, 10\\ \text{dB}")
    assert len([f for f in lint(path) if "control character" in f.why]) == 2


def test_lint_finds_a_missing_library_name(tmp_path):
    path = _notebook_with(
        tmp_path, "Use `course_lib.metrics.psnr`, `metrics.ssim` and `inpainting.naive_fill`; "
        "not `course_lib.metrics.no_such_metric` or `DiffusionModel.no_such_method`, "
        "nor a subclass of `Pix2Pix` that overrides `_no_such_loss`. `keras.ops.whatever` is "
        "not ours.", code="from course_lib import metrics")
    texts = [f.text for f in lint(path)]
    assert len(texts) == 3, texts
    assert "no_such_metric" in texts[0] and "no_such_method" in texts[1]
    assert "_no_such_loss" in texts[2]


def test_lint_checks_references(tmp_path):
    folder = tmp_path / "notebooks" / "02_diffusion"
    folder.mkdir(parents=True)
    good = ("The digit judge of chapter 0; the v-prediction of notebook 2 "
            "(notebook 2, section 5); your Exercise 1 of notebook 1.")
    bad = ("The digit judge of chapter 3; the network's $v$ (notebook 3); notebook 9; "
           "chapter 12; (notebook 2, section 99).")
    path = folder / "09_probe.ipynb"
    real = NOTEBOOK_DIR / "02_diffusion"
    for name, text in [("good", good), ("bad", bad)]:
        nbformat.write(nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell("# Chapter 2 · Probe\n\n" + text)]), path)
        findings = []
        _check_references(real / path.name, "cell 0", text, chapters(), findings)
        whys = [f.why for f in findings]
        if name == "good":
            assert not whys, whys
        else:
            assert len(whys) == 5, whys
            assert "write \"chapter 0\"" in whys[0] and "write \"notebook 2\"" in whys[1]


def _notebook_with(tmp_path, markdown, code="1"):
    path = tmp_path / "01_probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Chapter 0 · Probe\n\n" + markdown),
        nbformat.v4.new_code_cell(code)]), path)
    return path
