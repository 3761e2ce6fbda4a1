"""Sphinx configuration of the hebbian documentation: the Markdown pages through MyST, the API reference from the
docstrings (autodoc + napoleon for their Google style), and the lessons, executed by sphinx-gallery from
examples/lessons/. Build: ``sphinx-build -W -b html docs docs/_build/html``.

Environment: ``HEBBIAN_DOCS_GALLERY=0`` builds the lesson pages without executing them (CI executes every lesson as
a test instead, tests/docs/test_lessons.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # this checkout's hebbian, also where an editable install points elsewhere
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # lessons are sized for one core

import logging  # noqa: E402

import hebbian  # noqa: E402

logging.getLogger("ignite").setLevel(logging.WARNING)  # the engines' per-epoch INFO lines are not the build's log

project = "hebbian"
author = "the hebbian authors"
copyright = "2026, the hebbian authors"
release = version = hebbian.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "*.template.md", "lessons/*.ipynb", "lessons/*.py",
                    "lessons/*.md5", "lessons/*.zip", "Thumbs.db", ".DS_Store"]
suppress_warnings = ["config.cache"]  # sphinx-gallery's settings hold functions: no pickled config cache

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
} if os.environ.get("HEBBIAN_DOCS_INTERSPHINX") else {}

html_theme = "furo"
html_title = f"hebbian {release}"
html_static_path = ["_static"]
html_css_files = ["lessons.css"]
# MathJax comes from its CDN; HEBBIAN_DOCS_MATHJAX=<url or file:// path of MathJax.js> builds a site that renders
# formulas offline (e.g. Debian's libjs-mathjax: file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML)
if os.environ.get("HEBBIAN_DOCS_MATHJAX"):
    mathjax_path = os.environ["HEBBIAN_DOCS_MATHJAX"]

_execute = os.environ.get("HEBBIAN_DOCS_GALLERY", "1") != "0"

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "lessons"),
    "gallery_dirs": "lessons",
    "filename_pattern": r"/lesson_",
    "ignore_pattern": r"(__init__|_helpers)\.py$",
    "plot_gallery": "True" if _execute else "False",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "min_reported_time": 1,
    "write_computation_times": False,  # no sg_execution_times page: the times are on every lesson's page
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
}


def _write_cli_usage(app) -> None:
    """docs/_generated/cli_usage.txt: ``hebbian --help`` and every sub-command's ``--help``, from the parser itself."""
    import argparse

    from hebbian.cli.main import build_parser

    parser = build_parser()
    parser.prog = "hebbian"
    out = [parser.format_help()]
    for action in parser._subparsers._group_actions:  # the sub-commands, in the order --help lists them
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                sub.prog = f"hebbian {name}"
                out.append(f"\n{'=' * 100}\n\n{sub.format_help()}")
    target = DOCS / "_generated" / "cli_usage.txt"
    target.parent.mkdir(exist_ok=True)
    text = "".join(out)
    if not target.is_file() or target.read_text() != text:  # unchanged: keep the file, no rebuild of its page
        target.write_text(text)


from sphinx.transforms.post_transforms import SphinxPostTransform  # noqa: E402


class RepositoryLinks(SphinxPostTransform):
    """Links of the Markdown pages to files of the repository outside docs/ (the pages are written for GitHub),
    resolved before MyST's resolver (priority 9) sees them: the README is the site's front page (``index``); any
    other existing file or folder is shown as its path in code font, since the site does not hold it. A link to
    nothing that exists stays for MyST to report (a warning, so ``-W`` fails)."""

    default_priority = 8

    def run(self, **kwargs) -> None:
        from docutils import nodes
        from sphinx import addnodes

        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst":
                continue
            refdoc = node.get("refdoc", self.env.docname)
            target = node.get("reftarget", "")
            if node.get("refdomain") == "doc":  # MyST made it a document name, relative to docs/ or absolute
                path = Path(target) if Path(target).is_absolute() else DOCS / target
                candidates = [path.with_suffix(".md"), path]
            else:
                path = (Path(self.env.doc2path(refdoc)).parent / target).resolve()
                candidates = [path]
            if target in self.env.all_docs:
                continue
            if any(c.resolve() == ROOT / "README.md" for c in candidates):
                uri = self.app.builder.get_relative_uri(refdoc, "index")
                node.replace_self(nodes.reference("", "", *node.children, internal=True, refuri=uri))
                continue
            found = next((c.resolve() for c in candidates if c.exists()), None)
            if found is not None and ROOT in found.parents and DOCS not in found.parents:
                node.replace_self(nodes.literal(text=str(found.relative_to(ROOT))))


def _title_benchmark_pages(app, docname: str, source: list) -> None:
    """The generated benchmark reports (docs/benchmarks/*.md, written by ``python -m benchmarks``) start with their
    command, not a title: give their page one from the file name."""
    if docname.startswith("benchmarks/") and not source[0].lstrip().startswith("#"):
        source[0] = f"# Benchmark: {docname.split('/', 1)[1].replace('_', ' ')}\n\n" + source[0]


GUIDES = ["rules", "results", "performance", "migrating"]  # the Guides section's order; other pages follow


def _guides_toctree(app, docname: str, source: list) -> None:
    """The front page's Guides list: :data:`GUIDES`, then every other Markdown page of docs/ (a page added later
    appears without an edit here), then the generated benchmark reports."""
    if docname != "index":
        return
    others = sorted(p.stem for p in DOCS.glob("*.md") if p.stem not in GUIDES + ["index"]
                    and not p.name.endswith(".template.md"))  # templates of generated pages (hebbian results)
    source[0] = source[0].replace("<!-- guides -->", "\n".join(GUIDES + others))


def _execute_notebooks(app, exception) -> None:
    """The lessons' notebooks offered for download are executed after the build, so that each holds its outputs
    (figures included) as its page does (sphinx-gallery writes them without). Only when the lessons were executed
    (not with ``HEBBIAN_DOCS_GALLERY=0``); a notebook that fails fails the build."""
    if exception is not None or not _execute or app.builder.format != "html":
        return
    import nbclient
    import nbformat

    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them
    try:
        for path in sorted(Path(app.outdir, "_downloads").glob("*/lesson_*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            if any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
                continue  # executed by an earlier build, and the lesson has not changed since (a new download)
            nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}}).execute()
            nbformat.write(notebook, path)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def setup(app) -> None:
    app.connect("build-finished", _execute_notebooks)
    app.connect("source-read", _title_benchmark_pages)
    app.connect("source-read", _guides_toctree)
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: ["index"])  # its Guides list is computed
    app.connect("builder-inited", _write_cli_usage)
    app.add_post_transform(RepositoryLinks)
