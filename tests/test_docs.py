"""The documentation cannot rot: its code runs, its links resolve, its API pages match the code.

- Every fenced ```python block of ``docs/**/*.md`` and ``README.md`` runs: the
  blocks of one page in order, in one namespace, inside a fresh temporary
  directory. A block whose first line is ``# not run: <reason>`` (it needs a
  cluster, S3, ...) is only compiled.
- Relative links between pages point to files that exist.
- ``docs/api/*.md`` are generated from the docstrings by :func:`render_api`;
  a test checks the committed pages are up to date. Regenerate them with::

      .venv/bin/python tests/test_docs.py
"""

from __future__ import annotations

import copy
import inspect
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"
NOT_RUN = "# not run:"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PAGES_EXPECTED = ["index.md", "tutorial.md", "cluster-and-cloud.md", "errors.md", "design.md"]


def pages() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number of the block's first code line, code)`` for every ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


# --- code blocks run ---------------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A temp working dir; dask config and os.environ restored afterwards (docs may change them)."""
    import dask

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    saved_config = copy.deepcopy(dask.config.config)
    saved_env = dict(os.environ)
    yield tmp_path
    # Restore what the page changed; keep the defaults that modules imported meanwhile
    # registered (importing distributed adds its own section).
    registered = {key for defaults in dask.config.defaults for key in defaults}
    for key in list(dask.config.config):
        if key not in saved_config and key not in registered:
            del dask.config.config[key]
    dask.config.config.update(saved_config)
    os.environ.clear()
    os.environ.update(saved_env)


def _runnable_pages() -> list[Any]:
    """Pages with python blocks; those starting worker processes or a cluster are marked slow."""
    params = []
    for page in pages():
        text = page.read_text()
        if python_blocks(text):
            slow = "LocalCluster(" in text or 'scheduler="processes"' in text
            params.append(pytest.param(page, id=_rel(page), marks=[pytest.mark.slow] if slow else []))
    return params


@pytest.mark.parametrize("page", _runnable_pages())
def test_page_code_runs(page, isolated):
    text = page.read_text()
    namespace: dict[str, Any] = {"__name__": f"docs:{_rel(page)}"}
    for lineno, code in python_blocks(text):
        # Pad so tracebacks give the line number in the .md file.
        compiled = compile("\n" * (lineno - 1) + code, str(page), "exec")
        if code.lstrip().startswith(NOT_RUN):
            continue
        exec(compiled, namespace)


def test_blocks_not_run_say_why():
    for page in pages():
        for lineno, code in python_blocks(page.read_text()):
            first = code.lstrip().splitlines()[0] if code.strip() else ""
            if first.startswith("# not run"):
                reason = first[len(NOT_RUN) :].strip() if first.startswith(NOT_RUN) else ""
                assert reason, f"{_rel(page)}:{lineno}: '# not run:' needs a reason"


def test_expected_pages_exist_and_have_running_code():
    for name in PAGES_EXPECTED:
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
    for name in ("tutorial.md", "cluster-and-cloud.md", "errors.md", "design.md"):
        blocks = python_blocks((DOCS / name).read_text())
        assert any(not code.lstrip().startswith(NOT_RUN) for _, code in blocks), f"docs/{name}: no block runs"
    assert python_blocks((ROOT / "README.md").read_text()), "README.md has no python example"


def test_relative_links_resolve():
    for page in pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{_rel(page)}: link to {target!r} does not resolve"


def test_readme_links_every_doc_page():
    readme = ROOT / "README.md"
    linked = {(ROOT / target.split("#")[0]).resolve() for target in LINK.findall(readme.read_text())}
    missing = [_rel(page) for page in pages() if page != readme and page.resolve() not in linked]
    assert not missing, f"README.md's Documentation list lacks {missing}"


#: How the history of the work on pyr would creep into its docs ("fourth session", "this session").
WORK_SESSION = re.compile(
    r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|this|that|earlier|previous|next|last)"
    r"[- ]sessions?\b",
    re.IGNORECASE,
)


def test_docs_describe_the_product_not_the_work_sessions():
    found = [
        f"{_rel(page)}:{n}: {line.strip()}"
        for page in pages()
        for n, line in enumerate(page.read_text().splitlines(), start=1)
        if WORK_SESSION.search(line)
    ]
    assert not found, "\n".join(found)


# --- API pages generated from the docstrings -----------------------------------------------

#: page -> (title, intro, [(qualified name, object getter)])
API_PAGES: dict[str, tuple[str, str, list[str]]] = {
    "values.md": (
        "Value types",
        "Frozen, validated values: a grid (`GeoBox`) and pixels on it (`Raster`, `Cube`).",
        ["pyr.GeoBox", "pyr.Raster", "pyr.Cube"],
    ),
    "ops.md": (
        "Operations",
        "Pure transforms (`pyr.ops`): no I/O, lazy in lazy out, eager in eager out.",
        ["pyr.rescale", "pyr.map_blocks", "pyr.mask", "pyr.stack", "pyr.reduce_time", "pyr.reproject", "pyr.mosaic"],
    ),
    "io.md": (
        "Reading and writing",
        "GeoTIFF/COG and Zarr input and output (`pyr.io`): the only module with side effects.",
        [
            "pyr.read",
            "pyr.read_cube",
            "pyr.read_stac",
            "pyr.check_sources",
            "pyr.read_zarr",
            "pyr.write_zarr",
            "pyr.write_tiff",
        ],
    ),
    "env.md": (
        "GDAL environment",
        "GDAL configuration for cloud reads (`pyr.io.gdal.env`).",
        ["pyr.cloud_env", "pyr.configure"],
    ),
    "compute.md": ("Computing", "Running lazy values (`pyr.compute`).", ["pyr.compute"]),
    "xarray.md": (
        "xarray interop",
        "Converting to and from `xarray.DataArray` (`pyr.io.xarray`; needs the `xarray` extra).\n\n"
        "To open a store pyr wrote without pyr, use `xarray.open_zarr(store)` (rioxarray then finds its CRS,"
        ' transform and nodata) or GDAL\'s `ZARR:"store":/band_data`. `rioxarray.open_rasterio(store)` cannot'
        ' open the store itself (a folder of arrays to GDAL): give it `ZARR:"store":/band_data`, where a cube\'s'
        " dates appear as bands (see [the tutorial](../tutorial.md#5-the-cube-to-zarr-opened-with-xarray)).",
        ["pyr.to_xarray", "pyr.from_xarray"],
    ),
    "errors.md": (
        "Errors",
        "Exception types (`pyr.errors`). See [the errors guide](../errors.md) for when each is raised.",
        [
            "pyr.PyrError",
            "pyr.InvalidArgument",
            "pyr.ReadError",
            "pyr.WriteError",
            "pyr.GridMismatch",
            "pyr.StoreExists",
            "pyr.IncompleteStore",
        ],
    ),
    "testing.md": (
        "Testing helpers",
        "For testing code built on pyr (`pyr.testing`; the strategies need `hypothesis`).",
        [
            "pyr.testing.assert_raster_equal",
            "pyr.testing.raise_if_dask_computes",
            "pyr.testing.CountingScheduler",
            "pyr.testing.strategies.geoboxes",
            "pyr.testing.strategies.rasters",
            "pyr.testing.strategies.cubes",
            "pyr.testing.strategies.chunkings",
            "pyr.testing.strategies.nodatas",
        ],
    ),
    "synth.md": (
        "Synthetic data",
        "Sentinel-2-like test series (`pyr.testing.synth`), used by the tutorial, the demo and the benchmarks;"
        " their SCL-like quality band (`pyr.testing.synth_scl`); STAC items for files (`pyr.testing.stac_items`)"
        " and a STAC API on loopback (`pyr.testing.stac_api`).",
        [
            "pyr.testing.synth.make_series",
            "pyr.testing.synth.times_of",
            "pyr.testing.synth.scene_array",
            "pyr.testing.synth_scl.make_scl_series",
            "pyr.testing.synth_scl.scl_array",
            "pyr.testing.synth_scl.cloud_mask",
            "pyr.testing.stac_items.stac_item",
            "pyr.testing.stac_api.StacApi",
        ],
    ),
}

SECTIONS = ("Parameters", "Returns", "Yields", "Raises", "Examples", "Notes", "See Also", "Attributes", "Warns")
GENERATED = (
    "<!-- Generated from the docstrings by tests/test_docs.py; do not edit: run `python tests/test_docs.py`. -->"
)


def resolve(qualname: str) -> Any:
    """``pyr.x.y`` -> the object: attributes first (``pyr.compute`` is the function), then submodules."""
    import importlib

    parts = qualname.split(".")
    obj = importlib.import_module(parts[0])
    for i, attr in enumerate(parts[1:], start=2):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i]))
    return obj


def _rst_to_md(text: str) -> str:
    text = re.sub(r":(?:func|class|data|mod|meth|attr|exc):`~?([^`]+)`", lambda m: f"`{m.group(1)}`", text)
    return text.replace("``", "`")


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _default(value: Any) -> str:
    text = repr(value)
    return "<default>" if " at 0x" in text else text


def signature(name: str, obj: Any) -> str:
    func = getattr(obj, "func", obj)  # toolz.curry wraps the plain function
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return f"{name}(...)"
    parts, star_done = [], False
    params = list(sig.parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        text = prefix + p.name
        if ann := _annotation(p.annotation):
            text += f": {ann}"
        if p.default is not p.empty:
            text += f" = {_default(p.default)}" if ann else f"={_default(p.default)}"
        parts.append(text)
    out = f"{name}({', '.join(parts)})"
    if not inspect.isclass(func) and (ret := _annotation(sig.return_annotation)):
        out += f" -> {ret}"
    return re.sub(r"ForwardRef\('([^']+)'\)", r"\1", out)


def docstring_md(doc: str) -> str:
    """A numpy-style docstring as Markdown: sections in bold, parameters as a list, examples fenced."""
    lines = doc.splitlines()
    out: list[str] = []
    section = None
    fresh_item = False  # the last line is a parameter name still without its description
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() in SECTIONS and nxt.strip() and set(nxt.strip()) == {"-"}:
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if section == "Examples" or line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and (section == "Examples" or lines[i].strip()):
                if section == "Examples" and lines[i].strip() in SECTIONS:
                    break
                block.append(lines[i])
                i += 1
            out += ["```pycon", *textwrap.dedent("\n".join(block)).strip("\n").splitlines(), "```"]
            continue
        if line.rstrip().endswith("::") and section is None:
            out.append(_rst_to_md(line.rstrip()[:-1]) + ":")
            i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            out += ["```text", *textwrap.dedent("\n".join(block)).strip("\n").splitlines(), "```", ""]
            continue
        if section in ("Parameters", "Returns", "Yields", "Raises", "Attributes", "Warns") and line.strip():
            if not line.startswith((" ", "\t")):
                out.append(f"- `{line.strip()}`")
                fresh_item = True
            else:
                out[-1] += (":" if fresh_item else "") + " " + _rst_to_md(line.strip())
                fresh_item = False
            i += 1
            continue
        out.append(_rst_to_md(line))
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def _members(cls: type) -> list[tuple[str, Any]]:
    found = []
    merged: dict[str, Any] = {}  # members inherited from pyr's own bases too (Raster and Cube share theirs)
    for klass in reversed([k for k in cls.__mro__ if k.__module__.startswith("pyr")]):
        merged.update(vars(klass))
    for name, value in merged.items():
        if name.startswith("_") and name != "__getitem__":
            continue
        documented = inspect.getdoc(value)
        if (isinstance(value, property | classmethod | staticmethod) or inspect.isfunction(value)) and documented:
            found.append((name, value))
    return found


def render_entry(qualname: str) -> str:
    obj = resolve(qualname)
    short = qualname.rsplit(".", 1)[-1]
    out = [f"## `{qualname}`", ""]
    is_exc = inspect.isclass(obj) and issubclass(obj, BaseException)
    if is_exc:
        bases = ", ".join(b.__name__ for b in obj.__bases__)
        out += [f"`class {short}({bases})`", ""]
    else:
        out += ["```text", signature(qualname, obj), "```", ""]
    out.append(docstring_md(inspect.getdoc(obj) or "(no docstring)"))
    if inspect.isclass(obj) and not is_exc:
        for name, member in _members(obj):
            target = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            label = f"{short}.{name}" if name != "__getitem__" else f"{short}[...]"
            kind = "property" if isinstance(member, property) else "method"
            header = f"### `{label}`" + (" (property)" if kind == "property" else "")
            out += ["", header, ""]
            if kind == "method":
                out += ["```text", signature(label, target), "```", ""]
            out.append(docstring_md(inspect.getdoc(target) or ""))
    return "\n".join(out).rstrip() + "\n"


def render_api() -> dict[str, str]:
    """Every ``docs/api`` page's text, keyed by file name."""
    rendered: dict[str, str] = {}
    index = [GENERATED, "", "# API reference", "", "Every public name, by module. Start with the", ""]
    index[-2] += " [tutorial](../tutorial.md) if you are new to pyr."
    index += ["| name | what it is | page |", "| --- | --- | --- |"]
    for page, (title, intro, names) in API_PAGES.items():
        body = [GENERATED, "", f"# {title}", "", intro, ""]
        for qualname in names:
            body += [render_entry(qualname), ""]
            summary = _rst_to_md((inspect.getdoc(resolve(qualname)) or "").split("\n\n")[0].replace("\n", " "))
            anchor = re.sub(r"[^a-z0-9_-]", "", qualname.lower().replace(" ", "-"))
            cell = summary.replace("|", "\\|")
            index.append(f"| [`{qualname}`]({page}#{anchor}) | {cell} | {title} |")
        rendered[page] = "\n".join(body).rstrip() + "\n"
    rendered["index.md"] = "\n".join(index) + "\n"
    return rendered


def write_api() -> list[str]:
    API.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in render_api().items():
        path = API / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


def test_api_pages_are_up_to_date():
    rendered = render_api()
    stale = [n for n, text in rendered.items() if not (API / n).exists() or (API / n).read_text() != text]
    assert not stale, f"docs/api pages out of date: {stale}; run `.venv/bin/python tests/test_docs.py`"
    extra = sorted(p.name for p in API.glob("*.md") if p.name not in rendered)
    assert not extra, f"docs/api has pages not generated from the code: {extra}"


def test_every_public_name_has_an_api_entry():
    import pyr

    documented = {q.rsplit(".", 1)[-1] for _, _, names in API_PAGES.values() for q in names}
    missing = sorted(set(pyr.__all__) - documented - {"__version__"})
    assert not missing, f"public names without an API entry: {missing}"


def test_docstring_md_renders_sections():
    doc = "Summary.\n\nParameters\n----------\nx : int\n    The x.\n\nExamples\n--------\n>>> f(1)\n2\n"
    md = docstring_md(doc)
    assert "**Parameters**" in md
    assert "- `x : int`: The x." in md
    assert "```pycon\n>>> f(1)\n2\n```" in md


def test_licence_is_an_spdx_string_that_setuptools_reads_without_warning():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # a table (`{ text = ... }`) makes setuptools print a deprecation warning on every install
    assert meta["project"]["license"] == "BSD-3-Clause"
    (setuptools,) = [r for r in meta["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools)
    assert minimum, setuptools
    assert int(minimum.group(1)) >= 77  # PEP 639 SPDX licence strings


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print("updated:", write_api() or "nothing")
